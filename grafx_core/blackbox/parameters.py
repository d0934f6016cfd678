"""Parameter specs of black-box controls and the maps between their three spaces.

A control lives in three spaces:

* raw: the unconstrained real the processor's parameter tensor holds (what an
  optimiser or a neural predictor drives);
* normalised: ``n = sigmoid(raw)`` in ``[0, 1]``, where the estimators work;
* natural: the effect's own units (dB, Hz, ms, ratio).

Continuous controls map ``n`` to ``u = clamp((n - m) / (1 - 2 m), 0, 1)`` with
a margin ``m = 2.5e-4`` (:data:`MARGIN`), then ``u`` to ``minimum + u * (maximum -
minimum)`` on a linear scale and ``minimum * (maximum / minimum) ** u`` on a log
scale. The margin makes the bounds themselves reachable with a finite raw
value (a sigmoid never reaches 0 or 1, and plug-in defaults often lie on a
bound: a dry level of 0, a threshold of 0 dB); a default on a bound gets
``n = m / 2``, from where a finite difference steps into the range and sees
the slope on the inner side.

A log range that starts at 0 (or below) cannot be a plain log scale; it is a log
scale over ``[minimum + f, maximum + f]`` shifted down by ``f = (maximum -
minimum) / 1000``: ``minimum + f * (1001 ** u - 1)``, so ``minimum`` is reached
exactly, the range's upper decades are spread as on a log scale, and values
below ``f`` are nearly linear.

Discrete controls (integer, enumerated and toggled plug-in ports) have a
sorted tuple of ``values``; ``[0, 1]`` is cut into one equal bin per value and
the natural value is exactly the bin's value (a default gets its bin's
centre). They are not differentiable.

No raw value can map outside ``[minimum, maximum]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ParameterError

__all__ = ["ParameterSpec", "SCALES", "MARGIN"]

SCALES = ("linear", "log")
"""Scales of a control's range: ``"log"`` for frequencies, times and ratios."""

MARGIN = 2.5e-4
"""Width of normalised ``[0, 1]`` at each end that maps exactly onto a continuous control's bound.

A quarter of the default finite-difference step, so that a step from
anywhere in the margin reaches well into the range."""

