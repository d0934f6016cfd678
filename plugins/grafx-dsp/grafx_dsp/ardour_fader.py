"""A twin of an Ardour mixer strip's fader and default panner.

Ardour's fader multiplies by its gain coefficient (at most 2, +6.02 dB).
Its default panners (Ardour 7, ``panner_1in2out.cc``, ``panner_2in2out.cc``)
use a -3 dB pan law: an input at azimuth ``p`` (0 left, 1 right) goes to
the left with ``l * (s * l + 1 - s)`` and to the right with
``p * (s * p + 1 - s)``, ``l = 1 - p``, ``s = 2 - 4 * 10^(-3/20)``: each
side is 0.708 (-3 dB) at the centre and 1 at its own end. A mono strip pans
its input at ``p``; a stereo strip (width 1) pans its left input at
``p - w/2`` and its right at ``p + w/2``, the width ``w`` narrowed to
``2 * min(p, 1 - p)`` so that neither leaves the field (at the centre
the strip passes its input unchanged).
"""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range

__all__ = ["ArdourFader", "ardour_pan_gains", "ardour_fader", "FADER_MAX_DB"]

FADER_MAX_DB = 20.0 * math.log10(2.0)
"""Ardour's highest fader gain, +6.02 dB (a coefficient of 2)."""

_SCALE = 2.0 - 4.0 * 10.0 ** (-3.0 / 20.0)


def ardour_pan_gains(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The -3 dB pan law: ``(left, right)`` factors for azimuth ``position`` in [0, 1], any shape."""
    left = 1.0 - position
    return left * (_SCALE * left + 1.0 - _SCALE), position * (_SCALE * position + 1.0 - _SCALE)


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
    width = torch.minimum(torch.ones_like(p), 2 * torch.minimum(p, 1 - p))
    l_left, l_right = ardour_pan_gains(p - width / 2)
    r_left, r_right = ardour_pan_gains(p + width / 2)
    xl, xr = x[:, :1], x[:, 1:2]
    return torch.cat([xl * l_left + xr * r_left, xl * l_right + xr * r_right], dim=1) * amp


class ArdourFader(DSPProcessor):
    """Ardour's fader and default panner (see the module docstring).

    Parameters (each ``[nodes, 1]``):
        gain_db: [-80, 6.0] dB, default 0; the guard band ends at +6.02 dB, the fader's top.
        position: azimuth [0.005, 0.995] (0 left, 0.5 centre, 1 right), default 0.5;
            the guard band ends at 0 and 1.

    Signals: mono or stereo in, stereo out.
    """

    inlet_channels = (1, 2)

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "gain_db": Range(low=-80.0, high=6.0, default=0.0, floor=-120.0, ceiling=FADER_MAX_DB),
            "position": Range(low=0.005, high=0.995, default=0.5, floor=0.0, ceiling=1.0),
        }

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        return ardour_fader(x, self.limit("gain_db", gain_db), self.limit("position", position))
