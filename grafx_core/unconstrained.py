"""The one map between a control's values and an unconstrained space, read from its declared range and scale.

An optimiser, a neural predictor and a finite-difference estimator all want a
space where every real number is a valid value and one step means about as
much anywhere. Three spaces are involved:

* natural: the control's own units (dB, Hz, ms, a ratio), inside
  ``[low, high]``;
* unit: ``[0, 1]``, where the estimators work: ``MARGIN`` at each end maps
  exactly onto the bound (plug-in defaults often lie on a bound: a dry level
  of 0, a threshold of 0 dB), and the inside maps linearly (``"linear"``) or
  geometrically (``"log"``) onto the range; a ``"log"`` range starting at or
  below 0 is a log scale shifted by ``(high - low) / 1000``;
* unconstrained: ``logit(unit)``, any real number.

A discrete control cuts ``[0, 1]`` into one equal bin per value.

Two uses, one map:

* **Range-enforcing** (:func:`to_unconstrained`, :func:`from_unconstrained`
  with ``enforce_range=True``, the default): a bounded control goes through
  the sigmoid above, so no unconstrained value can leave ``[low, high]``. A
  black box's parameter tensor and a predictor head's output live here.
* **Open** (``enforce_range=False``): for a processor that takes any real
  value and limits it itself (grafx-dsp's soft limits), a ``"log"`` control is
  moved as its logarithm, a control in dB in units of 6 dB and a gate logit in
  units of 4; anything else as it is. Fitting moves analytic processors here.

A start on a bound would sit deep in the sigmoid's tail, where the gradient
is about ``MARGIN`` times smaller than in the middle and Adam barely moves it;
:func:`trainable_start` pulls such a start ``START_EDGE`` inside the range.
"""

from __future__ import annotations

import math

import torch

from .control import Control

__all__ = ["MARGIN", "START_EDGE", "to_unit", "from_unit", "to_unconstrained", "from_unconstrained",
           "trainable_start", "OPEN_STEPS"]

MARGIN = 2.5e-4
"""Width of unit ``[0, 1]`` at each end that maps exactly onto a bounded control's bound.

A quarter of the default finite-difference step, so that a step from
anywhere in the margin reaches well into the range."""

START_EDGE = 0.01
"""Where a start on a bound is moved to, in unit ``[0, 1]``: the sigmoid's slope there is 40x that at ``MARGIN``."""

OPEN_STEPS = {"dB": 6.0, "logit": 4.0}
"""Units whose open-space value is divided by a step: one unit of the open space is 6 dB, or 4 logit units."""

_SHIFTED_LOG_RATIO = 1001.0
"""``(high + f) / (low + f)`` of a log range starting at or below 0: three decades."""


def _bounds(control: Control) -> tuple[float, float]:
    if control.low is None or control.high is None:
        raise ValueError(f"the unit space needs a bounded control, got [{control.low}, {control.high}]")
    return control.low, control.high


def _log_ratio(low: float, high: float) -> float:
    return math.log(high / low) if low > 0 else math.log(_SHIFTED_LOG_RATIO)


def from_unit(control: Control, unit: torch.Tensor) -> torch.Tensor:
    """Natural values from unit ``[0, 1]`` values (differentiable for continuous controls, any shape).

    Raises:
        ValueError: the control is not bounded.
    """
    low, high = _bounds(control)
    if control.values is not None:
        values = control.values
        table = torch.tensor(values, dtype=torch.float64, device=unit.device)
        index = (unit.detach().to(torch.float64) * len(values)).floor().clamp(0, len(values) - 1)
        return table[index.long()].to(unit.dtype if unit.is_floating_point() else torch.float64)
    u = ((unit - MARGIN) / (1.0 - 2.0 * MARGIN)).clamp(0.0, 1.0)
    if control.scale == "log" and low > 0:
        inner = low * torch.exp(u * _log_ratio(low, high))
    elif control.scale == "log":
        shift = (high - low) / (_SHIFTED_LOG_RATIO - 1.0)
        inner = low + shift * torch.expm1(u * _log_ratio(low, high))
    else:
        inner = low + u * (high - low)
    # exp(log(b / a)) * a is not always b in floating point: the bounds must come out exact.
    return torch.where(u >= 1.0, high, torch.where(u <= 0.0, low, inner))


