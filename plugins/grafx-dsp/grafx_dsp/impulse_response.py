"""A learned impulse response: any linear time-invariant stereo effect, one tap per sample.

A reverb, a delay or an equaliser whose design is unknown is still a linear
filter; where it is also time-invariant (sox's reverb, a convolution reverb,
any EQ), a long enough FIR expresses it exactly, where a parametric model
only approximates it. Its taps are ordinary parameters, so a fit can solve
them by least squares (``grafx_core.fitting.solve_send_response``) or move them by
gradient descent, and a render, a parameter file and a report treat them as
any other control.
"""

from __future__ import annotations

import torch

from ._base import DSPProcessor, require_count
from ._ranges import Range
from ._stream import StatefulConvolution
from .fft import fft_convolve

__all__ = ["ImpulseResponse"]


class ImpulseResponse(StatefulConvolution, DSPProcessor):
    """Each output channel is the input convolved with that channel's impulse response.

    Args:
        taps: samples per response (``seconds * sample_rate`` for a reverb's tail).
        sample_rate: in Hz.

    Parameters:
        ir ``[nodes, 2, taps]``: the left and right responses, range [-1, 1],
        default 0 (silence).

    Signals: mono or stereo in (mono feeds both responses), stereo out, causal.
    """

    inlet_channels = (1, 2)

    def __init__(self, taps: int = 44100, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.taps = require_count("ImpulseResponse", "taps", taps, 1, 1 << 22)
        self.ranges = {"ir": Range(low=-1.0, high=1.0, default=0.0, floor=-2.0, ceiling=2.0, shape=(2, self.taps))}

    def forward(self, x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        return fft_convolve(x, self.limit("ir", ir), mode="causal")

    def stream_kernel(self, x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        """The stereo responses, ``[nodes, 2, taps]``, for block-wise renders."""
        return self.limit("ir", ir)

    def extra_repr(self) -> str:
        return f"taps={self.taps}, sample_rate={self.sample_rate:g}"
