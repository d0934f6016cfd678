"""Render one item through a plug-in: channel layout, pre-roll, latency compensation, tail.

An item ``[channels, samples]`` is streamed through fresh instances in whole
blocks: ``pre_roll`` samples of silence first (for plug-ins that glide to
their settings), then the item, then silence until the output delayed by the
plug-in's reported latency has covered the item. The output is the item's span
of that delayed stream, so a plug-in reporting its latency lines up with its
input; what rings on past the item's end is cut (``tail="cut"``), or cut with a
:class:`TailCutWarning` when it is still loud (``tail="warn"``).

Channel layouts: a signal with as many channels as the plug-in has main audio
inputs goes straight in; a plug-in with one input and one output processes each
channel on its own instance (dual mono). Side-chain inputs and CV inputs get
silence.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grafx_core.blackbox.lifecycle import instantiation_lock

from .controls import Controls
from .errors import LV2UnsupportedPluginError
from .instance import Instance
from .world import Port, world

__all__ = ["TAIL_POLICIES", "TailCutWarning", "PluginFactory", "PluginEffect", "RenderItem", "RenderBlock"]

TAIL_POLICIES = ("cut", "warn")
"""What happens to what rings past an item's end: ``"cut"`` silently, or cut with a warning when loud."""

_TAIL_LEVEL = 1e-3
"""Peak of the last block above which ``tail="warn"`` warns (-60 dBFS)."""


class TailCutWarning(UserWarning):
    """An LV2 plug-in's output was still above -60 dBFS when the item ended (``tail="warn"``)."""


class PluginFactory:
    """Makes a :class:`PluginEffect`: the first instance at once, more on demand (picklable).

    Args:
        uri, name: the plug-in.
        sample_rate: in Hz.
        block_size: samples per run.
    """

    def __init__(self, uri: str, name: str, sample_rate: float, block_size: int) -> None:
        self.uri, self.name, self.sample_rate, self.block_size = uri, name, sample_rate, block_size

    def __call__(self) -> PluginEffect:
        return PluginEffect(self)

    def instance(self) -> Instance:
        """A new instance of the plug-in."""
        return Instance(self.uri, world().ports(self.uri), self.sample_rate, self.block_size, self.name)

    def __repr__(self) -> str:
        return f"PluginFactory({self.uri!r}, sample_rate={self.sample_rate:g}, block_size={self.block_size})"


class PluginEffect:
    """The instances one item runs on (one per channel group); ``close()`` frees them."""

    def __init__(self, factory: PluginFactory) -> None:
        self.factory = factory
        self.instances = [factory.instance()]

    def instance(self, k: int) -> Instance:
        """The ``k``-th instance, made (under the process-wide instantiation lock) when first asked for."""
        while len(self.instances) <= k:
            with instantiation_lock():
                self.instances.append(self.factory.instance())
        return self.instances[k]

    def close(self) -> None:
        """Free every instance."""
        for instance in self.instances:
            instance.close()
        self.instances = []


