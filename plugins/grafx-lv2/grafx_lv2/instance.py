"""One running LV2 plug-in instance: features, port buffers, block-wise processing.

The host offers the features offline rendering needs and nothing more: URID
map and unmap, options (block lengths and the sample rate) and the block-length
guarantees (every block it runs is exactly ``block_size`` samples long: the
stream is padded to whole blocks). Every input control port is connected to one
float32 vector that is written in full before each item. Atom ports get an
empty sequence (inputs) or scratch space (outputs) before every block; CV
inputs get silence.

Like :mod:`grafx_lv2.world`, this module avoids importing torch, so that a probe
process starts quickly; errors are imported where they are raised.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._lilv import (MAP_FUNC, UNMAP_FUNC, LilvInstanceStruct, LV2Feature, OptionsOption, URIDMap, URIDUnmap,
                    library)
from .world import LV2, Port, world

__all__ = ["Instance", "SUPPORTED_FEATURES", "unsupported_features", "urid"]

_URID = "http://lv2plug.in/ns/ext/urid#"
_BUF = "http://lv2plug.in/ns/ext/buf-size#"
_ATOM = "http://lv2plug.in/ns/ext/atom#"
_OPTIONS = "http://lv2plug.in/ns/ext/options#options"

SUPPORTED_FEATURES = frozenset({
    _URID + "map", _URID + "unmap", _OPTIONS, _BUF + "boundedBlockLength", _BUF + "fixedBlockLength",
    _BUF + "powerOf2BlockLength",  # only when the block size is a power of two, see check_features
    LV2 + "isLive",  # not a capability the plug-in needs from an offline host: rendering is never late
})
"""The LV2 features this host provides."""


def unsupported_features(required: Sequence[str]) -> list[str]:
    """The short names (``worker#schedule``) of the required LV2 features this host does not offer."""
    return sorted(uri.rsplit("/", 1)[-1] for uri in set(required) - SUPPORTED_FEATURES)

_ATOM_CAPACITY = 65536  # x42 fil4 asks for 8,416 bytes of notification space

_uris: dict[str, int] = {}
_names: dict[int, bytes] = {}
_uris_lock = threading.Lock()


def urid(uri: str | bytes) -> int:
    """The process-wide URID of ``uri`` (1, 2, ...)."""
    key = uri.decode() if isinstance(uri, bytes) else uri
    with _uris_lock:
        if key not in _uris:
            _uris[key] = len(_uris) + 1
            _names[_uris[key]] = key.encode()
        return _uris[key]


@MAP_FUNC
def _map(handle: Any, uri: bytes) -> int:
    return urid(uri)


@UNMAP_FUNC
def _unmap(handle: Any, value: int) -> bytes | None:
    with _uris_lock:
        return _names.get(value)


_MAP = URIDMap(None, _map)
_UNMAP = URIDUnmap(None, _unmap)


class Instance:
    """A plug-in instantiated at ``sample_rate``, running blocks of ``block_size`` samples.

    Args:
        uri: the plug-in.
        ports: its ports (:meth:`grafx_lv2.world.World.ports`).
        sample_rate: in Hz.
        block_size: samples per ``run`` call.
        name: the plug-in's registered name, for error messages.

    Raises:
        LV2InstantiationError: lilv returned no instance.
    """

    def __init__(self, uri: str, ports: Sequence[Port], sample_rate: float, block_size: int, name: str) -> None:
        self.uri, self.name, self.block_size = uri, name, block_size
        self._handle = None
        lib = library()
        self._keep: list[Any] = []
        features = self._features(sample_rate, block_size)
        w = world()
        with w.lock:
            handle = lib.lilv_plugin_instantiate(w.plugin(uri), float(sample_rate), features)
        if not handle:
            from .errors import LV2InstantiationError

            raise LV2InstantiationError(f"{name} ({uri}): lilv could not instantiate it at {sample_rate:g} Hz "
                                        f"(its library {w.library_path(uri)!r} is missing or refused the options)")
        self._handle = handle
        instance = ctypes.cast(handle, ctypes.POINTER(LilvInstanceStruct)).contents
        self._plugin_handle = instance.lv2_handle
        self._descriptor = instance.lv2_descriptor.contents
        self._connect(ports)
        if self._descriptor.activate:
            self._descriptor.activate(self._plugin_handle)

    def _features(self, sample_rate: float, block_size: int) -> Any:
        int_type, float_type = urid(_ATOM + "Int"), urid(_ATOM + "Float")
        block = ctypes.c_int32(block_size)
        rate = ctypes.c_float(sample_rate)
        entries = [(_BUF + "minBlockLength", int_type, block), (_BUF + "maxBlockLength", int_type, block),
                   (_BUF + "nominalBlockLength", int_type, block),
                   ("http://lv2plug.in/ns/ext/parameters#sampleRate", float_type, rate)]
        options = (OptionsOption * (len(entries) + 1))()
        for k, (key, kind, value) in enumerate(entries):
            options[k] = OptionsOption(0, 0, urid(key), ctypes.sizeof(value), kind, ctypes.addressof(value))
        data: list[tuple[str, Any]] = [(_URID + "map", ctypes.addressof(_MAP)), (_URID + "unmap", ctypes.addressof(_UNMAP)),
                                       (_OPTIONS, ctypes.addressof(options)), (_BUF + "boundedBlockLength", None),
                                       (_BUF + "fixedBlockLength", None)]
        if block_size & (block_size - 1) == 0:
            data.append((_BUF + "powerOf2BlockLength", None))
        records = [LV2Feature(key.encode(), value) for key, value in data]
        array = (ctypes.POINTER(LV2Feature) * (len(records) + 1))(*[ctypes.pointer(r) for r in records])
        self._keep += [block, rate, options, records, array]
        return array

    def _connect(self, ports: Sequence[Port]) -> None:
        n = len(ports)
        self.controls = np.zeros(n, dtype=np.float32)
        self.audio_in = [p.index for p in ports if p.kind == "audio" and p.direction == "input"]
        self.audio_out = [p.index for p in ports if p.kind == "audio" and p.direction == "output"]
        self.inputs = np.zeros((len(self.audio_in), self.block_size), dtype=np.float32)
        self.outputs = np.zeros((len(self.audio_out), self.block_size), dtype=np.float32)
        self._cv = np.zeros(self.block_size, dtype=np.float32)
        self._cv_out = np.zeros((n, self.block_size), dtype=np.float32)
        self._atoms: list[tuple[Any, bool]] = []
        connect, handle = self._descriptor.connect_port, self._plugin_handle
        base = self.controls.ctypes.data
        for port in ports:
            if port.kind == "control":
                address = base + 4 * port.index
            elif port.kind == "audio":
                rows = (self.inputs, self.audio_in) if port.direction == "input" else (self.outputs, self.audio_out)
                address = rows[0][rows[1].index(port.index)].ctypes.data
            elif port.kind == "cv":
                address = self._cv.ctypes.data if port.direction == "input" else self._cv_out[port.index].ctypes.data
            elif port.kind == "atom":
                buffer = (ctypes.c_uint64 * (_ATOM_CAPACITY // 8))()
                self._atoms.append((buffer, port.direction == "input"))
                address = ctypes.addressof(buffer)
            else:
                address = None
            connect(handle, port.index, address)
        self._reset_atoms()

    def _reset_atoms(self) -> None:
        sequence, chunk = urid(_ATOM + "Sequence"), urid(_ATOM + "Chunk")
        for buffer, is_input in self._atoms:
            header = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint32))
            # LV2_Atom_Sequence: {size, type} then {unit, pad}; an output offers its capacity as a Chunk.
            header[0], header[1] = (8, sequence) if is_input else (_ATOM_CAPACITY - 8, chunk)
            header[2] = header[3] = 0

    def run(self) -> None:
        """Process one block: :attr:`inputs` to :attr:`outputs` (``[ports, block_size]`` float32)."""
        if self._atoms:
            self._reset_atoms()
        self._descriptor.run(self._plugin_handle, self.block_size)

    def close(self) -> None:
        """Deactivate and free the instance (idempotent)."""
        if self._handle:
            if self._descriptor.deactivate:
                self._descriptor.deactivate(self._plugin_handle)
            with world().lock:
                library().lilv_instance_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()
