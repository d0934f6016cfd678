"""The probe's upstream-like test directions: what an equaliser's gains upstream move the input by.

A node upstream of an effect moves its input along the derivative of its own output with respect to its
controls. For an equaliser's gains, at a flat setting, those are the input through causal filters: a low
shelf's, a peak's and a high shelf's (RBJ biquads) derivative with respect to its gain in dB. Causal, as the
upstream filter is: no part of the signal's end wraps round to its start, and nothing rings before a
transient or before the end (where a spectral loss's gradient is largest).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

SHELF_Q = 1 / math.sqrt(2)
"""Q of the shelves (a Butterworth-like slope, 12 dB per octave beyond the corner)."""
PEAK_Q = 0.7
"""Q of the peak: about two octaves wide, the mids between the two shelves."""
TAIL = 1e-12
"""An impulse response is cut where what is left of it holds less than this fraction of its energy."""


def _rbj(kind: str, w0: float, q: float, gain_db: float) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of an RBJ ``"low"`` shelf, ``"peak"`` or ``"high"`` shelf at ``w0`` radians per sample."""
    a_ = 10 ** (gain_db / 40)
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * cos, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cos, 1 - alpha / a_]
    else:
        sign = 1 if kind == "low" else -1
        root = 2 * math.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) - sign * (a_ - 1) * cos + root), sign * 2 * a_ * ((a_ - 1) - sign * (a_ + 1) * cos),
             a_ * ((a_ + 1) - sign * (a_ - 1) * cos - root)]
        a = [(a_ + 1) + sign * (a_ - 1) * cos + root, -sign * 2 * ((a_ - 1) + sign * (a_ + 1) * cos),
             (a_ + 1) + sign * (a_ - 1) * cos - root]
    return np.asarray(b) / a[0], np.asarray(a) / a[0]


@lru_cache(maxsize=32)
def _gain_derivative(kind: str, w0: float, q: float, length: int) -> np.ndarray:
    """The impulse response (float64, at most ``length`` samples) of ``d H / d gain_db`` at 0 dB, scaled to
    a unit gain in its pass band (as ``x`` is the derivative of an upstream gain's, in nepers).

    At 0 dB the filter is the identity (``b == a``), so the derivative of ``b / a`` is ``(b' - a') / a``;
    ``b'`` and ``a'`` by central differences of the coefficients (polynomials in the gain: exact to rounding).
    """
    # Here, not at the top: scipy.signal takes 0.8 s to import, and every `import grafx_core` would pay it.
    from scipy import signal as scipy_signal

    delta = 1e-4
    (b1, a1), (b0, a0) = _rbj(kind, w0, q, delta), _rbj(kind, w0, q, -delta)
    _, a = _rbj(kind, w0, q, 0.0)
    numerator = ((b1 - b0) - (a1 - a0)) / (2 * delta) * 20 / math.log(10)  # per neper: a unit pass band
    impulse = np.zeros(length)
    impulse[0] = 1.0
    response = scipy_signal.lfilter(numerator, a, impulse)
    energy = np.cumsum(response[::-1] ** 2)[::-1]  # energy from each sample on
    kept = int(np.searchsorted(-energy, -TAIL * energy[0])) if energy[0] > 0 else 1
    return response[:max(kept, 1)]


def eq_gain_directions(x: torch.Tensor, edges: tuple[float, float], peaks: tuple[float, ...] | None = None,
                       peak_q: float = PEAK_Q) -> torch.Tensor:
    """``[N, 3, C, L]``: ``x`` ``[N, C, L]`` through the gain derivatives of a low shelf at ``edges[0]``, a peak
    between the two edges (at their geometric mean) and a high shelf at ``edges[1]`` (fractions of the Nyquist
    frequency): what the three gains of a flat equaliser upstream move the input by, in the units in which
    ``x`` is what an upstream gain moves it by (so that each band's pass band holds the input as it is).

    Causal (a linear convolution, not a circular one), in ``x``'s dtype and on its device.
    """
    length = x.shape[-1]
    work = torch.promote_types(x.dtype, torch.float32)
    centres = (math.sqrt(edges[0] * edges[1]),) if peaks is None else peaks
    bands = (("low", edges[0], SHELF_Q), *(("peak", c, peak_q) for c in centres), ("high", edges[1], SHELF_Q))
    responses = [_gain_derivative(kind, math.pi * edge, q, length) for kind, edge, q in bands]
    taps = max(len(r) for r in responses)
    size = 1 << (length + taps - 1).bit_length()  # no wrap-round: a linear convolution
    kernels = np.zeros((len(bands), taps))
    for k, response in enumerate(responses):
        kernels[k, :len(response)] = response
    spectra = torch.fft.rfft(torch.from_numpy(kernels).to(device=x.device, dtype=work), n=size)  # [3, F]
    signal = torch.fft.rfft(x.to(work), n=size)  # [N, C, F]
    out = torch.fft.irfft(spectra[None, :, None] * signal.unsqueeze(1), n=size)[..., :length]
    return out.to(x.dtype)