class RenderItem:
    """``process`` of an LV2 black box: one item through :class:`PluginEffect` instances (picklable).

    Args:
        where: the plug-in's name and URI, for messages.
        uri: the plug-in's URI.
        ports: its ports.
        controls: its exposed and held controls.
        pre_roll: samples of silence run before each item.
        tail: one of :data:`TAIL_POLICIES`.
        latency_port: index of the port reporting latency, or ``None``.
        options: the host options that rebuild this render (JSON-ready keyword
            options of :func:`~grafx_lv2.processor.lv2_processor`).

    Attributes:
        last_latency: the latency (samples) reported for the last item rendered (on any thread).
        control_block: samples per value of an automated control (the host's block size): the
            plug-in runs blocks in one instance, and each run gets the values of the automation
            block its first item sample lies in, as a DAW changes controls between runs.
    """

    def __init__(self, where: str, uri: str, ports: Sequence[Port], controls: Controls, pre_roll: int, tail: str,
                 latency_port: int | None, options: Mapping[str, Any]) -> None:
        self.where, self.uri, self.controls, self.pre_roll, self.tail = where, uri, controls, pre_roll, tail
        self.latency_port, self.options = latency_port, dict(options)
        self.size = len(ports)
        self._symbols = {p.index: p.symbol for p in ports if p.kind == "control" and p.direction == "input"}
        self.inputs = sum(1 for p in ports if p.kind == "audio" and p.direction == "input"
                          and "side_chain" not in p.properties)
        self.main = [k for k, p in enumerate(p for p in ports if p.kind == "audio" and p.direction == "input")
                     if "side_chain" not in p.properties]
        self.outputs = sum(1 for p in ports if p.kind == "audio" and p.direction == "output")
        self.last_latency = 0
        self.control_block = int(options.get("block_size", 512))

    def port_values(self, natural: Mapping[str, float]) -> dict[str, float]:
        """Every input control port's value (symbol → float32 value as a float) for one item's ``natural`` values."""
        vector = self.controls.vector(self.size, natural)
        return {symbol: float(vector[index]) for index, symbol in self._symbols.items()}

    def __call__(self, effect: PluginEffect, audio: np.ndarray, sample_rate: float, **natural: Any) -> np.ndarray:
        moving = {name: value for name, value in natural.items() if isinstance(value, np.ndarray)}
        if moving:
            # One control vector per automation block; _stream sets the one for each run's position.
            count = len(next(iter(moving.values())))
            vector: np.ndarray = np.stack([self.controls.vector(self.size, {
                **natural, **{name: float(values[b]) for name, values in moving.items()}}) for b in range(count)])
        else:
            vector = self.controls.vector(self.size, natural)
        channels = audio.shape[0]
        if channels == self.inputs:
            return self._stream(effect.instance(0), audio, vector)
        if self.inputs == 1 and self.outputs == 1:
            return np.concatenate([self._stream(effect.instance(c), audio[c:c + 1], vector) for c in range(channels)])
        raise LV2UnsupportedPluginError(
            f"{self.where}: has {self.inputs} main audio input(s) and {self.outputs} output(s); a "
            f"{channels}-channel signal needs {channels} inputs (or a 1-in, 1-out plug-in, run per channel)")

    def _stream(self, instance: Instance, audio: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Run ``audio`` through ``instance``; ``vector`` is one control vector, or ``[blocks, ports]``
        for automated controls: a run takes the vector of the block its first item sample falls in."""
        moving = vector.ndim == 2
        instance.controls[:] = vector[0] if moving else vector
        block, length = instance.block_size, audio.shape[1]
        out = np.empty((len(instance.audio_out), length), dtype=np.float32)
        start = self.pre_roll  # stream sample where the item begins
        offset: int | None = None  # stream sample where its delayed output begins
        fed = 0
        while offset is None or fed < offset + length:
            instance.inputs[:] = 0.0
            lo, hi = max(fed, start), min(fed + block, start + length)
            if lo < hi:
                instance.inputs[self.main, lo - fed:hi - fed] = audio[:, lo - start:hi - start]
            if moving:
                index = min(max(fed - start, 0) // self.control_block, len(vector) - 1)
                instance.controls[:] = vector[index]
            instance.run()
            if offset is None:
                self.last_latency = self._latency(instance)
                offset = start + self.last_latency
            lo, hi = max(fed, offset), min(fed + block, offset + length)
            if lo < hi:
                out[:, lo - offset:hi - offset] = instance.outputs[:, lo - fed:hi - fed]
            fed += block
        if self.tail == "warn":
            self._check_tail(instance)
        return out

    def _latency(self, instance: Instance) -> int:
        if self.latency_port is None:
            return 0
        value = float(instance.controls[self.latency_port])
        if not math.isfinite(value) or value < 0:
            raise LV2UnsupportedPluginError(f"{self.where}: reported a latency of {value} samples")
        return int(round(value))

    def _check_tail(self, instance: Instance) -> None:
        # One more block of silence after the item's span shows whether the plug-in still rings.
        instance.inputs[:] = 0.0
        instance.run()
        peak = float(np.abs(instance.outputs).max(initial=0.0))
        if peak > _TAIL_LEVEL:
            warnings.warn(f"{self.where}: the output was still at {20 * math.log10(peak):.1f} dBFS when the item "
                          "ended; its tail is cut (pad the sources with silence to keep it)", TailCutWarning,
                          stacklevel=2)


class _BlockStream:
    """One instance's stream in progress: input waiting for a whole run, output not yet handed out."""

    def __init__(self, pre_roll: int, channels: int) -> None:
        self.waiting = np.zeros((channels, pre_roll), dtype=np.float32)  # the pre-roll's silence first
        self.ready = np.zeros((0, 0), dtype=np.float32)
        self.ran = 0  # plug-in stream samples run
        self.kept_from = 0  # plug-in stream sample where `ready` begins
        self.received = 0  # item samples received


class RenderBlock:
    """``process_block`` for a stream: the plug-in's stream of :class:`RenderItem`, continued block by block.

    Each node's instances (one per channel group) run the same sequence of
    ``block_size`` runs as a one-shot render of the whole input (the
    pre-roll's silence, then the input), so the output is bit-identical for a
    deterministic plug-in; it is handed out ``latency`` + ``block_size`` - 1
    samples late (input waits for a whole run, and the plug-in is late by its
    reported latency), which the processor declares as ``latency_samples``.

    Args:
        render: the one-shot renderer of the same plug-in and controls.
        latency: the latency the plug-in reports, measured when the processor was made.
    """

    def __init__(self, render: RenderItem, latency: int) -> None:
        self.render, self.latency = render, int(latency)

    def lateness(self, block_size: int) -> int:
        """Samples the block-wise output is late by."""
        return self.latency + block_size - 1

    def __call__(self, effect: PluginEffect, audio: np.ndarray, sample_rate: float, **natural: float) -> np.ndarray:
        vector = self.render.controls.vector(self.render.size, natural)
        streams = effect.__dict__.setdefault("block_streams", {})
        if audio.shape[0] == self.render.inputs:
            return self._block(effect.instance(0), streams, 0, audio, vector)
        if self.render.inputs == 1 and self.render.outputs == 1:
            return np.concatenate([self._block(effect.instance(c), streams, c, audio[c:c + 1], vector)
                                   for c in range(audio.shape[0])])
        return self.render(effect, audio, sample_rate, **natural)  # raises the one-shot's error

    def _block(self, instance: Instance, streams: dict[int, _BlockStream], key: int, audio: np.ndarray,
               vector: np.ndarray) -> np.ndarray:
        state = streams.setdefault(key, _BlockStream(self.render.pre_roll, audio.shape[0]))
        if state.ready.shape[0] == 0:
            state.ready = np.zeros((len(instance.audio_out), 0), dtype=np.float32)
        block = instance.block_size
        state.waiting = np.concatenate([state.waiting, audio], axis=1)
        runs = []
        while state.waiting.shape[1] >= block:
            instance.controls[:] = vector
            instance.inputs[:] = 0.0
            instance.inputs[self.render.main, :] = state.waiting[:, :block]
            instance.run()
            if state.ran == 0:
                reported = self.render._latency(instance)
                if reported != self.latency:
                    raise LV2UnsupportedPluginError(
                        f"{self.render.where}: reported a latency of {reported} samples in a stream, "
                        f"{self.latency} when the processor was made; a stream needs it fixed")
            runs.append(instance.outputs.copy())
            state.waiting = state.waiting[:, block:]
            state.ran += block
        if runs:
            state.ready = np.concatenate([state.ready, *runs], axis=1)
        # Item sample j is plug-in stream sample pre_roll + latency + j; hand out j in [n0 - D, n1 - D).
        lateness = self.lateness(block)
        first, length = state.received - lateness, audio.shape[1]
        state.received += length
        out = np.zeros((state.ready.shape[0], length), dtype=np.float32)
        lo = max(first, 0)
        if lo < first + length:
            start = self.render.pre_roll + self.latency + lo - state.kept_from
            piece = state.ready[:, start:start + first + length - lo]
            if piece.shape[1] != first + length - lo:  # the lateness covers every run; this would be a host bug
                raise LV2UnsupportedPluginError(f"{self.render.where}: a stream ran short of output")
            out[:, lo - first:lo - first + piece.shape[1]] = piece
            drop = start + piece.shape[1]
            state.ready, state.kept_from = state.ready[:, drop:], state.kept_from + drop
        return out
