"""grafx-lv2: the LV2 plug-ins installed on the machine as black-box grafx-core processors.

A small ctypes host over liblilv (Debian ``liblilv-0-0``): lilv reads the
plug-ins' data, this package maps their ports to parameters and runs them
offline. Names are imported on first use, so that the probe process
(:mod:`grafx_lv2.probe`) and a plug-in listing load neither torch nor a plug-in.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("grafx-lv2")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "lv2_processor",
    "port_values",
    "measure_pre_roll",
    "resolve_plugin",
    "PRE_ROLL",
    "STEPWISE",
    "DEFAULT_BLOCK_SIZE",
    "FD_MAX_PARAMETERS",
    "TAIL_POLICIES",
    "TailCutWarning",
    "map_controls",
    "Controls",
    "plugin_names",
    "LV2Error",
    "LilvUnavailableError",
    "LV2PluginNotFoundError",
    "LV2UnsupportedPluginError",
    "LV2InstantiationError",
    "LV2PluginCrashError",
    "LV2PortError",
]

_HOMES = {
    "lv2_processor": "processor", "port_values": "processor", "measure_pre_roll": "preroll",
    "resolve_plugin": "processor", "PRE_ROLL": "processor", "STEPWISE": "processor",
    "DEFAULT_BLOCK_SIZE": "processor", "FD_MAX_PARAMETERS": "processor",
    "TAIL_POLICIES": "host", "TailCutWarning": "host",
    "map_controls": "controls", "Controls": "controls",
    "plugin_names": "names",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