_SHIFTED_LOG_RATIO = 1001.0
"""``(maximum + f) / (minimum + f)`` of a log range starting at 0: three decades."""

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class ParameterSpec:
    """One scalar control of a black-box effect.

    Attributes:
        name: keyword the effect receives, carrying its unit (``"threshold_db"``,
            ``"cutoff_hz"``, ``"attack_ms"``).
        minimum, maximum: the range in natural units.
        default: natural value a new node starts from (the processor's
            ``default_parameters()`` holds its raw value, :meth:`default_raw`);
            the middle of the (scaled) range when omitted.
        scale: ``"linear"`` or ``"log"`` (a log range with ``minimum <= 0`` is a
            shifted log scale, see the module documentation).
        differentiable: whether the estimators estimate its gradient; a
            non-differentiable control gets zero and a one-time warning.
            Default: ``True``, or ``False`` for a discrete control.
        attribute: for effect objects, the attribute to set (default ``name``).
        values: the exact values of a discrete control, sorted, from
            ``minimum`` to ``maximum``; ``None`` for a continuous control.
        time_varying: the control may be automated: given as a curve, it
            reaches the effect as one value per block of the processor's
            ``control_block`` samples (see :mod:`grafx_core.blackbox.moving`).
    """

    name: str
    minimum: float
    maximum: float
    default: float | None = None
    scale: str = "linear"
    differentiable: bool | None = None
    attribute: str | None = None
    values: Sequence[float] | None = None
    time_varying: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ParameterError(f"parameter name {self.name!r} must be a Python identifier such as 'gain_db'")
        if self.name == "self":  # torch's Module.__call__(self, ...) takes the keyword before forward sees it
            raise ParameterError("parameter name 'self' is reserved by torch's Module call; name the control "
                                 "otherwise and keep the effect's attribute with attribute='self'")
        lo, hi = self.minimum, self.maximum
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ParameterError(f"parameter {self.name!r}: expected finite minimum < maximum, got [{lo}, {hi}]")
        if self.scale not in SCALES:
            raise ParameterError(f"parameter {self.name!r}: scale {self.scale!r} is not one of {SCALES}")
        if self.values is not None:
            self._check_values()
        if self.differentiable is None:
            object.__setattr__(self, "differentiable", self.values is None)
        elif self.values is not None and self.differentiable:
            raise ParameterError(f"parameter {self.name!r}: a discrete control (values=...) cannot be differentiable")
        if self.default is None:
            object.__setattr__(self, "default", float(self.to_natural(torch.tensor(0.5, dtype=torch.float64))))
        elif not (lo <= self.default <= hi):
            raise ParameterError(f"parameter {self.name!r}: default {self.default} is outside [{lo}, {hi}]")
        elif self.values is not None and float(self.default) not in self.values:
            raise ParameterError(f"parameter {self.name!r}: default {self.default} is not one of its values "
                                 f"{list(self.values)}")

    def _check_values(self) -> None:
        values = tuple(float(v) for v in self.values)  # type: ignore[union-attr]
        if (len(values) < 2 or any(b <= a for a, b in zip(values, values[1:]))
                or values[0] != self.minimum or values[-1] != self.maximum):
            raise ParameterError(f"parameter {self.name!r}: values must be at least two increasing numbers from "
                                 f"minimum {self.minimum:g} to maximum {self.maximum:g}, got {list(values)}")
        object.__setattr__(self, "values", values)

    @property
    def discrete(self) -> bool:
        """Whether the control takes only its ``values``."""
        return self.values is not None

    def _log_ratio(self) -> float:
        if self.minimum > 0:
            return math.log(self.maximum / self.minimum)
        return math.log(_SHIFTED_LOG_RATIO)

    def to_natural(self, normalised: torch.Tensor) -> torch.Tensor:
        """Natural units from normalised ``[0, 1]`` values (differentiable for continuous controls, any shape)."""
        if self.values is not None:
            table = torch.tensor(self.values, dtype=torch.float64, device=normalised.device)
            index = (normalised.detach().to(torch.float64) * len(self.values)).floor().clamp(0, len(self.values) - 1)
            return table[index.long()].to(normalised.dtype if normalised.is_floating_point() else torch.float64)
        u = ((normalised - MARGIN) / (1.0 - 2.0 * MARGIN)).clamp(0.0, 1.0)
        if self.scale == "log" and self.minimum > 0:
            inner = self.minimum * torch.exp(u * self._log_ratio())
        elif self.scale == "log":
            shift = (self.maximum - self.minimum) / (_SHIFTED_LOG_RATIO - 1.0)
            inner = self.minimum + shift * torch.expm1(u * self._log_ratio())
        else:
            inner = self.minimum + u * (self.maximum - self.minimum)
        # exp(log(b / a)) * a is not always b in floating point: the bounds must come out exact.
        return torch.where(u >= 1.0, self.maximum, torch.where(u <= 0.0, self.minimum, inner))

    def to_normalised(self, natural: torch.Tensor) -> torch.Tensor:
        """Normalised ``[0, 1]`` values from natural units (clamped into the range).

        A bound maps to the edge of its margin (``MARGIN`` or ``1 - MARGIN``); a
        discrete control's value to the centre of the nearest value's bin.
        """
        v = natural.clamp(self.minimum, self.maximum)
        if self.values is not None:
            table = torch.tensor(self.values, dtype=torch.float64, device=natural.device)
            index = (v.to(torch.float64)[..., None] - table).abs().argmin(dim=-1)
            return ((index.to(torch.float64) + 0.5) / len(self.values)).to(
                natural.dtype if natural.is_floating_point() else torch.float64)
        if self.scale == "log" and self.minimum > 0:
            u = torch.log(v / self.minimum) / self._log_ratio()
        elif self.scale == "log":
            shift = (self.maximum - self.minimum) / (_SHIFTED_LOG_RATIO - 1.0)
            u = torch.log1p((v - self.minimum) / shift) / self._log_ratio()
        else:
            u = (v - self.minimum) / (self.maximum - self.minimum)
        return MARGIN + (1.0 - 2.0 * MARGIN) * u

    def to_raw(self, natural: torch.Tensor) -> torch.Tensor:
        """Raw (unconstrained, finite) values giving ``natural`` (clamped into the range).

        A bound maps into the middle of its margin, so that its raw value gives
        the bound exactly whatever the rounding of the sigmoid.
        """
        n = self.to_normalised(natural)
        if self.values is None:
            n = torch.where(natural <= self.minimum, MARGIN / 2, torch.where(natural >= self.maximum, 1 - MARGIN / 2, n))
        return torch.logit(n)

    def default_raw(self) -> float:
        """The raw value of the default."""
        return float(self.to_raw(torch.tensor(float(self.default), dtype=torch.float64)))  # type: ignore[arg-type]

    def step_floor(self, normalised: torch.Tensor) -> torch.Tensor:
        """Smallest normalised step that moves a float32 natural value by 64 units in the last place.

        Effects such as pedalboard's store parameters as float32; a smaller step
        could be rounded away or dominated by rounding. A discrete control's
        floor is one bin.
        """
        n = normalised.to(torch.float64)
        if self.values is not None:
            return torch.full_like(n, 1.0 / len(self.values))
        stretch = 1.0 - 2.0 * MARGIN
        if self.scale == "log" and self.minimum > 0:
            return torch.full_like(n, 64 * _FLOAT32_EPS * stretch / self._log_ratio())
        natural = self.to_natural(n)
        if self.scale == "log":
            shift = (self.maximum - self.minimum) / (_SHIFTED_LOG_RATIO - 1.0)
            slope = (natural - self.minimum + shift) * self._log_ratio() / stretch
            return 64 * _FLOAT32_EPS * natural.abs() / slope
        return 64 * _FLOAT32_EPS * natural.abs() * stretch / (self.maximum - self.minimum)

    def describe(self) -> str:
        """``"name in [min, max] (scale)"`` (or ``"name in {v1, v2, ...}"``) for messages and listings."""
        if self.values is not None:
            shown = ", ".join(f"{v:g}" for v in self.values[:8]) + (", ..." if len(self.values) > 8 else "")
            return f"{self.name} in {{{shown}}}"
        return f"{self.name} in [{self.minimum:g}, {self.maximum:g}] ({self.scale})"
