"""A twin of an Ardour mixer strip's fader and default panner.

Ardour's fader multiplies by its gain coefficient (at most 2, +6.02 dB).
Ardour 7 picks the panner of highest priority for a strip's channel counts
(``libs/panners``). A mono strip gets "Equal Power Mono" (``panner_1in2out.cc``),
a -3 dB law: the input at azimuth ``p`` (0 left, 1 right) goes to the left
with ``l * (s * l + 1 - s)`` and to the right with ``p * (s * p + 1 - s)``,
``l = 1 - p``, ``s = 2 - 4 * 10^(-3/20)``: 0.708 (-3 dB) each at the
centre. A stereo strip gets "Stereo Balance" (``panner_balance.cc``,
priority 25 over Equal Power Stereo's 20): the left channel is scaled by
``min(1, 2 - 2p)`` and the right by ``min(1, 2p)``, so the centre passes
the input unchanged.
"""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range

__all__ = ["ArdourFader", "ardour_pan_gains", "ardour_balance_gains", "ardour_fader", "FADER_MAX_DB"]

FADER_MAX_DB = 20.0 * math.log10(2.0)
"""Ardour's highest fader gain, +6.02 dB (a coefficient of 2)."""

_SCALE = 2.0 - 4.0 * 10.0 ** (-3.0 / 20.0)


def ardour_pan_gains(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mono panner's -3 dB law: ``(left, right)`` factors for azimuth ``position`` in [0, 1], any shape."""
    left = 1.0 - position
    return left * (_SCALE * left + 1.0 - _SCALE), position * (_SCALE * position + 1.0 - _SCALE)


def ardour_balance_gains(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stereo balance law: ``(left, right)`` factors for azimuth ``position`` in [0, 1], any shape."""
    one = torch.ones_like(position)
    return torch.minimum(one, 2 - 2 * position), torch.minimum(one, 2 * position)


def ardour_fader(x: torch.Tensor, gain_db: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Fader then panner of a mono or stereo strip.

    Args:
        x: ``[nodes, 1 or 2, samples]``.
        gain_db: per node, at most :data:`FADER_MAX_DB`.
        position: azimuth per node, in [0, 1].

    Returns:
        ``[nodes, 2, samples]``.
    """
    amp = torch.pow(10.0, per_node(gain_db, x) / 20.0)
    p = per_node(position, x)
    if x.shape[1] == 1:
        left, right = ardour_pan_gains(p)
        return torch.cat([x * left, x * right], dim=1) * amp
    left, right = ardour_balance_gains(p)
    return torch.cat([x[:, :1] * left, x[:, 1:2] * right], dim=1) * amp


class ArdourFader(DSPProcessor):
    """Ardour's fader and default panner (see the module docstring).

    Parameters (each ``[nodes, 1]``):
        gain_db: [-80, 6.0] dB, default 0; the guard band ends at +6.02 dB, the fader's top.
        position: azimuth [0.005, 0.995] (0 left, 0.5 centre, 1 right), default 0.5;
            the guard band ends at 0 and 1. A mono input is panned with the
            -3 dB law, a stereo one balanced (see the module docstring).

    Signals: mono or stereo in, stereo out. With ``pan=False`` (a master
    fader, an aux send's level) there is no ``position``, and the signal
    passes with its channels, only scaled.

    Args:
        sample_rate: in Hz.
        pan: whether the strip has a panner.
    """

    inlet_channels = (1, 2)
    memoryless = True  # a gain and a pan per sample: streams call forward block by block

    def __init__(self, sample_rate: float = 44100.0, pan: bool = True) -> None:
        super().__init__(sample_rate)
        self.pan = bool(pan)
        self.ranges = {"gain_db": Range(low=-80.0, high=6.0, default=0.0, floor=-120.0, ceiling=FADER_MAX_DB)}
        if self.pan:
            self.ranges["position"] = Range(low=0.005, high=0.995, default=0.5, floor=0.0, ceiling=1.0)

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        self.check_channels(x)
        gain_db = self.limit("gain_db", gain_db)
        if not self.pan:
            return x * torch.pow(10.0, per_node(gain_db, x) / 20.0)
        if position is None:
            raise TypeError("ArdourFader: parameter 'position' is missing (the strip has a panner)")
        return ardour_fader(x, gain_db, self.limit("position", position))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pan={self.pan}"
