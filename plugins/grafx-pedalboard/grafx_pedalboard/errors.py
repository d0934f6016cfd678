"""Exceptions specific to grafx-pedalboard."""

from __future__ import annotations

from grafx_core import GrafxError

__all__ = ["PedalboardError", "EffectOptionError", "PluginParameterError"]


class PedalboardError(GrafxError):
    """The root of grafx-pedalboard's errors (a :class:`~grafx_core.GrafxError`)."""


class EffectOptionError(PedalboardError, ValueError):
    """A constructor option of a pedalboard effect (a filter mode, a codec
    quality, an impulse response) is unknown or has a bad value."""


class PluginParameterError(PedalboardError, ValueError):
    """The parameters of an external plug-in or a ``pedalboard.Pedalboard``
    chain cannot be turned into controls (unknown plug-in type, an unusable
    parameter range, a name asked for that the plug-in does not have)."""
