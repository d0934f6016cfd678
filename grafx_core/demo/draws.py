"""The demo's console and its parameter draws: musical ranges for the hidden mix and the random start.

The console is :mod:`grafx_core.fitting.console`'s with pedalboard
compressors on drums, bass and lead, and a pedalboard reverb on the send.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .._tree import ParameterModules, ParameterTree
from ..description import describe
from ..fitting.console import CONSOLES, Console, build_console
from ..fitting.latent import is_black_box
from ..graph import Graph
from ..unconstrained import from_unit

__all__ = ["ESTIMATOR_CHOICES", "demo_console", "draw_parameters"]

EQ, PAN, COMPRESSOR, WIDTH = "dsp:parametric_eq", "dsp:stereo_gain", "dsp:compressor", "dsp:stereo_width"
PB_COMPRESSOR, PB_REVERB = "pedalboard:compressor", "pedalboard:reverb"
_COMPRESSED = ("kick", "snare", "bass", "lead")

ESTIMATOR_CHOICES = ("auto", "finite-difference", "spsa")
"""``--estimator`` values: ``"auto"`` keeps each pedalboard effect's measured default."""


def demo_console(track_names: list[str], estimator: str = "auto") -> Console:
    """The demo's console for tracks named after :data:`~grafx_core.demo.multitrack.INSTRUMENTS`.

    Args:
        track_names: one name per source.
        estimator: gradient estimator of the pedalboard nodes (one of :data:`ESTIMATOR_CHOICES`).

    Raises:
        ValueError: an unknown estimator.
    """
    if estimator not in ESTIMATOR_CHOICES:
        raise ValueError(f"estimator must be one of {ESTIMATOR_CHOICES}, got {estimator!r}")
    effects = CONSOLES["pedalboard"]
    options = {t: dict(o) for t, o in effects.options.items()}
    if estimator != "auto":
        for node_type in (PB_COMPRESSOR, PB_REVERB):
            options.setdefault(node_type, {})["estimator"] = estimator
    return build_console(track_names, replace(effects, compressed=_COMPRESSED, options=options))


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
    ("dsp:reverb", "gain_db"): (-30.0, -18.0, False),
    ("dsp:reverb", "decay_s"): (0.3, 1.2, True),
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
    control = describe(processor).controls.get((name,))
    if control is not None and control.unconstrained:
        middle = from_unit(control, torch.tensor([0.25, 0.75], dtype=torch.float64))
        return float(middle[0]), float(middle[1]), False
    if control is not None and control.bounded:
        low, high = float(control.low), float(control.high)  # type: ignore[arg-type]
        return low + 0.25 * (high - low), high - 0.25 * (high - low), False
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
    result = ParameterModules()
    for node_type in graph.processor_types():
        processor, count = processors[node_type], len(graph.nodes_of_type(node_type))
        description = describe(processor)
        sizes = {path[0]: control.shape for path, control in description.controls.items()}
        natural: dict[str, torch.Tensor] = {}
        for name, size in sizes.items():
            shape = (count, *size)
            low, high, log = _RANGES.get((node_type, name)) or _fallback_range(processor, name)
            natural[name] = _draw(low, high, log, shape, generator)
        if is_black_box(processor):
            frozen = {path[0] for path in description.nondifferentiable()}
            raw = processor.raw_parameters(**{k: v.reshape(count) for k, v in natural.items() if k not in frozen})
            values = {name: raw[name] if name in raw
                      else torch.full((count, 1), description.parameter_default((name,))[0]) for name in sizes}
        else:
            values = natural
        result[node_type] = ParameterTree({k: nn.Parameter(v.to(dtype)) for k, v in values.items()})
    return result
