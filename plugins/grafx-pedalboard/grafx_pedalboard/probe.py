"""Measure whether a black box's controls are differentiable in practice.

A control can be differentiable on paper and useless to an estimator: it may
move the output in steps (a delay time in whole samples, a bit depth), or its
local slope may be exact but its loss landscape a comb of local minima (an LFO
rate). :func:`probe_controls` measures three things per control, on a signal
you choose, with the other controls held at given values:

``spread``
    The local slope of a fixed random linear loss ``<w, y>`` by central
    differences at steps ``h`` and ``2h`` of the normalised range (each divided
    by the change the effect really sees after float32 rounding), at several
    points of the range; the worst ``|g(h) - g(2h)| / max |g|``. Smooth controls
    agree to a few percent; steps and noise do not.
``steps``
    Among neighbourhoods where the control acts at all, the worst fraction of
    ``40`` neighbouring renders (spacing ``h / 4``) that left the output
    bit-identical: piecewise-constant controls.
``minima``
    Strict local minima of the mean squared error to a target rendered at the
    middle of the range, over ``101`` points spanning the range.

A control is judged differentiable when ``spread <= MAX_SPREAD``,
``steps <= MAX_STEPS`` and ``minima <= MAX_MINIMA``. The flags of the
built-in effects were set from this measurement (``tools/measure_controls.py``);
for an external plug-in, probe it and pass ``differentiable=`` accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec

__all__ = ["ControlProbe", "probe_controls", "MAX_SPREAD", "MAX_STEPS", "MAX_MINIMA"]

MAX_SPREAD = 0.5
"""Most relative disagreement of the slopes at steps h and 2h for a differentiable control."""

MAX_STEPS = 0.1
"""Most fraction of unchanged neighbouring renders (where the control acts) for a differentiable control."""

MAX_MINIMA = 2
"""Most local minima of the squared error over the range for a differentiable control."""


@dataclass(frozen=True)
class ControlProbe:
    """What :func:`probe_controls` measured for one control.

    Attributes:
        name: the control.
        spread: worst relative disagreement of the slopes at steps h and 2h.
        steps: worst fraction of bit-identical neighbouring renders where it acts.
        minima: local minima of the squared error to a mid-range target.
        flagged: the processor's current ``differentiable`` flag.
    """

    name: str
    spread: float
    steps: float
    minima: int
    flagged: bool

    @property
    def differentiable(self) -> bool:
        """The verdict: smooth, not piecewise constant, and with few local minima."""
        return self.spread <= MAX_SPREAD and self.steps <= MAX_STEPS and self.minima <= MAX_MINIMA


def _natural(spec: ParameterSpec, n: float) -> float:
    return float(np.float32(spec.to_natural(torch.tensor(n, dtype=torch.float64))))


def _normalised(spec: ParameterSpec, value: float) -> float:
    return float(spec.to_normalised(torch.tensor(value, dtype=torch.float64)))


def probe_controls(
    processor: BlackBoxProcessor,
    signal: np.ndarray | torch.Tensor,
    *,
    controls: Sequence[str] | None = None,
    values: Mapping[str, float] | None = None,
    points: Sequence[float] = (0.25, 0.5, 0.75),
    step: float = 1e-3,
    seed: int = 0,
) -> list[ControlProbe]:
    """Measure each control's smoothness on ``signal`` (see the module documentation).

    Renders run in the calling thread through ``processor.process_item``, so
    they use exactly the effect, options and item path a graph would.

    Args:
        processor: a black box (any ``pedalboard:*`` processor, a chain, an
            external plug-in).
        signal: one item, ``[channels, samples]``.
        controls: which controls to probe (default: all).
        values: natural values of the other controls (default: their defaults);
            choose them so that the probed control acts (a 0 dB EQ band has no
            audible frequency).
        points: normalised positions where slopes and steps are measured.
        step: the finite-difference step ``h`` in normalised units.
        seed: seeds the random weights of the linear loss.

    Returns:
        One :class:`ControlProbe` per probed control, in the processor's order.

    Raises:
        KeyError: an unknown control name in ``controls`` or ``values``.
    """
    x = np.ascontiguousarray(np.asarray(signal.detach().cpu() if isinstance(signal, torch.Tensor) else signal,
                                        dtype=np.float32))
    specs = {s.name: s for s in processor.specs}
    for key in [*(controls or ()), *(values or {})]:
        if key not in specs:
            raise KeyError(f"{processor.name}: no control {key!r}; it has {list(specs)}")
    base = {name: float(np.float32(s.default)) for name, s in specs.items()}
    base.update({k: float(v) for k, v in (values or {}).items()})
    weights = np.random.default_rng(seed).standard_normal(x.shape)

    def render(spec: ParameterSpec, n: float) -> np.ndarray:
        y = processor.process_item(x, {**base, spec.name: _natural(spec, n)})
        return np.asarray(y, dtype=np.float64).reshape(x.shape[0], -1)

    probes = []
    for name in controls or list(specs):
        spec = specs[name]
        spread, steps = 0.0, 0.0
        for centre in points:
            slopes = []
            for h in (step, 2 * step):
                lo, hi = max(centre - h, 0.0), min(centre + h, 1.0)
                a, b = _natural(spec, lo), _natural(spec, hi)
                change = float((weights * (render(spec, hi) - render(spec, lo))).sum())
                slopes.append(change / (_normalised(spec, b) - _normalised(spec, a)))
            scale = max(abs(s) for s in slopes)
            if scale > 0:
                spread = max(spread, abs(slopes[0] - slopes[1]) / scale)
            outs = [render(spec, min(centre + step / 4 * k, 1.0)) for k in range(41)]
            same = [np.array_equal(p, q) for p, q in zip(outs, outs[1:])]
            if not all(same):  # the control acts here
                steps = max(steps, float(np.mean(same)))
        target = render(spec, 0.5)
        losses = np.array([np.mean((render(spec, n) - target) ** 2) for n in np.linspace(0.0, 1.0, 101)])
        minima = int(np.sum((losses[1:-1] < losses[:-2]) & (losses[1:-1] < losses[2:])))
        probes.append(ControlProbe(name, spread, steps, minima, spec.differentiable))
    return probes
