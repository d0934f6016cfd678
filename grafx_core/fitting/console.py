"""A mixing console for a set of named stems, built from any registered processor names.

Per track: an optional compressor, an EQ and a fader (gain and pan); drum
tracks (named kick, snare, hats, toms, ...) meet on a drum bus with a bus
compressor, the others on a music bus with a stereo width; every track
also feeds a reverb on a send. The buses and the reverb return meet on the
master, followed by the master chain and a peak limiter. Each slot holds a processor name
(``"dsp:compressor"``, ``"pedalboard:compressor"``, an ``lv2:`` plug-in,
...), so a console of black-box effects is the same graph with other names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..graph import Graph
from ..parameters import create_empty_parameters
from .latent import is_black_box

__all__ = ["ConsoleEffects", "Console", "CONSOLES", "LIMITER_START", "HIGHPASS_START", "BELL_START", "PRE_DELAY_START",
           "build_console", "with_effects", "is_drum"]

_DRUM_WORDS = ("kick", "bd", "snare", "sd", "hat", "hats", "hihat", "hh", "tom", "toms", "drum", "drums",
               "cymbal", "crash", "ride", "perc", "percussion", "shaker", "clap", "overhead", "overheads", "oh")


def is_drum(name: str) -> bool:
    """Whether a track named ``name`` goes to the drum bus: a word of it names a drum
    (``"kick"``, ``"snare_top"``, ``"Hats 2"``, ``"overheads"``, ...)."""
    return any(word in _DRUM_WORDS for word in re.split(r"[^a-z]+", name.lower()))


@dataclass(frozen=True)
class ConsoleEffects:
    """Which processor sits in each slot of the console (``None`` leaves a slot out).

    Attributes:
        track_compressor: on each compressed track, before its EQ.
        compressed: name prefixes of the tracks that get a compressor
            (``None``: every track).
        eq, fader: on every track; the fader must turn mono or stereo into stereo.
        drum_bus, music_bus: on the buses.
        reverb: on the send all tracks feed.
        send: a level on each track's send (``"<track>_send"``, after the
            fader), or ``None`` to feed the send at the fader's level.
        master: the master chain, in order.
        options: factory options per processor name (JSON-ready).
        start: start values (processor units) that replace a processor's
            defaults, ``{processor name: {parameter: value}}``.
        limiter: the last slot of the master chain, a peak limiter (``None``: none);
            its start values are :data:`LIMITER_START` when it is ``"dsp:compressor"``.
        compressor_after_eq: the track compressor follows the EQ (as in sox's ``equalizer ... compand``)
            instead of preceding it.
        highpass: a high-pass filter first on each track (``"<track>_highpass"``, e.g. ``"dsp:highpass"``),
            or ``None``; its start (:data:`HIGHPASS_START`, 20 Hz) is all but transparent.
        bells: peaking bands after each track's EQ, one node each (``"<track>_bell<k>"``, ``k`` from 2: the
            EQ's own band is the first), so that ``--prune`` removes those the mix does not need.
        bell: the processor of those bands (a peaking filter with ``cutoff_hz``, ``q`` and ``gain_db``).
        pre_delay: a delay between the send and the reverb (``"reverb_predelay"``, e.g. ``"dsp:delay"``:
            the same delay on both channels of the stereo send), or ``None``; a ``"dsp:delay"`` there starts
            as :data:`PRE_DELAY_START` and its feedback and mix stay fixed: a pure delay.
        fixed: parameters the fit leaves at their start values, ``{processor name: (parameter, ...)}``:
            a compressor's make-up gain does what the fader after it does, and two controls
            with one effect move in lockstep and make the report say nothing about either.
    """

    track_compressor: str | None = "dsp:compressor"
    compressed: tuple[str, ...] | None = None
    eq: str = "dsp:parametric_eq"
    fader: str = "dsp:stereo_gain"
    drum_bus: str | None = "dsp:compressor"
    music_bus: str | None = "dsp:stereo_width"
    reverb: str | None = "dsp:reverb"
    send: str | None = None
    master: tuple[str, ...] = ("dsp:parametric_eq", "dsp:compressor")
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    start: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    limiter: str | None = "dsp:compressor"
    fixed: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"dsp:compressor": ("makeup_db",)})
    compressor_after_eq: bool = False
    highpass: str | None = None
    bells: int = 0
    bell: str = "dsp:peak"
    pre_delay: str | None = None


HIGHPASS_START: dict[str, float] = {"cutoff_hz": 20.0, "q": 0.7071}
"""A ``dsp:highpass`` on a track at the start: Butterworth at 20 Hz (the initialiser moves it where the stem's
low end says)."""

BELL_START: dict[str, float] = {"q": 1.0, "gain_db": 0.0}
"""A ``dsp:peak`` band at the start: flat, as wide as the parametric EQ's own band (the bands of a track
start log-spaced from 500 Hz to 6 kHz, where the analysis places none)."""

PRE_DELAY_START: dict[str, float] = {"delay_ms": 10.0, "feedback": 0.0, "mix": 1.0}
"""A ``dsp:delay`` as the reverb's pre-delay: 10 ms, no echoes, wet only."""

