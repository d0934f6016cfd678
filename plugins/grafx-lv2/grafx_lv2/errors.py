"""Exception classes of grafx-lv2; each names the plug-in (name and URI) at fault."""

from __future__ import annotations

from grafx_core.errors import BlackBoxError, OptionalDependencyError, ParameterError

__all__ = ["LV2Error", "LilvUnavailableError", "LV2PluginNotFoundError", "LV2UnsupportedPluginError",
           "LV2InstantiationError", "LV2PluginCrashError", "LV2PortError"]


class LV2Error(BlackBoxError):
    """Base class of grafx-lv2's errors."""


class LilvUnavailableError(LV2Error, OptionalDependencyError):
    """liblilv (Debian ``liblilv-0-0``) cannot be loaded."""


class LV2PluginNotFoundError(LV2Error, LookupError):
    """No installed LV2 plug-in has this URI or name."""


class LV2UnsupportedPluginError(LV2Error):
    """The plug-in needs something this host does not offer (a required LV2 feature, audio
    ports in a layout it cannot map to the signal's channels)."""


class LV2InstantiationError(LV2Error):
    """lilv could not instantiate the plug-in (its library is missing or refused the options)."""


class LV2PluginCrashError(LV2Error):
    """The plug-in crashed or hung when tried in a separate process, so it is not loaded here."""


class LV2PortError(LV2Error, ParameterError):
    """A fixed, excluded or included port name is unknown, or a fixed value is outside the port's range."""
