"""Gain and constant-power panning.

Signals are ``[nodes, channels, samples]``; per-node parameters are tensors
``[nodes]`` (or ``[nodes, 1]``, or plain floats in the functions).
"""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, Number, per_node
from ._derived import derived
from ._ranges import Range

__all__ = ["db_to_amplitude", "gain", "pan_gains", "stereo_gain", "Gain", "StereoGain"]

GAIN_DB = Range(low=-120.0, high=48.0, default=0.0, floor=-150.0, ceiling=60.0)
PAN = Range(low=-1.0, high=1.0, default=0.0, floor=-1.05, ceiling=1.05)


def db_to_amplitude(value_db: torch.Tensor) -> torch.Tensor:
    """Decibels to an amplitude factor, ``10 ** (value_db / 20)``."""
    return torch.pow(10.0, value_db / 20.0)


def gain(x: torch.Tensor, gain_db: Number) -> torch.Tensor:
    """``x * 10 ** (gain_db / 20)`` (the same curve as ``pedalboard.Gain``).

    Args:
        x: ``[nodes, channels, samples]``.
        gain_db: gain in dB, per node.
    """
    return x * derived("gain.factor", lambda g: db_to_amplitude(per_node(g, x)), gain_db, key=(x.dtype, x.device))


def pan_gains(pan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant-power (sine/cosine) pan law.

    Args:
        pan: position in ``[-1, 1]`` (-1 hard left, 0 centre, +1 hard right), any shape.

    Returns:
        ``(left, right)`` amplitude factors with ``left**2 + right**2 == 1``;
        both are ``1/sqrt(2)`` (-3 dB) at the centre.
    """
    angle = (pan + 1.0) * (math.pi / 4.0)
    return torch.cos(angle), torch.sin(angle)


def stereo_gain(x: torch.Tensor, gain_db: Number, pan: Number) -> torch.Tensor:
    """Gain and constant-power pan; a mono input is spread to both channels first.

    Args:
        x: ``[nodes, 1 or 2, samples]``.
        gain_db: gain in dB, per node.
        pan: position in ``[-1, 1]``, per node (see :func:`pan_gains`).

    Returns:
        ``[nodes, 2, samples]``.
    """
    return x * derived("stereo_gain.factors", lambda g, p: _stereo_factors(g, p, x), gain_db, pan,
                       key=(x.dtype, x.device))


def _stereo_factors(gain_db: Number, pan: Number, like: torch.Tensor) -> torch.Tensor:
    """The left and right amplitude factors, ``[nodes, 2, 1]`` (``[nodes, 2, samples]`` for curves)."""
    left, right = pan_gains(per_node(pan, like))
    return torch.cat([left, right], dim=1) * db_to_amplitude(per_node(gain_db, like))  # a mono x broadcasts to both channels


class Gain(DSPProcessor):
    """Gain in dB: ``y = x * 10 ** (gain_db / 20)``.

    Parameters:
        gain_db ``[nodes, 1]``: range [-120, 48] dB, default 0 (guard band -150..60).

    Signals: any channel count in, the same out.
    """

    memoryless = True  # each output sample depends only on the same input sample

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"gain_db": GAIN_DB.replace(time_varying=True)}

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return gain(x, self.limit("gain_db", gain_db))


class StereoGain(DSPProcessor):
    """Gain and constant-power pan (see :func:`pan_gains`).

    Parameters:
        gain_db ``[nodes, 1]``: range [-120, 48] dB, default 0.
        pan ``[nodes, 1]``: range [-1, 1] (hard left to hard right), default 0
        (centre, -3 dB per channel); the guard band to +-1.05 lets a little
        polarity-inverted signal into the far channel.

    Signals: mono or stereo in, stereo out.
    """

    memoryless = True  # each output sample depends only on the same input sample

    inlet_channels = (1, 2)

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"gain_db": GAIN_DB.replace(time_varying=True), "pan": PAN.replace(time_varying=True)}

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        return stereo_gain(x, self.limit("gain_db", gain_db), self.limit("pan", pan))
