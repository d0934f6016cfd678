"""grafx-ardour: Ardour's mixer as a grafx-core console, and a fit exported as an Ardour 7 session.

``grafx-core fit ... --console ardour`` fits a console built of grafx-dsp's
twins of Ardour's a-comp, a-eq, fader and panner
(:func:`build_ardour_console`); :func:`export_session` (``grafx-core export
ardour``) writes the fit as a session with the real plug-ins at the fitted
values, and :func:`render_session` plays it with ``ardour7-export``.
Ardour's programs run as separate processes; names are imported on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("grafx-ardour")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "build_ardour_console",
    "export_session",
    "render_session",
    "read_fit",
    "plan_session",
    "SessionPlan",
    "Strip",
    "PluginSlot",
    "ardour_available",
    "INSTALL_HINT",
    "ArdourError",
    "ArdourNotFoundError",
    "SessionExistsError",
    "UnmappableGraphError",
    "ArdourRunError",
]

_HOMES = {
    "build_ardour_console": "console",
    "export_session": "export", "render_session": "export", "read_fit": "export",
    "plan_session": "plan", "SessionPlan": "plan", "Strip": "plan", "PluginSlot": "plan",
    "ardour_available": "tools", "INSTALL_HINT": "tools",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