def to_unit(control: Control, natural: torch.Tensor) -> torch.Tensor:
    """Unit ``[0, 1]`` values from natural ones (clamped into the range).

    A bound maps to the edge of its margin (``MARGIN`` or ``1 - MARGIN``); a
    discrete control's value to the centre of the nearest value's bin.

    Raises:
        ValueError: the control is not bounded.
    """
    low, high = _bounds(control)
    v = natural.clamp(low, high)
    if control.values is not None:
        table = torch.tensor(control.values, dtype=torch.float64, device=natural.device)
        index = (v.to(torch.float64)[..., None] - table).abs().argmin(dim=-1)
        return ((index.to(torch.float64) + 0.5) / len(control.values)).to(
            natural.dtype if natural.is_floating_point() else torch.float64)
    if control.scale == "log" and low > 0:
        u = torch.log(v / low) / _log_ratio(low, high)
    elif control.scale == "log":
        shift = (high - low) / (_SHIFTED_LOG_RATIO - 1.0)
        u = torch.log1p((v - low) / shift) / _log_ratio(low, high)
    else:
        u = (v - low) / (high - low)
    return MARGIN + (1.0 - 2.0 * MARGIN) * u


def to_unconstrained(control: Control, natural: torch.Tensor, *, enforce_range: bool = True) -> torch.Tensor:
    """Unconstrained values giving ``natural`` (any shape; see the module documentation).

    Range-enforcing, a bounded control's bound maps into the middle of its
    margin, so that its unconstrained value gives the bound exactly whatever
    the rounding of the sigmoid; values outside the range are clamped into it.
    """
    if enforce_range and control.bounded:
        n = to_unit(control, natural)
        if control.values is None:
            low, high = _bounds(control)
            n = torch.where(natural <= low, MARGIN / 2, torch.where(natural >= high, 1 - MARGIN / 2, n))
        return torch.logit(n)
    if control.scale == "log":
        return torch.log(natural - _open_log_offset(control))
    return natural / OPEN_STEPS.get(control.unit, 1.0)


def from_unconstrained(control: Control, raw: torch.Tensor, *, enforce_range: bool = True) -> torch.Tensor:
    """Natural values from unconstrained ones: the inverse of :func:`to_unconstrained` (differentiable).

    Range-enforcing, the sigmoid is taken in float64 whatever ``raw``'s dtype,
    so that a value does not depend on how many others it is mapped with
    (float32 kernels round the last bit differently for different tensor
    sizes); the result has ``raw``'s dtype.
    """
    if enforce_range and control.bounded:
        dtype = raw.dtype
        return from_unit(control, torch.sigmoid(raw.to(torch.float64))).to(dtype)
    if control.scale == "log":
        return torch.exp(raw) + _open_log_offset(control)
    return raw * OPEN_STEPS.get(control.unit, 1.0)


def _open_log_offset(control: Control) -> float:
    low, high = _bounds(control)
    return 0.0 if low > 0 else low - (high - low) / (_SHIFTED_LOG_RATIO - 1.0)


def trainable_start(control: Control, raw: torch.Tensor) -> torch.Tensor:
    """A range-enforcing unconstrained start pulled out of the sigmoid's tails (any shape).

    Values whose unit image lies within ``START_EDGE`` of 0 or 1 move to
    ``START_EDGE`` (or ``1 - START_EDGE``), where the slope is large enough
    for an optimiser to move them in a few steps; others are kept exactly.
    Unbounded and discrete controls are returned as they are.
    """
    if not control.bounded or control.values is not None:
        return raw
    edge = math.log(START_EDGE / (1.0 - START_EDGE))
    return raw.clamp(edge, -edge)
