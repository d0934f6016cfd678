"""The demo's mixing console: a graph of analytic and pedalboard nodes, and its parameter draws.

Per track: an optional pedalboard compressor (drums, bass and lead), a
grafx-dsp parametric EQ, and a grafx-dsp gain and pan; drums go to a drum bus
with a grafx-dsp compressor, the rest to a music bus with a stereo width;
every track also feeds a pedalboard reverb on a send. The buses and the
reverb return meet on the master, followed by a parametric EQ and a
compressor. Processors come from the registry by these node type names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..graph import Graph

__all__ = ["Console", "build_console", "ESTIMATOR_CHOICES", "draw_parameters", "is_black_box"]

EQ, PAN, COMPRESSOR, WIDTH = "dsp:parametric_eq", "dsp:stereo_gain", "dsp:compressor", "dsp:stereo_width"
PB_COMPRESSOR, PB_REVERB = "pedalboard:compressor", "pedalboard:reverb"
_DRUMS = ("kick", "snare", "hats", "shaker")
_COMPRESSED = ("kick", "snare", "bass", "lead")

ESTIMATOR_CHOICES = ("auto", "finite-difference", "spsa")
"""``--estimator`` values: ``"auto"`` keeps each pedalboard effect's measured default."""


@dataclass
class Console:
    """The demo's graph and how to build its processors.

    Attributes:
        graph: the mixing graph; its ``"in"`` nodes are the tracks in order.
        options: factory options per node type (JSON-ready, for ``--options``).
    """

    graph: Graph
    options: dict[str, dict[str, Any]]


def build_console(track_names: Sequence[str], estimator: str = "auto") -> Console:
    """The mixing graph for tracks named after :data:`~grafx_core.demo.multitrack.INSTRUMENTS`.

    Args:
        track_names: one name per source; names starting with a drum
            instrument go to the drum bus, the others to the music bus.
        estimator: gradient estimator of the pedalboard nodes (one of
            :data:`ESTIMATOR_CHOICES`).

    Raises:
        ValueError: an unknown estimator.
    """
    if estimator not in ESTIMATOR_CHOICES:
        raise ValueError(f"estimator must be one of {ESTIMATOR_CHOICES}, got {estimator!r}")
    g = Graph()
    is_drum = [name.split("_")[0] in _DRUMS for name in track_names]
    # A bus exists only with tracks on it: an inlet without an edge is an error.
    drums = g.add("mix", "drum_bus") if any(is_drum) else None
    music = g.add("mix", "music_bus") if not all(is_drum) else None
    send, master = g.add("mix", "reverb_send"), g.add("mix", "master")
    for name, drum in zip(track_names, is_drum):
        node = g.add("in", name)
        if name.split("_")[0] in _COMPRESSED:
            node = _chain(g, node, (PB_COMPRESSOR, f"{name}_compressor"))
        node = _chain(g, node, (EQ, f"{name}_eq"), (PAN, f"{name}_fader"))
        g.connect(node, drums if drum else music)
        g.connect(node, send)
    if drums is not None:
        g.connect(_chain(g, drums, (COMPRESSOR, "drum_bus_compressor")), master)
    if music is not None:
        g.connect(_chain(g, music, (WIDTH, "music_bus_width")), master)
    g.connect(_chain(g, send, (PB_REVERB, "reverb")), master)
    g.connect(_chain(g, master, (EQ, "master_eq"), (COMPRESSOR, "master_compressor")), g.add("out", "mix"))
    options: dict[str, dict[str, Any]] = {EQ: {"n_peaks": 1}}
    # The reverb sits downstream of trained faders: pass their gradient straight through it
    # rather than stopping it (finite differences' natural choice).
    options[PB_REVERB] = {"signal_gradient": "straight-through"}
    if estimator != "auto":
        for node_type in (PB_COMPRESSOR, PB_REVERB):
            options.setdefault(node_type, {})["estimator"] = estimator
    present = set(g.processor_types())  # options for an absent type are an error (processors_for_graph)
    return Console(g, {t: o for t, o in options.items() if t in present})


def _chain(graph: Graph, source: int, *nodes: tuple[str, str]) -> int:
    for node_type, name in nodes:
        node = graph.add(node_type, name)
        graph.connect(source, node)
        source = node
    return source


def is_black_box(processor: Any) -> bool:
    """Whether ``processor`` keeps raw (sigmoid-mapped) parameters, as black-box processors do."""
    return callable(getattr(processor, "raw_parameters", None)) and hasattr(processor, "specs")


