"""Equalisers: a parametric EQ of biquads and a zero-phase FIR EQ."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from ._base import DSPProcessor, require_count
from ._interp import interpolation_matrix
from ._ranges import Range
from ._stream import StatefulConvolution
from .biquad import (FILTER_GAIN_DB, Q, biquad_coefficients, frequency_range, sos_filter, sos_kernel,
                     spread_frequencies)
from .fft import fft_convolve
from .moving_filter import DEFAULT_BLOCK, blockwise_coefficients, moving, moving_sos_filter

__all__ = ["ParametricEQ", "FIREQ", "fir_eq_kernel", "fir_eq"]

FIR_GAIN_DB = Range(low=-60.0, high=24.0, default=0.0, floor=-80.0, ceiling=30.0)


class ParametricEQ(StatefulConvolution, DSPProcessor):
    """Low shelf, ``n_peaks`` peaking filters and a high shelf in series (RBJ biquads).

    Args:
        n_peaks: number of peaking bands (>= 1).
        sample_rate: in Hz.

    Parameters (frequency ranges as :func:`grafx_dsp.biquad.frequency_range`,
    ``q`` in [0.1, 20], gains in [-24, 24] dB):
        low_shelf_cutoff_hz, low_shelf_q, low_shelf_gain_db ``[nodes, 1]``
        (defaults 100 Hz, 0.7071, 0 dB).
        peak_cutoff_hz, peak_q, peak_gain_db ``[nodes, n_peaks]`` (defaults
        log-spaced centres from 200 Hz to 5 kHz, q 1, 0 dB).
        high_shelf_cutoff_hz, high_shelf_q, high_shelf_gain_db ``[nodes, 1]``
        (defaults 8 kHz, 0.7071, 0 dB).

    Signals: any channel count in, the same out. With every gain at 0 dB the
    EQ is the identity.

    Every control may move (a curve ``[nodes, k, samples]``): the biquads are
    then redesigned every :attr:`moving_block` samples from the controls' values
    at the block's first sample, and run as an exact recursion whose memories
    carry across blocks (:func:`grafx_dsp.moving_filter.moving_sos_filter`);
    it streams with them carried (:func:`grafx_dsp.moving_filter.moving_sos_block`).
    """

    moving_block: int = DEFAULT_BLOCK
    """Samples between coefficient updates when a control moves."""

    def __init__(self, n_peaks: int = 4, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.n_peaks = require_count("ParametricEQ", "n_peaks", n_peaks, 1, 64)
        peaks = (self.n_peaks,)
        ranges = {
            "low_shelf_cutoff_hz": frequency_range(sample_rate, default=100.0),
            "low_shelf_q": Q,
            "low_shelf_gain_db": FILTER_GAIN_DB,
            "peak_cutoff_hz": frequency_range(sample_rate).replace(shape=peaks),
            "peak_q": Q.replace(default=1.0, shape=peaks),
            "peak_gain_db": FILTER_GAIN_DB.replace(shape=peaks),
            "high_shelf_cutoff_hz": frequency_range(sample_rate, default=8000.0),
            "high_shelf_q": Q,
            "high_shelf_gain_db": FILTER_GAIN_DB,
        }
        self.ranges = {name: bounds.replace(time_varying=True) for name, bounds in ranges.items()}

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        params = super().default_parameters(nodes, dtype=dtype, device=device)
        params["peak_cutoff_hz"] = spread_frequencies(self.n_peaks, self.ranges["peak_cutoff_hz"], nodes, dtype,
                                                      device)
        return params

    def coefficients(self, **params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft-limited parameters to biquad sections ``(b, a)``, each ``[nodes, n_peaks + 2, 3]``
        (low shelf, peaks, high shelf)."""
        p = {name: self.limit(name, value) for name, value in params.items()}
        sections = [
            biquad_coefficients("low_shelf", p["low_shelf_cutoff_hz"], p["low_shelf_q"],
                                p["low_shelf_gain_db"], self.sample_rate),
            biquad_coefficients("peak", p["peak_cutoff_hz"], p["peak_q"], p["peak_gain_db"], self.sample_rate),
            biquad_coefficients("high_shelf", p["high_shelf_cutoff_hz"], p["high_shelf_q"],
                                p["high_shelf_gain_db"], self.sample_rate),
        ]
        return torch.cat([b for b, _ in sections], dim=1), torch.cat([a for _, a in sections], dim=1)

    def forward(
        self,
        x: torch.Tensor,
        low_shelf_cutoff_hz: torch.Tensor,
        low_shelf_q: torch.Tensor,
        low_shelf_gain_db: torch.Tensor,
        peak_cutoff_hz: torch.Tensor,
        peak_q: torch.Tensor,
        peak_gain_db: torch.Tensor,
        high_shelf_cutoff_hz: torch.Tensor,
        high_shelf_q: torch.Tensor,
        high_shelf_gain_db: torch.Tensor,
    ) -> torch.Tensor:
        params = {
            "low_shelf_cutoff_hz": low_shelf_cutoff_hz,
            "low_shelf_q": low_shelf_q,
            "low_shelf_gain_db": low_shelf_gain_db,
            "peak_cutoff_hz": peak_cutoff_hz,
            "peak_q": peak_q,
            "peak_gain_db": peak_gain_db,
            "high_shelf_cutoff_hz": high_shelf_cutoff_hz,
            "high_shelf_q": high_shelf_q,
            "high_shelf_gain_db": high_shelf_gain_db,
        }
        if moving(params):
            b, a = blockwise_coefficients(self.coefficients, params, x.shape[-1], self.moving_block)
            return moving_sos_filter(x, b, a, self.moving_block)
        b, a = self.coefficients(**params)
        return sos_filter(x, b, a)

    def stream_kernel(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        """The impulse response :meth:`forward` convolves with, ``[nodes, 1, taps]``."""
        return sos_kernel(*self.coefficients(**params), x)

    def moving_design(self, x: torch.Tensor, **params: torch.Tensor) -> tuple[
            Callable[..., tuple[torch.Tensor, torch.Tensor]], dict[str, torch.Tensor], int]:
        """How a block of a stream with moving controls is designed: ``(design, controls, samples
        between coefficient updates)``, as :meth:`forward` designs it."""
        return self.coefficients, params, self.moving_block

    def extra_repr(self) -> str:
        return f"n_peaks={self.n_peaks}, sample_rate={self.sample_rate:g}"


@functools.lru_cache(maxsize=32)
def _band_weights(band_hz: tuple[float, ...], n_freqs: int, sample_rate: float) -> np.ndarray:
    """``[n_freqs, bands]`` linear interpolation from the bands to ``n_freqs`` points
    from 0 Hz to Nyquist; 0 Hz and Nyquist repeat the first and last band's gain."""
    nyquist = sample_rate / 2
    points = np.concatenate([[0.0], band_hz, [nyquist]])
    repeat_ends = np.eye(len(band_hz))[np.r_[0, np.arange(len(band_hz)), len(band_hz) - 1]]
    return interpolation_matrix(points, np.linspace(0.0, nyquist, n_freqs)) @ repeat_ends


def fir_eq_kernel(gain_db: torch.Tensor, band_hz: np.ndarray, taps: int, sample_rate: float) -> torch.Tensor:
    """Linear-phase FIR kernel through the gains ``gain_db`` at frequencies ``band_hz``.

    Frequency sampling as ``scipy.signal.firwin2(taps, ..., window="hann")``:
    the linear magnitude is interpolated (linearly in Hz, held flat below the
    first and above the last band) onto ``1 + 2**ceil(log2(taps))`` points
    from 0 Hz to Nyquist, transformed to an impulse response centred at
    ``(taps - 1) / 2`` and windowed by a symmetric Hann window.

    Args:
        gain_db: ``[nodes, bands]`` gains in dB.
        band_hz: ``[bands]`` increasing frequencies in ``(0, sample_rate / 2)``.
        taps: odd kernel length.
        sample_rate: in Hz.

    Returns:
        ``[nodes, taps]`` kernels, symmetric about their centre.
    """
    n_freqs = 1 + 2 ** math.ceil(math.log2(taps))
    weights = _band_weights(tuple(float(f) for f in band_hz), n_freqs, sample_rate)
    interp = torch.as_tensor(weights, dtype=gain_db.dtype, device=gain_db.device)
    magnitude = torch.pow(10.0, gain_db / 20.0) @ interp.T
    n_fft = 2 * (n_freqs - 1)
    centred = torch.fft.irfft(torch.complex(magnitude, torch.zeros_like(magnitude)), n=n_fft)
    kernel = torch.roll(centred, (taps - 1) // 2, dims=-1)[..., :taps]
    return kernel * torch.hann_window(taps, periodic=False, dtype=gain_db.dtype, device=gain_db.device)


def fir_eq(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Apply a centred (zero-phase) FIR kernel ``[nodes, taps]`` (odd ``taps``) to
    ``x`` ``[nodes, channels, samples]``; the output is aligned with the input."""
    taps = kernel.shape[-1]
    delay = (taps - 1) // 2
    return fft_convolve(x, kernel.unsqueeze(1))[..., delay : delay + x.shape[-1]]


class FIREQ(StatefulConvolution, DSPProcessor):
    """Zero-phase FIR equaliser from a curve of gains at log-spaced frequencies.

    Args:
        n_bands: number of gain points, log-spaced from 20 Hz to
            ``min(20 kHz, 0.45 * sample_rate)``.
        taps: odd FIR length; the frequency resolution is about
            ``2 * sample_rate / taps`` (the Hann window's main lobe).
        sample_rate: in Hz.

    Parameters:
        gain_db ``[nodes, n_bands]``: range [-60, 24] dB, default 0 (identity).

    Signals: any channel count in, the same out, time-aligned (the kernel is
    centred, so the filter is non-causal by ``(taps - 1) / 2`` samples). Block
    by block it runs causally, ``latency_samples = (taps - 1) / 2`` late, which
    a stream compensates.
    """

    def __init__(self, n_bands: int = 32, taps: int = 1023, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.n_bands = require_count("FIREQ", "n_bands", n_bands, 1, 1024)
        self.taps = require_count("FIREQ", "taps", taps, 3, 1 << 20)
        if taps % 2 == 0:
            raise ValueError(f"FIREQ: taps must be odd and >= 3, got {taps!r}")
        high = min(20000.0, 0.45 * sample_rate)
        self.latency_samples = (self.taps - 1) // 2
        self.band_hz = np.geomspace(20.0, high, self.n_bands) if n_bands > 1 else np.array([1000.0])
        self.ranges = {
            "gain_db": FIR_GAIN_DB.replace(shape=(self.n_bands,))
        }

    def kernel(self, gain_db: torch.Tensor) -> torch.Tensor:
        """The soft-limited gains' FIR kernels, ``[nodes, taps]``."""
        return fir_eq_kernel(self.limit("gain_db", gain_db), self.band_hz, self.taps, self.sample_rate)

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return fir_eq(x, self.kernel(gain_db))

    def stream_kernel(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        """The kernel, ``[nodes, 1, taps]``, applied causally (``latency_samples`` late)."""
        return self.kernel(gain_db).unsqueeze(1)

    def extra_repr(self) -> str:
        return f"n_bands={self.n_bands}, taps={self.taps}, sample_rate={self.sample_rate:g}"
