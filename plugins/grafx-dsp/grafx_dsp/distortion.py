"""Colour: tanh distortion and a Chebyshev harmonic waveshaper."""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, Number, per_node
from ._ranges import Range
from .gain import db_to_amplitude

__all__ = ["distortion", "chebyshev_waveshaper", "Distortion", "ChebyshevWaveshaper"]

DRIVE_DB = Range(low=-40.0, high=60.0, default=12.0, floor=-60.0, ceiling=72.0)
HARMONIC_GAIN = Range(low=-2.0, high=2.0, default=0.0, floor=-3.0, ceiling=3.0)


def distortion(x: torch.Tensor, drive_db: Number) -> torch.Tensor:
    """``tanh(x * 10 ** (drive_db / 20))``, the curve of ``pedalboard.Distortion``.

    Args:
        x: ``[nodes, channels, samples]``.
        drive_db: per node.
    """
    return torch.tanh(x * db_to_amplitude(per_node(drive_db, x)))


def chebyshev_waveshaper(x: torch.Tensor, drive_db: Number, harmonic_gain: torch.Tensor) -> torch.Tensor:
    """``sum_k w_k (T_k(u) - T_k(0))`` with ``u = tanh(x * 10 ** (drive_db / 20))``.

    ``T_k`` is the Chebyshev polynomial of the first kind of degree ``k``:
    ``T_k(cos t) = cos(k t)``, so a full-scale cosine ``u`` comes out as the
    sum of its harmonics with amplitudes ``w_k``. Subtracting ``T_k(0)``
    keeps silence silent (the even polynomials are not zero at 0).

    Args:
        x: ``[nodes, channels, samples]``.
        drive_db: per node.
        harmonic_gain: ``[nodes, K]``, ``w_1 .. w_K``.
    """
    u = distortion(x, drive_db)
    weights = harmonic_gain.to(x.dtype)  # [nodes, K]
    harmonics = weights.shape[-1]
    # Clenshaw's recurrence: b_k = w_k + 2 u b_{k+1} - b_{k+2}, sum = u b_1 - b_2.
    two_u = 2 * u
    later, latest = torch.zeros_like(u), torch.zeros_like(u)  # b_{k+2}, b_{k+1}
    for k in range(harmonics - 1, -1, -1):
        later, latest = latest, weights[:, k, None, None] + two_u * latest - later
    series = u * latest - later
    # T_k(0) = cos(k pi / 2): 0, -1, 0, 1, ... for k = 1, 2, 3, 4, ...
    at_zero = torch.tensor([round(math.cos(k * math.pi / 2)) for k in range(1, harmonics + 1)],
                           dtype=x.dtype, device=x.device)
    return series - (weights @ at_zero)[:, None, None]


class Distortion(DSPProcessor):
    """tanh distortion: ``tanh(x * 10 ** (drive_db / 20))`` (equal to ``pedalboard.Distortion``).

    Parameters:
        drive_db ``[nodes, 1]``: range [-40, 60] dB, default 12.

    Signals: any channel count in, the same out.
    """

    memoryless = True  # each output sample depends only on the same input sample

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"drive_db": DRIVE_DB}

    def forward(self, x: torch.Tensor, drive_db: torch.Tensor) -> torch.Tensor:
        return distortion(x, self.limit("drive_db", drive_db))


class ChebyshevWaveshaper(DSPProcessor):
    """Harmonic waveshaper: a tanh stage followed by a weighted sum of Chebyshev
    polynomials (see :func:`chebyshev_waveshaper`).

    Args:
        n_harmonics: number of weights ``K`` (harmonics 1 to ``K``).
        sample_rate: in Hz.

    Parameters:
        drive_db ``[nodes, 1]``: range [-40, 60] dB, default 0.
        harmonic_gain ``[nodes, n_harmonics]``: range [-2, 2] each; default
            ``[1, 0, ..., 0]`` (plain tanh).

    Signals: any channel count in, the same out.
    """

    memoryless = True  # each output sample depends only on the same input sample

    def __init__(self, n_harmonics: int = 8, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        if n_harmonics < 1:
            raise ValueError(f"ChebyshevWaveshaper: n_harmonics must be >= 1, got {n_harmonics!r}")
        self.n_harmonics = int(n_harmonics)
        self.ranges = {
            "drive_db": DRIVE_DB.replace(default=0.0),
            "harmonic_gain": HARMONIC_GAIN.replace(shape=(self.n_harmonics,)),
        }

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        params = super().default_parameters(nodes, dtype=dtype, device=device)
        params["harmonic_gain"][:, 0] = 1.0
        return params

    def forward(self, x: torch.Tensor, drive_db: torch.Tensor, harmonic_gain: torch.Tensor) -> torch.Tensor:
        return chebyshev_waveshaper(x, self.limit("drive_db", drive_db),
                                    self.limit("harmonic_gain", harmonic_gain))

    def extra_repr(self) -> str:
        return f"n_harmonics={self.n_harmonics}, sample_rate={self.sample_rate:g}"
