"""ctypes declarations of the parts of liblilv (and the LV2 C structs) the host uses.

Nothing here parses an LV2 file: lilv reads the Turtle data; this module only
declares its C functions. The library is opened on first use, so that importing
grafx-lv2 on a machine without it costs nothing and fails only when a plug-in
is asked for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int, c_uint32, c_void_p

__all__ = ["library", "LV2Feature", "LV2Descriptor", "LilvInstanceStruct", "URIDMap", "URIDUnmap",
           "OptionsOption", "MAP_FUNC", "UNMAP_FUNC", "LIBRARY_ENV"]

LIBRARY_ENV = "GRAFX_LV2_LILV"
"""Environment variable naming the liblilv shared library to load instead of the system's."""

_DEFAULT_PATHS = ("liblilv-0.so.0", "/usr/lib/x86_64-linux-gnu/liblilv-0.so.0")


class LV2Feature(Structure):
    """``LV2_Feature``: a URI and its data."""

    _fields_ = [("URI", c_char_p), ("data", c_void_p)]


MAP_FUNC = ctypes.CFUNCTYPE(c_uint32, c_void_p, c_char_p)
UNMAP_FUNC = ctypes.CFUNCTYPE(c_char_p, c_void_p, c_uint32)


class URIDMap(Structure):
    """``LV2_URID_Map``."""

    _fields_ = [("handle", c_void_p), ("map", MAP_FUNC)]


class URIDUnmap(Structure):
    """``LV2_URID_Unmap``."""

    _fields_ = [("handle", c_void_p), ("unmap", UNMAP_FUNC)]


class OptionsOption(Structure):
    """``LV2_Options_Option``; an array of them ends with an all-zero entry."""

    _fields_ = [("context", c_int), ("subject", c_uint32), ("key", c_uint32), ("size", c_uint32),
                ("type", c_uint32), ("value", c_void_p)]


class LV2Descriptor(Structure):
    """``LV2_Descriptor``: the plug-in's entry points (lilv's instance calls are inline C, so the
    host calls these directly; ctypes releases the GIL during each call)."""

    _fields_ = [
        ("URI", c_char_p),
        ("instantiate", c_void_p),
        ("connect_port", ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_void_p)),
        ("activate", ctypes.CFUNCTYPE(None, c_void_p)),
        ("run", ctypes.CFUNCTYPE(None, c_void_p, c_uint32)),
        ("deactivate", ctypes.CFUNCTYPE(None, c_void_p)),
        ("cleanup", c_void_p),
        ("extension_data", c_void_p),
    ]


class LilvInstanceStruct(Structure):
    """``LilvInstance``: the descriptor and the plug-in's handle."""

    _fields_ = [("lv2_descriptor", POINTER(LV2Descriptor)), ("lv2_handle", c_void_p), ("pimpl", c_void_p)]


_P = c_void_p
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "lilv_world_new": (_P, []),
    "lilv_world_load_all": (None, [_P]),
    "lilv_world_free": (None, [_P]),
    "lilv_world_get_all_plugins": (_P, [_P]),
    "lilv_plugins_begin": (_P, [_P]),
    "lilv_plugins_is_end": (c_bool, [_P, _P]),
    "lilv_plugins_get": (_P, [_P, _P]),
    "lilv_plugins_next": (_P, [_P, _P]),
    "lilv_plugins_get_by_uri": (_P, [_P, _P]),
    "lilv_new_uri": (_P, [_P, c_char_p]),
    "lilv_node_free": (None, [_P]),
    "lilv_node_as_string": (c_char_p, [_P]),
    "lilv_node_as_float": (c_float, [_P]),
    "lilv_node_is_float": (c_bool, [_P]),
    "lilv_node_is_int": (c_bool, [_P]),
    "lilv_node_is_uri": (c_bool, [_P]),
    "lilv_nodes_begin": (_P, [_P]),
    "lilv_nodes_is_end": (c_bool, [_P, _P]),
    "lilv_nodes_get": (_P, [_P, _P]),
    "lilv_nodes_next": (_P, [_P, _P]),
    "lilv_nodes_free": (None, [_P]),
    "lilv_plugin_get_uri": (_P, [_P]),
    "lilv_plugin_get_name": (_P, [_P]),
    "lilv_plugin_get_library_uri": (_P, [_P]),
    "lilv_plugin_get_data_uris": (_P, [_P]),
    "lilv_plugin_get_num_ports_of_class": (c_uint32, [_P, _P, _P, _P]),
    "lilv_plugin_get_num_ports": (c_uint32, [_P]),
    "lilv_plugin_get_port_by_index": (_P, [_P, c_uint32]),
    "lilv_plugin_get_port_ranges_float": (None, [_P, POINTER(c_float), POINTER(c_float), POINTER(c_float)]),
    "lilv_plugin_has_latency": (c_bool, [_P]),
    "lilv_plugin_get_latency_port_index": (c_uint32, [_P]),
    "lilv_plugin_get_required_features": (_P, [_P]),
    "lilv_plugin_instantiate": (_P, [_P, c_double, POINTER(POINTER(LV2Feature))]),
    "lilv_instance_free": (None, [_P]),
    "lilv_port_get_symbol": (_P, [_P, _P]),
    "lilv_port_get_name": (_P, [_P, _P]),
    "lilv_port_is_a": (c_bool, [_P, _P, _P]),
    "lilv_port_has_property": (c_bool, [_P, _P, _P]),
    "lilv_port_get": (_P, [_P, _P, _P]),
    "lilv_port_get_scale_points": (_P, [_P, _P]),
    "lilv_scale_points_begin": (_P, [_P]),
    "lilv_scale_points_is_end": (c_bool, [_P, _P]),
    "lilv_scale_points_get": (_P, [_P, _P]),
    "lilv_scale_points_next": (_P, [_P, _P]),
    "lilv_scale_points_free": (None, [_P]),
    "lilv_scale_point_get_value": (_P, [_P]),
    "lilv_scale_point_get_label": (_P, [_P]),
}

_lock = threading.Lock()
_library: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """liblilv with its functions declared (opened once).

    Raises:
        LilvUnavailableError: no liblilv could be opened; the message names
            what was tried and the Debian package to install.
    """
    global _library
    with _lock:
        if _library is None:
            _library = _open()
        return _library


def _open() -> ctypes.CDLL:
    candidates = [os.environ[LIBRARY_ENV]] if os.environ.get(LIBRARY_ENV) else []
    found = ctypes.util.find_library("lilv-0")
    candidates += ([found] if found else []) + list(_DEFAULT_PATHS)
    errors = []
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError as error:
            errors.append(f"{name}: {error}")
            continue
        for function, (restype, argtypes) in _SIGNATURES.items():
            f = getattr(lib, function)
            f.restype, f.argtypes = restype, argtypes
        return lib
    from .errors import LilvUnavailableError  # here, so that a probe process never imports torch

    raise LilvUnavailableError("grafx-lv2 needs liblilv (Debian package liblilv-0-0: apt-get install liblilv-0-0); "
                               f"tried {'; '.join(errors)}")
