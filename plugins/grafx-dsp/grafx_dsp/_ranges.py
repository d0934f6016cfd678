"""Documented parameter ranges and the soft limit that enforces them.

The convention of every grafx-dsp processor: a parameter is given in natural
units, named by its suffix (``_db`` decibels, ``_hz`` hertz, ``_ms``
milliseconds, ``_s`` seconds) or dimensionless (``q``, ``ratio``, ``mix``,
``pan``, ...). Inside its documented range ``[low, high]`` a value means
exactly what it says. Outside, :func:`soft_limit` bends it smoothly into a
guard band ``(floor, low)`` or ``(high, ceiling)``: any real number (a random
normal initialisation included) then gives finite output and a non-zero
gradient, and the guard band is chosen so that the formulas stay valid (a
cutoff never reaches 0 Hz or Nyquist, a feedback gain never reaches 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from grafx_core import Control

__all__ = ["Range", "soft_limit"]


@dataclass(frozen=True)
class Range:
    """The documented range of one parameter.

    Attributes:
        low: lower end of the range where the value is used as given.
        high: upper end of that range.
        default: the value :meth:`DSPProcessor.default_parameters` fills in.
        floor: values below ``low`` approach ``floor`` (``floor < low``).
        ceiling: values above ``high`` approach ``ceiling`` (``ceiling > high``).
        shape: the parameter's shape without the node dimension.
        scale: ``"log"`` where equal ratios matter more than equal
            differences (frequencies, times, Q, ratios), else ``"linear"``;
            what :meth:`DSPProcessor.controls` declares.
        time_varying: the processor accepts the parameter as a curve,
            ``[nodes, *shape, samples]`` (an automation curve the engine expanded).
    """

    low: float
    high: float
    default: float
    floor: float
    ceiling: float
    shape: tuple[int, ...] = (1,)
    scale: str = "linear"
    time_varying: bool = False

    def __post_init__(self) -> None:
        if not self.floor < self.low <= self.default <= self.high < self.ceiling:
            raise ValueError(
                f"invalid range: expected floor < low <= default <= high < ceiling, got {self}"
            )
        if self.scale not in ("linear", "log") or (self.scale == "log" and not self.low > 0):
            raise ValueError(f"invalid range: scale must be 'linear', or 'log' with low > 0, got {self}")

    def control(self, unit: str = "") -> Control:
        """This range as grafx-core's :class:`~grafx_core.Control` (``[low, high]``, default, shape, scale,
        whether it may move).

        The guard band stays the processor's business: the control says where a
        value means what it says, and the processor takes any real value.
        """
        return Control(shape=self.shape, low=self.low, high=self.high, default=self.default, unit=unit,
                       scale=self.scale, time_varying=self.time_varying)

    def replace(self, **changes: float | str | bool | tuple[int, ...]) -> Range:
        """A copy with some fields changed (``default=...``, ``shape=(n,)``)."""
        return dataclasses.replace(self, **changes)


def _algebraic_sigmoid(u: torch.Tensor) -> torch.Tensor:
    return u / torch.hypot(torch.ones_like(u), u)  # hypot: no overflow for huge u


def soft_limit(value: torch.Tensor, bounds: Range) -> torch.Tensor:
    """Map any real ``value`` into ``(bounds.floor, bounds.ceiling)``.

    The identity on ``[low, high]``; below ``low`` it is
    ``low - w * s((low - value) / w)`` with ``w = low - floor`` and the
    algebraic sigmoid ``s(u) = u / sqrt(1 + u**2)``, and above ``high`` the
    mirror image. The map is continuous with its first two derivatives and
    strictly increasing; its gradient decays only like ``|u|**-3`` (a tanh's
    would underflow to exactly zero some 20 widths out).

    Args:
        value: tensor of any shape.
        bounds: the parameter's :class:`Range`.

    Returns:
        A tensor of the same shape, dtype and device.
    """
    below_width = bounds.low - bounds.floor
    above_width = bounds.ceiling - bounds.high
    below = bounds.low - below_width * _algebraic_sigmoid((bounds.low - value) / below_width)
    above = bounds.high + above_width * _algebraic_sigmoid((value - bounds.high) / above_width)
    return torch.where(value < bounds.low, below, torch.where(value > bounds.high, above, value))
