"""The installed LV2 plug-ins, as lilv sees them, and what their ports declare.

One lilv world per process, made on first use and guarded by one lock (lilv
is not thread-safe). Listing reads only URIs from the bundles' manifests; a
plug-in's own data (its name and ports) is read when it is first asked for,
and the listing's summary (name, audio ports, controls) is cached on disk,
keyed by the data files' sizes and modification times, so that a listing
costs milliseconds once the cache is warm.

This module imports only the standard library, so that a probe process
(:mod:`grafx_lv2.probe`) starts quickly.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import tempfile
import threading
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from ._lilv import library

__all__ = ["Port", "PluginSummary", "World", "world", "LV2", "CACHE_ENV"]

CACHE_ENV = "GRAFX_LV2_CACHE"
"""Environment variable: the folder of the listing cache (``off`` disables it)."""

_CACHE_VERSION = 2

LV2 = "http://lv2plug.in/ns/lv2core#"
_ATOM = "http://lv2plug.in/ns/ext/atom#"
_PPROPS = "http://lv2plug.in/ns/ext/port-props#"
_UNITS = "http://lv2plug.in/ns/extensions/units#"
_UNIT_NAMES = {"hz": "Hz", "khz": "kHz", "db": "dB", "ms": "ms", "s": "s"}  # units:unit's names -> the core's

_CLASSES = {"input": LV2 + "InputPort", "output": LV2 + "OutputPort", "audio": LV2 + "AudioPort",
            "control": LV2 + "ControlPort", "cv": LV2 + "CVPort", "atom": _ATOM + "AtomPort"}
_PROPERTIES = {"toggled": LV2 + "toggled", "integer": LV2 + "integer", "enumeration": LV2 + "enumeration",
               "sample_rate": LV2 + "sampleRate", "optional": LV2 + "connectionOptional",
               "side_chain": LV2 + "isSideChain", "reports_latency": LV2 + "reportsLatency",
               "logarithmic": _PPROPS + "logarithmic", "not_on_gui": _PPROPS + "notOnGUI"}


@dataclass(frozen=True)
class Port:
    """One port of a plug-in, as its data declares it.

    Attributes:
        index: the port's index.
        symbol: its symbol (a C identifier, unique in the plug-in).
        name: its human name.
        kind: ``"audio"``, ``"control"``, ``"cv"``, ``"atom"`` or ``"other"``.
        direction: ``"input"`` or ``"output"``.
        minimum, maximum, default: from the data (``nan`` where not given).
        properties: the port properties of :data:`_PROPERTIES` it has (``"logarithmic"``, ...).
        designation: its ``lv2:designation`` URI, or ``""``.
        scale_points: ``(value, label)`` pairs, sorted by value.
        unit: its ``units:unit`` as the core spells it (``"Hz"``, ``"dB"``, ``"ms"``, ...), or ``""``.
    """

    index: int
    symbol: str
    name: str
    kind: str
    direction: str
    minimum: float
    maximum: float
    default: float
    properties: frozenset[str]
    designation: str
    scale_points: tuple[tuple[float, str], ...]
    unit: str = ""


@dataclass(frozen=True)
class PluginSummary:
    """What a listing knows of a plug-in: ``uri``, ``name``, audio ``inputs`` (main, not side-chain)
    and ``outputs``, the number of continuous input ``controls``, and the LV2 features it ``requires``."""

    uri: str
    name: str
    inputs: int
    outputs: int
    controls: int
    requires: tuple[str, ...] = ()


class World:
    """The process's lilv world (use :func:`world`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._lib: Any = None
        self._world: Any = None
        self._plugins: dict[str, int] = {}
        self._nodes: dict[str, int] = {}
        self._ports: dict[str, tuple[Port, ...]] = {}

    def _ready(self) -> Any:
        if self._world is None:
            lib = library()
            world = lib.lilv_world_new()
            lib.lilv_world_load_all(world)
            plugins = lib.lilv_world_get_all_plugins(world)
            found = {}
            it = lib.lilv_plugins_begin(plugins)
            while not lib.lilv_plugins_is_end(plugins, it):
                plugin = lib.lilv_plugins_get(plugins, it)
                found[lib.lilv_node_as_string(lib.lilv_plugin_get_uri(plugin)).decode()] = plugin
                it = lib.lilv_plugins_next(plugins, it)
            self._lib, self._world, self._plugins = lib, world, found
        return self._lib

    def uris(self) -> list[str]:
        """Every installed plug-in's URI, sorted (reads manifests only)."""
        with self.lock:
            self._ready()
            return sorted(self._plugins)

    def plugin(self, uri: str) -> int:
        """lilv's ``LilvPlugin*`` of ``uri``.

        Raises:
            KeyError: no installed plug-in has this URI.
        """
        with self.lock:
            self._ready()
            return self._plugins[uri]

    def node(self, uri: str) -> int:
        """An interned URI node (kept for the world's lifetime)."""
        with self.lock:
            lib = self._ready()
            if uri not in self._nodes:
                self._nodes[uri] = lib.lilv_new_uri(self._world, uri.encode())
            return self._nodes[uri]

    def name(self, uri: str) -> str:
        """The plug-in's human name (loads its data)."""
        with self.lock:
            lib = self._ready()
            node = lib.lilv_plugin_get_name(self.plugin(uri))
            try:
                return lib.lilv_node_as_string(node).decode() if node else uri
            finally:
                lib.lilv_node_free(node)

    def library_path(self, uri: str) -> str:
        """The path of the plug-in's shared library."""
        with self.lock:
            lib = self._ready()
            node = lib.lilv_plugin_get_library_uri(self.plugin(uri))
            return _path(lib.lilv_node_as_string(node).decode()) if node else ""

    def required_features(self, uri: str) -> list[str]:
        """The URIs of the LV2 features the plug-in cannot run without."""
        with self.lock:
            lib = self._ready()
            return _strings(lib, lib.lilv_plugin_get_required_features(self.plugin(uri)))

    def latency_port(self, uri: str) -> int | None:
        """The index of the output port reporting the plug-in's latency, or ``None``."""
        with self.lock:
            lib = self._ready()
            plugin = self.plugin(uri)
            return int(lib.lilv_plugin_get_latency_port_index(plugin)) if lib.lilv_plugin_has_latency(plugin) else None

    def ports(self, uri: str) -> tuple[Port, ...]:
        """Every port of the plug-in, by index (loads its data; cached)."""
        with self.lock:
            if uri not in self._ports:
                self._ports[uri] = self._read_ports(uri)
            return self._ports[uri]

    def _read_ports(self, uri: str) -> tuple[Port, ...]:
        lib = self._ready()
        plugin = self.plugin(uri)
        count = int(lib.lilv_plugin_get_num_ports(plugin))
        ranges = [(ctypes.c_float * count)() for _ in range(3)]
        lib.lilv_plugin_get_port_ranges_float(plugin, *ranges)
        ports = []
        for index in range(count):
            port = lib.lilv_plugin_get_port_by_index(plugin, index)
            symbol = lib.lilv_node_as_string(lib.lilv_port_get_symbol(plugin, port)).decode()
            name_node = lib.lilv_port_get_name(plugin, port)
            name = lib.lilv_node_as_string(name_node).decode() if name_node else symbol
            lib.lilv_node_free(name_node)
            classes = {k for k, v in _CLASSES.items() if lib.lilv_port_is_a(plugin, port, self.node(v))}
            kind = next((k for k in ("audio", "control", "cv", "atom") if k in classes), "other")
            props = frozenset(k for k, v in _PROPERTIES.items() if lib.lilv_port_has_property(plugin, port, self.node(v)))
            designation_node = lib.lilv_port_get(plugin, port, self.node(LV2 + "designation"))
            designation = lib.lilv_node_as_string(designation_node).decode() if designation_node else ""
            lib.lilv_node_free(designation_node)
            unit_node = lib.lilv_port_get(plugin, port, self.node(_UNITS + "unit"))
            unit = lib.lilv_node_as_string(unit_node).decode() if unit_node else ""
            lib.lilv_node_free(unit_node)
            ports.append(Port(index, symbol, name, kind, "output" if "output" in classes else "input",
                              float(ranges[0][index]), float(ranges[1][index]), float(ranges[2][index]),
                              props, designation, self._scale_points(plugin, port),
                              _UNIT_NAMES.get(unit.removeprefix(_UNITS), "")))
        return tuple(ports)

    def _scale_points(self, plugin: int, port: int) -> tuple[tuple[float, str], ...]:
        lib = self._lib
        points = lib.lilv_port_get_scale_points(plugin, port)
        if not points:
            return ()
        found = []
        it = lib.lilv_scale_points_begin(points)
        while not lib.lilv_scale_points_is_end(points, it):
            point = lib.lilv_scale_points_get(points, it)
            value, label = lib.lilv_scale_point_get_value(point), lib.lilv_scale_point_get_label(point)
            if lib.lilv_node_is_float(value) or lib.lilv_node_is_int(value):
                found.append((float(lib.lilv_node_as_float(value)), lib.lilv_node_as_string(label).decode()))
            it = lib.lilv_scale_points_next(points, it)
        lib.lilv_scale_points_free(points)
        return tuple(sorted(found))

    def summaries(self) -> list[PluginSummary]:
        """A summary of every installed plug-in, from the disk cache when it is current."""
        with self.lock:
            lib = self._ready()
            signature = self._signature(lib)
            cached = _read_cache(signature)
            if cached is not None:
                return cached
            summaries = [self._summary(uri) for uri in sorted(self._plugins)]
            _write_cache(signature, summaries)
            return summaries

    def _summary(self, uri: str) -> PluginSummary:
        try:
            ports = self.ports(uri)
        except Exception:  # a plug-in whose data lilv cannot read is listed without audio ports
            return PluginSummary(uri, uri, 0, 0, 0)
        audio_in = sum(1 for p in ports if p.kind == "audio" and p.direction == "input" and "side_chain" not in p.properties)
        audio_out = sum(1 for p in ports if p.kind == "audio" and p.direction == "output")
        controls = sum(1 for p in ports if p.kind == "control" and p.direction == "input" and not p.designation
                       and not p.properties & {"toggled", "integer", "enumeration"}
                       and math.isfinite(p.minimum) and math.isfinite(p.maximum) and p.minimum < p.maximum)
        return PluginSummary(uri, self.name(uri), audio_in, audio_out, controls, tuple(self.required_features(uri)))

    def _signature(self, lib: Any) -> str:
        digest = hashlib.sha256(f"{_CACHE_VERSION}".encode())
        for uri in sorted(self._plugins):
            digest.update(uri.encode())
            # lilv's node sets are not ordered the same way in every process.
            for path in sorted(_path(d) for d in _strings(lib, lib.lilv_plugin_get_data_uris(self._plugins[uri]),
                                                          free=False)):
                try:
                    stat = os.stat(path)
                    digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
                except OSError:
                    digest.update(f"{path}:missing".encode())
        return digest.hexdigest()


