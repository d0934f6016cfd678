"""One record for one control: everything the project knows about a processor parameter.

A processor declares its controls with a ``controls()`` method returning a
(possibly nested) mapping from parameter name to :class:`Control`. The engine,
the parameter factory, the conformance kit, fitting, the predictor and the
estimators all read the same record through
:func:`grafx_core.describe`; processors written against the older optional
attributes (``parameter_size()``, ``parameter_ranges()``,
``default_parameters()``, ``nondifferentiable_parameters``) are described
from those instead, so GRAFX processors keep working unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Control", "CONTROL_SCALES"]

CONTROL_SCALES = ("linear", "log")
"""How a control's range is best explored and displayed: ``"log"`` where equal
ratios matter more than equal differences (frequencies, times, ratios)."""


def _shape(value: Any) -> tuple[int, ...]:
    shape = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(shape, Sequence) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise TypeError(f"Control: shape must be an int or a tuple of non-negative ints, got {value!r}")
    return tuple(int(s) for s in shape)


@dataclass(frozen=True)
class Control:
    """One parameter of a processor: its shape, range, default, unit and behaviour.

    Values are in the control's natural unit (dB, Hz, ms, a ratio); the
    parameter tensor a processor's ``forward`` receives holds them as given,
    ``[nodes, *shape]`` (or ``[nodes, *shape, samples]`` for a moving control,
    see ``time_varying``).

    Attributes:
        shape: the value's shape without the node dimension (``(1,)`` for a
            scalar control, ``(bands,)`` for one value per EQ band).
        low: smallest meaningful value, or ``None`` for unbounded below.
        high: largest meaningful value (``high > low``), or ``None``.
        default: the value a new node starts from: one number for every
            element, or one number per element in row-major order; ``None``
            means the middle of the range (arithmetic for ``"linear"``,
            geometric for ``"log"``), or 0 for an unbounded control.
        unit: ``"dB"``, ``"Hz"``, ``"ms"``, ``""`` for dimensionless.
        scale: ``"linear"`` or ``"log"`` (see :data:`CONTROL_SCALES`). A
            ``"log"`` range normally has ``low > 0``; one starting at or
            below 0 is explored on a shifted log scale.
        differentiable: whether the control gets a useful gradient; a switch,
            a whole-sample delay or a stepwise control is not.
        time_varying: whether the control may be given as a curve (a trailing
            axis of control frames) instead of one value per node.
        values: the exact values of a discrete control (integer, toggle or
            enumeration), sorted; ``None`` for a continuous control.
        unconstrained: whether the parameter tensor holds the control's
            unconstrained value instead of its natural one (a black box maps
            it into ``[low, high]`` itself, see :mod:`grafx_core.unconstrained`);
            ``default`` stays in natural units.
        description: one line for listings and GUIs.
    """

    shape: tuple[int, ...] = (1,)
    low: float | None = None
    high: float | None = None
    default: float | tuple[float, ...] | None = None
    unit: str = ""
    scale: str = "linear"
    differentiable: bool = True
    time_varying: bool = False
    values: tuple[float, ...] | None = None
    unconstrained: bool = False
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _shape(self.shape))
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                    raise TypeError(f"Control: {name} must be a number or None, got {value!r}")
                object.__setattr__(self, name, float(value))
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"Control: needs low < high, got low={self.low}, high={self.high}")
        if self.scale not in CONTROL_SCALES:
            raise ValueError(f"Control: scale {self.scale!r} is not one of {CONTROL_SCALES}")
        if self.scale == "log" and (self.low is None or self.high is None):
            raise ValueError("Control: a 'log' scale needs both low and high")
        if self.values is not None:
            values = tuple(float(v) for v in self.values)
            if not values or list(values) != sorted(set(values)):
                raise ValueError(f"Control: values must be a non-empty, sorted tuple without repeats, got {self.values!r}")
            object.__setattr__(self, "values", values)
            if self.differentiable:
                object.__setattr__(self, "differentiable", False)
        if self.default is not None:
            object.__setattr__(self, "default", self._checked_default(self.default))
        if self.unconstrained and not self.bounded:
            raise ValueError("Control: an unconstrained parameter needs both low and high (the range it maps into)")

    def _checked_default(self, default: Any) -> float | tuple[float, ...]:
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            values: tuple[float, ...] = (float(default),)
            single = True
        else:
            values = tuple(float(v) for v in _flatten(default))
            single = False
            if len(values) != self.size:
                raise ValueError(
                    f"Control: default has {len(values)} value(s); shape {self.shape} needs 1 or {self.size}"
                )
        for value in values:
            if not math.isfinite(value):
                raise ValueError(f"Control: default must be finite, got {default!r}")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ValueError(f"Control: default {value} lies outside [{self.low}, {self.high}]")
        return values[0] if single else values

    @property
    def size(self) -> int:
        """The number of values per node (the product of ``shape``)."""
        return math.prod(self.shape)

    @property
    def bounded(self) -> bool:
        """Whether both ends of the range are declared."""
        return self.low is not None and self.high is not None

    @property
    def discrete(self) -> bool:
        """Whether the control takes only the exact ``values``."""
        return self.values is not None

    def centre(self) -> float:
        """The middle of the range: arithmetic for ``"linear"``, geometric for a positive ``"log"`` range.

        An unbounded control's centre is 0, a half-bounded one's its bound.
        """
        if self.low is None and self.high is None:
            return 0.0
        if self.low is None or self.high is None:
            return float(self.low if self.low is not None else self.high)  # type: ignore[arg-type]
        if self.scale == "log" and self.low > 0:
            return math.sqrt(self.low * self.high)
        return 0.5 * (self.low + self.high)

    def default_values(self) -> tuple[float, ...]:
        """The starting value of each element, row-major, ``size`` numbers."""
        if self.default is None:
            start = self.values[len(self.values) // 2] if self.values is not None else self.centre()
            return (start,) * self.size
        if isinstance(self.default, float):
            return (self.default,) * self.size
        return self.default

    def replace(self, **changes: Any) -> Control:
        """A copy with some fields changed (``default=...``, ``time_varying=True``)."""
        return replace(self, **changes)


def _flatten(value: Any) -> list[Any]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flatten(item)]
    return [value]