# Musical ranges for the hidden mix and the random start, in natural units:
# (low, high, log scale) by (node type, parameter).
_RANGES: dict[tuple[str, str], tuple[float, float, bool]] = {
    (EQ, "low_shelf_cutoff_hz"): (60.0, 250.0, True),
    (EQ, "peak_cutoff_hz"): (300.0, 4000.0, True),
    (EQ, "high_shelf_cutoff_hz"): (3000.0, 10000.0, True),
    (EQ, "low_shelf_q"): (0.5, 1.0, True),
    (EQ, "high_shelf_q"): (0.5, 1.0, True),
    (EQ, "peak_q"): (0.5, 2.0, True),
    (EQ, "low_shelf_gain_db"): (-6.0, 6.0, False),
    (EQ, "peak_gain_db"): (-6.0, 6.0, False),
    (EQ, "high_shelf_gain_db"): (-6.0, 6.0, False),
    (PAN, "gain_db"): (-9.0, 0.0, False),
    (PAN, "pan"): (-0.7, 0.7, False),
    (WIDTH, "width"): (0.6, 1.6, False),
    (COMPRESSOR, "threshold_db"): (-24.0, -8.0, False),
    (COMPRESSOR, "ratio"): (1.5, 4.0, True),
    (COMPRESSOR, "knee_db"): (3.0, 9.0, False),
    (COMPRESSOR, "attack_ms"): (3.0, 30.0, True),
    (COMPRESSOR, "release_ms"): (60.0, 300.0, True),
    (COMPRESSOR, "makeup_db"): (0.0, 4.0, False),
    (PB_COMPRESSOR, "threshold_db"): (-30.0, -10.0, False),
    (PB_COMPRESSOR, "ratio"): (2.0, 8.0, True),
    (PB_COMPRESSOR, "attack_ms"): (1.0, 30.0, True),
    (PB_COMPRESSOR, "release_ms"): (50.0, 300.0, True),
    (PB_REVERB, "room_size"): (0.3, 0.8, False),
    (PB_REVERB, "damping"): (0.2, 0.7, False),
    (PB_REVERB, "wet_level"): (0.1, 0.3, False),
    (PB_REVERB, "dry_level"): (0.02, 0.1, False),
    (PB_REVERB, "width"): (0.5, 0.9, False),
}


def _draw(low: float, high: float, log: bool, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    if log:
        return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def _fallback_range(processor: Any, name: str) -> tuple[float, float, bool]:
    """The middle half of a processor's own range, for parameters the table does not know."""
    ranges = getattr(processor, "ranges", {})
    if name in ranges:
        low, high = float(ranges[name].low), float(ranges[name].high)
        return low + 0.25 * (high - low), high - 0.25 * (high - low), False
    specs = {s.name: s for s in getattr(processor, "specs", ())}
    if name in specs:
        spec = specs[name]
        middle = spec.to_natural(torch.tensor([0.25, 0.75], dtype=torch.float64))
        return float(middle[0]), float(middle[1]), False
    raise KeyError(f"the demo has no range for parameter {name!r} of {type(processor).__name__}")


def draw_parameters(graph: Graph, processors: Mapping[str, Any], generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> nn.ModuleDict:
    """Random musical parameters for every processor node of ``graph``.

    Values are drawn in natural units from the ranges above; black-box
    processors get the raw values mapping to them, and their
    non-differentiable controls keep their defaults (a fit cannot move them).

    Returns:
        Trainable parameters as :func:`grafx_core.create_empty_parameters` makes them.
    """
    result = nn.ModuleDict()
    for node_type in graph.processor_types():
        processor, count = processors[node_type], len(graph.nodes_of_type(node_type))
        sizes = processor.parameter_size()
        natural: dict[str, torch.Tensor] = {}
        for name, size in sizes.items():
            shape = (count, *((size,) if isinstance(size, int) else tuple(size)))
            low, high, log = _RANGES.get((node_type, name)) or _fallback_range(processor, name)
            natural[name] = _draw(low, high, log, shape, generator)
        if is_black_box(processor):
            frozen = {s.name for s in processor.specs if not s.differentiable}
            defaults = processor.default_parameters()
            raw = processor.raw_parameters(**{k: v.reshape(count) for k, v in natural.items() if k not in frozen})
            values = {name: raw[name] if name in raw else torch.full((count, 1), float(defaults[name]))
                      for name in sizes}
        else:
            values = natural
        result[node_type] = nn.ParameterDict({k: nn.Parameter(v.to(dtype)) for k, v in values.items()})
    return result
