"""Attack/release ballistics without a per-sample loop.

The smoother is the decoupled peak detector of Giannoulis, Massberg and
Reiss ("Digital dynamic range compressor design", JAES 2012), applied to a
non-negative control signal ``v`` (a gain reduction in dB, say)::

    peak[n] = max(v[n], a_release * peak[n - 1])             # instant rise, release decay
    out[n]  = a_attack * out[n - 1] + (1 - a_attack) * peak[n]  # attack smoothing

with ``a = exp(-1 / (time_s * sample_rate))``: after a step up, ``out``
reaches ``1 - 1/e`` of the step after the attack time; after a step down it
decays by ``1/e`` in about the release time (the attack smoothing adds a
little when attack is not much shorter than release), all states starting at
zero.

Both recursions are computed in closed form so that autograd, batching over
nodes and any device come for free:

* ``peak[n] = max_{k <= n} v[k] a**(n - k)`` is a running maximum in the log
  domain, ``exp(cummax(log v[k] + k d) - n d)`` with ``d = -log a``, computed
  in float64 (the ramp ``n d`` grows with the signal length).
* the one-pole filter is a linear convolution with its impulse response
  ``(1 - a) a**n``, by FFT, cut where it has decayed below ``1e-13``.

Why not the alternatives: scipy's ``lfilter`` cannot run the peak
detector's ``max`` recursion at all, and a custom autograd function around a
per-sample loop would have needed a hand-written backward, bounced every CUDA
tensor through the CPU and still run one sequential step per sample (a
chunked torch loop, one step per chunk, likewise).
"""

from __future__ import annotations

import math

import torch

from ._base import Number, per_node
from .fft import decay_length, fft_convolve

__all__ = ["one_pole", "peak_release", "ballistics"]

_LOG_FLOOR = 1e-9
"""Added to ``v`` before its logarithm; the peak detector is exact to this absolute level."""


def _decay_per_sample(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    return 1000.0 / (time_ms * sample_rate)


def one_pole(x: torch.Tensor, time_ms: Number, sample_rate: float) -> torch.Tensor:
    """``y[n] = a y[n-1] + (1 - a) x[n]`` with ``a = exp(-1000 / (time_ms * sample_rate))``.

    Args:
        x: ``[nodes, channels, samples]``, zero initial state.
        time_ms: time constant in ms, per node, ``> 0``.
        sample_rate: in Hz.

    Returns:
        ``[nodes, channels, samples]``, exact up to FFT rounding and the
        impulse response's tail beyond ``1e-13`` of its start.
    """
    log_a = -_decay_per_sample(per_node(time_ms, x), sample_rate)
    # The response is cut where it has decayed (below 1e-13 of its start), or at the signal's length.
    taps = min(x.shape[-1], decay_length(math.exp(float(log_a.detach().max()))))
    n = torch.arange(taps, dtype=x.dtype, device=x.device)
    impulse_response = -torch.expm1(log_a) * torch.exp(n * log_a)
    return fft_convolve(x, impulse_response, mode="causal")


def peak_release(v: torch.Tensor, time_ms: Number, sample_rate: float) -> torch.Tensor:
    """``y[n] = max(v[n], a y[n-1])``, ``y[-1] = 0``, with ``a`` as in :func:`one_pole`.

    Args:
        v: ``[nodes, channels, samples]``, ``>= 0``.
        time_ms: release time constant in ms, per node, ``> 0``.
        sample_rate: in Hz.

    Returns:
        ``[nodes, channels, samples]`` in float64 (exact to about ``1e-9`` absolute).
    """
    v64 = v.to(torch.float64)
    decay = _decay_per_sample(per_node(time_ms, v64), sample_rate)
    ramp = torch.arange(v.shape[-1], dtype=torch.float64, device=v.device) * decay
    running = torch.cummax(torch.log(v64 + _LOG_FLOOR) + ramp, dim=-1).values
    return torch.exp(running - ramp) - _LOG_FLOOR


def ballistics(v: torch.Tensor, attack_ms: Number, release_ms: Number, sample_rate: float) -> torch.Tensor:
    """Smooth a control signal with attack and release times (module docstring).

    Rises of ``|v|`` follow the attack time, falls the release time; a
    negative ``v`` is smoothed like its magnitude, with its sign.

    Args:
        v: ``[nodes, channels, samples]``.
        attack_ms: per node, ``> 0``.
        release_ms: per node, ``> 0``.
        sample_rate: in Hz.

    Returns:
        ``[nodes, channels, samples]`` in ``v``'s dtype.
    """
    peaks = peak_release(torch.relu(v), release_ms, sample_rate)
    if bool((v < 0).any()):  # only in parameters' guard bands (a ratio below 1, say)
        peaks = peaks - peak_release(torch.relu(-v), release_ms, sample_rate)
    return one_pole(peaks.to(v.dtype), attack_ms, sample_rate)