_PRE_DELAY_FIXED = ("feedback", "mix")

LIMITER_START: dict[str, float] = {"threshold_db": -1.0, "ratio": 20.0, "knee_db": 0.0, "attack_ms": 0.1,
                                   "release_ms": 50.0}
"""A ``dsp:compressor`` as a master peak limiter: a hard knee at -1 dBFS, ratio 20, 0.1 ms attack."""


CONSOLES: dict[str, ConsoleEffects] = {
    # The reverb's default (0 dB mid) would drown a mix in its return; start it well below the tracks.
    # Compressors start at ratio 1: transparent, so that the start a least-squares solve finds for the
    # faders is not undone by their default squash, yet each ratio still has a gradient.
    "analytic": ConsoleEffects(options={"dsp:parametric_eq": {"n_peaks": 1},
                                        "dsp:reverb": {"n_bands": 4, "ir_seconds": 1.0}},
                               start={"dsp:reverb": {"gain_db": -24.0, "decay_s": 0.8},
                                      "dsp:compressor": {"ratio": 1.0}}),
    # The reverb sits downstream of trained faders: pass their gradient straight through it
    # rather than stopping it (finite differences' natural choice).
    # A send reverb returns wet only: the dry signal already reaches the master through the buses.
    "pedalboard": ConsoleEffects(track_compressor="pedalboard:compressor", reverb="pedalboard:reverb",
                                 options={"dsp:parametric_eq": {"n_peaks": 1},
                                          "pedalboard:reverb": {"signal_gradient": "straight-through"}},
                                 start={"pedalboard:reverb": {"dry_level": 0.02, "wet_level": 0.15},
                                        "dsp:compressor": {"ratio": 1.0}}),
    # What sox's mixing effects can express, and a fit can solve: per track an EQ, then sox's compand (its
    # twin), a fader and pan, and a send to a learned impulse response (solved by least squares, not by
    # gradient steps: 2 x 1 s of taps). No buses, no master chain: sox normalises the sum, which the
    # faders and the response's scale absorb.
    "sox": ConsoleEffects(track_compressor="dsp:sox_compand", compressor_after_eq=True, drum_bus=None,
                          music_bus=None, reverb="dsp:impulse_response", send="dsp:gain", master=(), limiter=None,
                          options={"dsp:parametric_eq": {"n_peaks": 1}, "dsp:impulse_response": {"taps": 44100}},
                          start={"dsp:sox_compand": {"ratio": 1.0}},
                          fixed={"dsp:sox_compand": ("makeup_db",), "dsp:impulse_response": ("ir",)}),
}
"""Named consoles: ``"analytic"`` (grafx-dsp only, autograd everywhere), ``"pedalboard"`` (pedalboard
compressors on the tracks and a pedalboard reverb) and ``"sox"`` (what a sox mix is made of: EQ, the compand
twin, faders, per-track sends to a learned impulse response)."""


