"""Parameter specs of black-box controls and the maps between their three spaces.

A control lives in three spaces:

* raw: the unconstrained real the processor's parameter tensor holds (what an
  optimiser or a neural predictor drives);
* normalised: ``sigmoid(raw)`` in ``[0, 1]``, where the estimators work;
* natural: the effect's own units (dB, Hz, ms, ratio), ``minimum + n *
  (maximum - minimum)`` on a linear scale, ``minimum * (maximum / minimum) ** n``
  on a log scale.

No raw value can map outside ``[minimum, maximum]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ParameterError

__all__ = ["ParameterSpec", "SCALES"]

SCALES = ("linear", "log")
"""Scales of a control's range: ``"log"`` for frequencies, times and ratios."""

_EDGE = 1e-3
"""Defaults are pulled this far inside ``[0, 1]`` so their raw value is finite."""

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
        scale: ``"linear"`` or ``"log"`` (log needs ``minimum > 0``).
        differentiable: whether the estimators estimate its gradient; a
            non-differentiable control gets zero and a one-time warning.
        attribute: for effect objects, the attribute to set (default ``name``).
    """

    name: str
    minimum: float
    maximum: float
    default: float | None = None
    scale: str = "linear"
    differentiable: bool = True
    attribute: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ParameterError(f"parameter name {self.name!r} must be a Python identifier such as 'gain_db'")
        lo, hi = self.minimum, self.maximum
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ParameterError(f"parameter {self.name!r}: expected finite minimum < maximum, got [{lo}, {hi}]")
        if self.scale not in SCALES:
            raise ParameterError(f"parameter {self.name!r}: scale {self.scale!r} is not one of {SCALES}")
        if self.scale == "log" and lo <= 0:
            raise ParameterError(f"parameter {self.name!r}: a log scale needs minimum > 0, got {lo}")
        if self.default is None:
            object.__setattr__(self, "default", float(self.to_natural(torch.tensor(0.5, dtype=torch.float64))))
        elif not (lo <= self.default <= hi):
            raise ParameterError(f"parameter {self.name!r}: default {self.default} is outside [{lo}, {hi}]")

    def to_natural(self, normalised: torch.Tensor) -> torch.Tensor:
        """Natural units from normalised ``[0, 1]`` values (differentiable, any shape)."""
        n = normalised.clamp(0.0, 1.0)
        if self.scale == "log":
            return self.minimum * torch.exp(n * math.log(self.maximum / self.minimum))
        return self.minimum + n * (self.maximum - self.minimum)

    def to_normalised(self, natural: torch.Tensor) -> torch.Tensor:
        """Normalised ``[0, 1]`` values from natural units (clamped into the range)."""
        v = natural.clamp(self.minimum, self.maximum)
        if self.scale == "log":
            return torch.log(v / self.minimum) / math.log(self.maximum / self.minimum)
        return (v - self.minimum) / (self.maximum - self.minimum)

    def to_raw(self, natural: torch.Tensor) -> torch.Tensor:
        """Raw (unconstrained) values giving ``natural``; bounds are pulled inside by 1e-3."""
        return torch.logit(self.to_normalised(natural).clamp(_EDGE, 1.0 - _EDGE))

    def default_raw(self) -> float:
        """The raw value of the default."""
        return float(self.to_raw(torch.tensor(float(self.default), dtype=torch.float64)))  # type: ignore[arg-type]

    def step_floor(self, normalised: torch.Tensor) -> torch.Tensor:
        """Smallest normalised step that moves a float32 natural value by 64 units in the last place.

        Effects such as pedalboard's store parameters as float32; a smaller step
        could be rounded away or dominated by rounding.
        """
        n = normalised.to(torch.float64)
        if self.scale == "log":
            return torch.full_like(n, 64 * _FLOAT32_EPS / math.log(self.maximum / self.minimum))
        natural = self.to_natural(n).abs()
        return 64 * _FLOAT32_EPS * natural / (self.maximum - self.minimum)

    def describe(self) -> str:
        """``"name in [min, max] (scale)"`` for messages and listings."""
        return f"{self.name} in [{self.minimum:g}, {self.maximum:g}] ({self.scale})"
