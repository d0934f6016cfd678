"""Stereo image: width, mono to stereo, and mid/side conversions.

Mid/side uses ``mid = (left + right) / 2`` and ``side = (left - right) / 2``,
so that ``left = mid + side`` and ``right = mid - side`` exactly.
"""

from __future__ import annotations

import torch

from ._base import DSPProcessor, Number, per_node
from ._ranges import Range

__all__ = [
    "to_mid_side",
    "from_mid_side",
    "stereo_width",
    "StereoWidth",
    "MonoToStereo",
    "StereoToMidSide",
    "MidSideToStereo",
]

WIDTH = Range(low=0.0, high=4.0, default=1.0, floor=-0.5, ceiling=5.0)


def to_mid_side(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``[nodes, 2, samples]`` stereo into mid and side, each ``[nodes, 1, samples]``."""
    left, right = x[:, :1], x[:, 1:2]
    return (left + right) * 0.5, (left - right) * 0.5


def from_mid_side(mid: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Join mid and side (``[nodes, 1, samples]`` each) into ``[nodes, 2, samples]`` stereo."""
    return torch.cat([mid + side, mid - side], dim=1)


def stereo_width(x: torch.Tensor, width: Number) -> torch.Tensor:
    """Scale the side signal of ``[nodes, 2, samples]`` stereo by ``width`` (per node).

    0 collapses to mono, 1 leaves the signal unchanged, above 1 widens.
    """
    mid, side = to_mid_side(x)
    return from_mid_side(mid, side * per_node(width, x))


class StereoWidth(DSPProcessor):
    """Mid/side stereo width.

    Parameters:
        width ``[nodes, 1]``: side gain, range [0, 4], default 1 (unchanged);
        the guard band down to -0.5 swaps the sides a little.

    Signals: stereo in, stereo out.
    """

    memoryless = True  # each output sample depends only on the same input sample

    inlet_channels = 2

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"width": WIDTH.replace(time_varying=True)}

    def forward(self, x: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        return stereo_width(x, self.limit("width", width))


class MonoToStereo(DSPProcessor):
    """Copy a mono signal to both channels: ``[nodes, 1, samples]`` to ``[nodes, 2, samples]``.

    No parameters.
    """

    memoryless = True  # each output sample depends only on the same input sample

    inlet_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        return x.expand(-1, 2, -1).clone()


class StereoToMidSide(DSPProcessor):
    """Stereo in, outlets ``"mid"`` and ``"side"`` (``[nodes, 1, samples]`` each).

    No parameters.
    """

    memoryless = True  # each output sample depends only on the same input sample

    outlets = ("mid", "side")
    inlet_channels = 2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_channels(x)
        return to_mid_side(x)


class MidSideToStereo(DSPProcessor):
    """Inlets ``"mid"`` and ``"side"`` (``[nodes, 1, samples]`` each), stereo out.

    No parameters.
    """

    memoryless = True  # each output sample depends only on the same input sample

    inlets = ("mid", "side")
    inlet_channels = 1

    def forward(self, mid: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        self.check_channels(mid, side)
        return from_mid_side(mid, side)