@dataclass
class Console:
    """A console's graph and how to build its processors.

    Attributes:
        graph: the mixing graph; its ``"in"`` nodes are the tracks in order, one ``"out"`` node the mix.
        options: factory options per node type present in the graph (JSON-ready, for ``--options``).
        start: start values replacing processor defaults (see :class:`ConsoleEffects`).
        node_start: start values of single nodes, ``{node name: {parameter: value}}``, applied after ``start``.
        fixed: parameters the fit leaves alone (see :class:`ConsoleEffects`).
    """

    graph: Graph
    options: dict[str, dict[str, Any]]
    start: dict[str, dict[str, float]] = field(default_factory=dict)
    node_start: dict[str, dict[str, float]] = field(default_factory=dict)
    fixed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def start_parameters(self, processors: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Each processor's defaults for every node, with :attr:`start`'s and then :attr:`node_start`'s
        values in their place (given in units; black boxes get the raw values that map to them)."""
        params = create_empty_parameters(self.graph, processors)
        with torch.no_grad():
            for node_type, values in self.start.items():
                if node_type in params.keys():
                    rows = torch.arange(len(self.graph.nodes_of_type(node_type)))
                    _set_rows(params[node_type], processors[node_type], rows, values)
            names = {node.name: node for node in self.graph.nodes if node.name}
            for name, values in self.node_start.items():
                node = names.get(name)
                if node is None or node.type not in params.keys():
                    continue
                row = torch.tensor([self.graph.nodes_of_type(node.type).index(node.id)])
                _set_rows(params[node.type], processors[node.type], row, values)
        return {t: {k: v.detach() for k, v in params[t].items()} for t in params.keys()}


def _set_rows(params: Any, processor: Any, rows: torch.Tensor, values: Mapping[str, float]) -> None:
    if is_black_box(processor):
        values = processor.raw_parameters(**{k: torch.full((len(rows),), float(v)) for k, v in values.items()})
    for name, value in values.items():
        target = params[name]
        target[rows] = torch.as_tensor(value, dtype=target.dtype).expand_as(target[rows])


def build_console(track_names: Sequence[str], effects: ConsoleEffects | str = "analytic") -> Console:
    """The mixing graph for ``track_names`` (see the module's description).

    Args:
        track_names: one name per source, in order; drum names (:func:`is_drum`)
            go to the drum bus, the others to the music bus.
        effects: a :class:`ConsoleEffects` or a name in :data:`CONSOLES`.

    Raises:
        ValueError: an unknown console name, or no tracks.
    """
    if isinstance(effects, str):
        if effects not in CONSOLES:
            raise ValueError(f"unknown console {effects!r}: choose one of {sorted(CONSOLES)}")
        effects = CONSOLES[effects]
    if not track_names:
        raise ValueError("a console needs at least one track")
    g = Graph()
    drum = [is_drum(name) for name in track_names]
    # A bus exists only with tracks on it: an inlet without an edge is an error.
    drums = g.add("mix", "drum_bus") if any(drum) else None
    music = g.add("mix", "music_bus") if not all(drum) else None
    send = g.add("mix", "reverb_send") if effects.reverb else None
    master = g.add("mix", "master")
    for name, on_drums in zip(track_names, drum):
        node = g.add("in", name)
        strip = [(effects.eq, f"{name}_eq"), *((effects.bell, f"{name}_bell{k}") for k in range(2, effects.bells + 2))]
        if effects.track_compressor and (effects.compressed is None or name.startswith(effects.compressed)):
            strip.insert(len(strip) if effects.compressor_after_eq else 0,
                         (effects.track_compressor, f"{name}_compressor"))
        if effects.highpass:
            strip.insert(0, (effects.highpass, f"{name}_highpass"))
        node = _chain(g, node, *strip, (effects.fader, f"{name}_fader"))
        g.connect(node, drums if on_drums else music)
        if send is not None:
            g.connect(_chain(g, node, *(((effects.send, f"{name}_send"),) if effects.send else ())), send)
    for bus, slot, label in ((drums, effects.drum_bus, "drum_bus_compressor"),
                             (music, effects.music_bus, "music_bus_width")):
        if bus is not None:
            g.connect(_chain(g, bus, *(((slot, label),) if slot else ())), master)
    if send is not None and effects.reverb:
        pre_delay = ((effects.pre_delay, "reverb_predelay"),) if effects.pre_delay else ()
        g.connect(_chain(g, send, *pre_delay, (effects.reverb, "reverb")), master)
    labels = {"dsp:parametric_eq": "master_eq", "dsp:compressor": "master_compressor"}
    chain = [(t, labels.get(t, f"master_{k}")) for k, t in enumerate(effects.master)]
    node_start = _added_starts([(effects.highpass, f"{name}_highpass") for name in track_names]
                               + [(effects.bell, f"{name}_bell{k}") for name in track_names
                                  for k in range(2, effects.bells + 2)]
                               + ([(effects.pre_delay, "reverb_predelay")] if send is not None else []))
    for name in track_names:  # flat bands at one frequency would move in lockstep: spread them
        for k, hz in enumerate(_spread(effects.bells)):
            if f"{name}_bell{k + 2}" in node_start:
                node_start[f"{name}_bell{k + 2}"]["cutoff_hz"] = hz
    if effects.limiter:
        chain.append((effects.limiter, "master_limiter"))
        if effects.limiter == "dsp:compressor":
            node_start["master_limiter"] = dict(LIMITER_START)
    g.connect(_chain(g, master, *chain), g.add("out", "mix"))
    present = set(g.processor_types())  # options for an absent type are an error (processors_for_graph)
    fixed = {t: tuple(v) for t, v in effects.fixed.items() if t in present}
    if effects.pre_delay == "dsp:delay" and send is not None:
        fixed["dsp:delay"] = tuple(dict.fromkeys((*fixed.get("dsp:delay", ()), *_PRE_DELAY_FIXED)))
    return Console(g, {t: dict(o) for t, o in effects.options.items() if t in present},
                   {t: dict(v) for t, v in effects.start.items() if t in present}, node_start, fixed)


_ADDED_STARTS = {"dsp:highpass": HIGHPASS_START, "dsp:peak": BELL_START, "dsp:delay": PRE_DELAY_START}


def _added_starts(nodes: Sequence[tuple[str | None, str]]) -> dict[str, dict[str, float]]:
    """Start values of the high-pass, bell and pre-delay ``(processor, node name)`` (grafx-dsp's only)."""
    return {name: dict(_ADDED_STARTS[kind]) for kind, name in nodes if kind in _ADDED_STARTS}


def _spread(count: int) -> list[float]:
    """``count`` frequencies log-spaced from 500 Hz to 6 kHz (one: 1 kHz)."""
    if count == 1:
        return [1000.0]
    return [500.0 * 12.0 ** (k / (count - 1)) for k in range(count)]


def with_effects(effects: ConsoleEffects, **slots: Any) -> ConsoleEffects:
    """``effects`` with some slots replaced (``None`` values are ignored)."""
    return replace(effects, **{k: v for k, v in slots.items() if v is not None})


def _chain(graph: Graph, source: int, *nodes: tuple[str, str]) -> int:
    for node_type, name in nodes:
        node = graph.add(node_type, name)
        graph.connect(source, node)
        source = node
    return source
