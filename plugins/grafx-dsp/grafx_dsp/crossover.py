"""A Linkwitz-Riley crossover: two bands that sum back to an all-pass."""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, Number, per_node
from ._stream import StatefulConvolution
from .biquad import biquad_coefficients, frequency_range, sos_impulse_response
from .fft import fft_convolve

__all__ = ["linkwitz_riley", "linkwitz_riley_kernels", "Crossover"]

BUTTERWORTH_Q = math.sqrt(0.5)


def linkwitz_riley(
    x: torch.Tensor, cutoff_hz: Number, sample_rate: float = 44100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``x`` into 4th-order Linkwitz-Riley low and high bands.

    Each band is a 2nd-order Butterworth section (RBJ, ``q = 1/sqrt(2)``)
    applied twice; both bands are -6 dB at the cutoff and in phase, and
    ``low + high`` is a 2nd-order all-pass (flat magnitude response).

    Args:
        x: ``[nodes, channels, samples]``.
        cutoff_hz: per node, in ``(0, sample_rate / 2)``.
        sample_rate: in Hz.

    Returns:
        ``(low, high)``, each ``[nodes, channels, samples]``.
    """
    kernels = linkwitz_riley_kernels(cutoff_hz, x, sample_rate)
    low, high = fft_convolve(x.unsqueeze(1), kernels, mode="causal").unbind(dim=1)
    return low, high


def linkwitz_riley_kernels(cutoff_hz: Number, like: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """The low and high bands' impulse responses, ``[nodes, 2, 1, taps]`` in ``like``'s dtype."""
    cutoff = per_node(cutoff_hz, like, trailing=1)
    q = torch.full_like(cutoff, BUTTERWORTH_Q)
    responses = []
    for kind in ("lowpass", "highpass"):
        b, a = biquad_coefficients(kind, cutoff, q, sample_rate=sample_rate)
        responses.append(sos_impulse_response(torch.cat([b, b], dim=1), torch.cat([a, a], dim=1)))
    return torch.stack(responses, dim=1).to(like.dtype).unsqueeze(2)


class Crossover(StatefulConvolution, DSPProcessor):
    """4th-order Linkwitz-Riley crossover with outlets ``"low"`` and ``"high"``
    (see :func:`linkwitz_riley`).

    Parameters:
        cutoff_hz ``[nodes, 1]``: range [20, min(20000, 0.45 fs)] Hz, default 1000.

    Signals: any channel count in; each outlet has the same channel count.
    """

    outlets = ("low", "high")

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"cutoff_hz": frequency_range(sample_rate)}

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return linkwitz_riley(x, self.limit("cutoff_hz", cutoff_hz), self.sample_rate)

    def stream_kernel(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """Both bands' impulse responses, ``[nodes, 2, 1, taps]``."""
        return linkwitz_riley_kernels(self.limit("cutoff_hz", cutoff_hz), x, self.sample_rate)
