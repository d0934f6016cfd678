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

__all__ = ["TAIL_POLICIES", "TailCutWarning", "PluginFactory", "PluginEffect", "RenderItem"]

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
