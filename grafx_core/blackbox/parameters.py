"""Parameter specs of black-box controls: a :class:`~grafx_core.Control` with the name the effect receives.

A black box's parameter tensor holds each control's unconstrained value; the
one map between that space, unit ``[0, 1]`` (where the estimators work) and
the effect's natural units lives in :mod:`grafx_core.unconstrained` and reads
the spec's range and scale (see there for margins, log and shifted-log
ranges and discrete controls). No raw value can map outside ``[minimum,
maximum]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..control import Control
from ..errors import ParameterError
from ..unconstrained import MARGIN, from_unit, to_unconstrained, to_unit

__all__ = ["ParameterSpec", "SCALES", "MARGIN"]

SCALES = ("linear", "log")
"""Scales of a control's range: ``"log"`` for frequencies, times and ratios."""

_SHIFTED_LOG_RATIO = 1001.0
"""``(maximum + f) / (minimum + f)`` of a log range starting at 0: three decades."""

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


_SUFFIX_UNITS = {"_hz": "Hz", "_db": "dB", "_ms": "ms"}


def _unit_of(name: str) -> str:
    """The unit a control's name carries in its suffix (``cutoff_hz``: ``"Hz"``), or ``""``."""
    return next((unit for suffix, unit in _SUFFIX_UNITS.items() if name.lower().endswith(suffix)), "")


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
        unit: ``"Hz"``, ``"dB"``, ``"ms"`` or ``""``; ``None`` (the default)
            reads it from the name's suffix (``_hz``, ``_db``, ``_ms``), else
            ``""``. Fitting reads it: ``gauss-newton`` scans a node's
            frequencies jointly with its other controls.
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
    unit: str | None = None
    _control: Control = field(init=False, repr=False, compare=False)

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
        values = None if self.values is None else tuple(self.values)
        if self.unit is None:
            object.__setattr__(self, "unit", _unit_of(self.name))
        object.__setattr__(self, "_control", Control(low=lo, high=hi, scale=self.scale, values=values,
                                                     unit=str(self.unit),
                                                     differentiable=bool(self.differentiable), unconstrained=True,
                                                     time_varying=bool(self.time_varying)))
        if self.default is None:
            object.__setattr__(self, "default", float(self.to_natural(torch.tensor(0.5, dtype=torch.float64))))
        elif not (lo <= self.default <= hi):
            raise ParameterError(f"parameter {self.name!r}: default {self.default} is outside [{lo}, {hi}]")
        elif self.values is not None and float(self.default) not in self.values:
            raise ParameterError(f"parameter {self.name!r}: default {self.default} is not one of its values "
                                 f"{list(self.values)}")
        object.__setattr__(self, "_control", self._control.replace(default=float(self.default)))  # type: ignore[arg-type]

    def _check_values(self) -> None:
        values = tuple(float(v) for v in self.values)  # type: ignore[union-attr]
        if (len(values) < 2 or any(b <= a for a, b in zip(values, values[1:]))
                or values[0] != self.minimum or values[-1] != self.maximum):
            raise ParameterError(f"parameter {self.name!r}: values must be at least two increasing numbers from "
                                 f"minimum {self.minimum:g} to maximum {self.maximum:g}, got {list(values)}")
        object.__setattr__(self, "values", values)

    def control(self) -> Control:
        """This control as the core's :class:`~grafx_core.Control` (its tensor holds the unconstrained value)."""
        return self._control

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
        return from_unit(self._control, normalised)

    def to_normalised(self, natural: torch.Tensor) -> torch.Tensor:
        """Normalised ``[0, 1]`` values from natural units (clamped into the range).

        A bound maps to the edge of its margin (``MARGIN`` or ``1 - MARGIN``); a
        discrete control's value to the centre of the nearest value's bin.
        """
        return to_unit(self._control, natural)

    def to_raw(self, natural: torch.Tensor) -> torch.Tensor:
        """Raw (unconstrained, finite) values giving ``natural`` (clamped into the range).

        A bound maps into the middle of its margin, so that its raw value gives
        the bound exactly whatever the rounding of the sigmoid.
        """
        return to_unconstrained(self._control, natural)

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