def _strings(lib: Any, nodes: Any, free: bool = True) -> list[str]:
    if not nodes:
        return []
    found = []
    it = lib.lilv_nodes_begin(nodes)
    while not lib.lilv_nodes_is_end(nodes, it):
        found.append(lib.lilv_node_as_string(lib.lilv_nodes_get(nodes, it)).decode())
        it = lib.lilv_nodes_next(nodes, it)
    if free:
        lib.lilv_nodes_free(nodes)
    return found


def _path(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    return urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri


def _cache_file() -> str | None:
    folder = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "grafx-lv2")
    return None if folder == "off" else os.path.join(folder, "plugins.json")


def _read_cache(signature: str) -> list[PluginSummary] | None:
    path = _cache_file()
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("signature") != signature:
            return None
        return [PluginSummary(**{**entry, "requires": tuple(entry.get("requires", ()))}) for entry in data["plugins"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or one from another version: rebuild it


def _write_cache(signature: str, summaries: list[PluginSummary]) -> None:
    path = _cache_file()
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"signature": signature, "plugins": [asdict(s) for s in summaries]}, f)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home: listings stay correct, only slower


_world: World | None = None
_world_lock = threading.Lock()


def world() -> World:
    """The process-wide :class:`World` (made on first use; nothing is read until it is queried)."""
    global _world
    with _world_lock:
        if _world is None:
            _world = World()
        return _world
