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
from ._derived import derived
from .fft import decay_length, fft_convolve

__all__ = ["one_pole", "peak_release", "ballistics", "smooth_block", "smooth_terms"]

_LOG_FLOOR = 1e-9
"""Added to ``v`` before its logarithm; the peak detector is exact to this absolute level."""


def _decay_per_sample(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    return 1000.0 / (time_ms * sample_rate)


def one_pole(x: torch.Tensor, time_ms: Number, sample_rate: float,
             carry: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``y[n] = a y[n-1] + (1 - a) x[n]`` with ``a = exp(-1000 / (time_ms * sample_rate))``.

    Args:
        x: ``[nodes, channels, samples]``, zero initial state.
        time_ms: time constant in ms, per node, ``> 0``.
        sample_rate: in Hz.
        carry: a block-wise render's state (see :func:`ballistics`); key
            ``"attack"`` holds the last output ``[nodes, channels, 1]``, read and replaced.

    Returns:
        ``[nodes, channels, samples]``, exact up to FFT rounding and the
        impulse response's tail beyond ``1e-13`` of its start.
    """
    log_a = derived("one_pole.log_a", lambda t: -_decay_per_sample(per_node(t, x), sample_rate), time_ms,
                    key=(x.dtype, x.device, sample_rate))
    if carry is not None:
        return _one_pole_block(x, log_a, carry)
    y = fft_convolve(x, _one_pole_response(x, log_a), mode="causal")
    return y


def _one_pole_response(x: torch.Tensor, log_a: torch.Tensor) -> torch.Tensor:
    """``(1 - a) a**n``, cut where it has decayed (below 1e-13 of its start) or at ``x``'s length."""
    n = torch.arange(_one_pole_taps(x.shape[-1], log_a), dtype=x.dtype, device=x.device)
    return -torch.expm1(log_a) * torch.exp(n * log_a)


def _one_pole_taps(samples: int, log_a: torch.Tensor) -> int:
    return min(samples, decay_length(math.exp(float(log_a.detach().max()))))


def _one_pole_block(x: torch.Tensor, log_a: torch.Tensor, carry: dict[str, torch.Tensor]) -> torch.Tensor:
    """One block of :func:`one_pole` from the last output before it (``carry["attack"]``).

    The block is solved in closed form, in float64, chunk by chunk::

        y[n] = a**(n + 1) * (y[-1] + sum_{k <= n} x[k] * (1 - a) * a**-(k + 1))

    with chunks short enough that ``a**-(k + 1)`` stays below ``e**600``: a
    cumulative sum where the one-shot render convolves by FFT (a block's two
    FFTs of twice its length cost a stream more than the compressor's other
    arithmetic). Outside autograd the chunk's growth and decay ramps are kept
    for the next block (:func:`~grafx_dsp._derived.derived`).
    """
    samples = x.shape[-1]
    chunk, growth, decay = derived("one_pole.block", lambda a: _block_terms(a, samples, x.device), log_a,
                                   key=(samples, x.device))
    last = carry.get("attack")
    previous = torch.zeros_like(x[..., :1], dtype=torch.float64) if last is None else last.to(torch.float64)
    pieces = []
    for begin in range(0, samples, chunk):
        piece = x if chunk >= samples else x[..., begin:begin + chunk]
        piece = piece if piece.dtype == torch.float64 else piece.to(torch.float64)
        width = piece.shape[-1]
        # A stream's blocks are small: every tensor operation saved counts (slices of the whole ramp too).
        ramp_up, ramp_down = (growth, decay) if width == growth.shape[-1] else (growth[..., :width],
                                                                                decay[..., :width])
        y = ramp_down * torch.cumsum(piece * ramp_up, dim=-1).add_(previous)
        previous = y[..., -1:]
        pieces.append(y)
    out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
    carry["attack"] = previous.clone()
    return out if out.dtype == x.dtype else out.to(x.dtype)


def _block_terms(log_a: torch.Tensor, samples: int,
                 device: torch.device) -> tuple[int, torch.Tensor, torch.Tensor]:
    """What :func:`_one_pole_block` derives from ``log_a`` alone: ``(chunk, (1 - a) a**-(k + 1), a**(k + 1))``."""
    rate = -log_a.to(torch.float64)  # d = -log a > 0, per node
    chunk = max(1, min(samples, int(600.0 // max(float(rate.detach().max()), 1e-300))))
    k = torch.arange(1, chunk + 1, dtype=torch.float64, device=device)
    return chunk, torch.exp(k * rate) * -torch.expm1(-rate), torch.exp(-k * rate)


_CHUNK = 1 << 16
"""Samples per step of the peak detector: its float64 log-domain ramp and temporaries
then take a chunk's memory, not the signal's (ten minutes of mono took 13 signal sizes)."""


def peak_release(v: torch.Tensor, time_ms: Number, sample_rate: float,
                 dtype: torch.dtype = torch.float64, carry: dict[str, torch.Tensor] | None = None,
                 key: str = "release", nonnegative: bool = False) -> torch.Tensor:
    """``y[n] = max(v[n], a y[n-1])``, ``y[-1] = 0``, with ``a`` as in :func:`one_pole`.

    Computed in float64, :data:`_CHUNK` samples at a time: within a chunk
    starting at ``s``, ``y[n] = max(local[n], (y[s-1] + F) a**(n-s+1) - F)`` where
    ``local`` is the chunk's own closed form and ``F`` the log floor, the
    same arithmetic as one closed form over the whole signal.

    Args:
        v: ``[nodes, channels, samples]``; negative values count as 0 (``relu``).
        time_ms: release time constant in ms, per node, ``> 0``.
        sample_rate: in Hz.
        dtype: the result's dtype.
        carry: a block-wise render's state (see :func:`ballistics`); ``carry[key]``
            holds ``y[-1]`` plus the log floor, ``[nodes, channels, 1]`` float64,
            read and replaced.
        key: the entry of ``carry`` this detector uses.
        nonnegative: the caller knows ``v >= 0`` (no ``relu`` needed).

    Returns:
        ``[nodes, channels, samples]`` in ``dtype`` (exact to about ``1e-9`` absolute before rounding to it).
    """
    length = v.shape[-1]
    width = min(length, _CHUNK)
    if carry is None:  # one call: nothing to reuse (and a long render's ramps are large)
        ramp, lead = _release_terms(time_ms, width, sample_rate, v.device)
    else:
        ramp, lead = derived("peak_release.ramp", lambda t: _release_terms(t, width, sample_rate, v.device),
                             time_ms, key=(width, sample_rate, v.device))
    out = None if length <= _CHUNK else torch.empty(v.shape, dtype=dtype, device=v.device)
    last: torch.Tensor | None = None if carry is None else carry.get(key)  # y[s-1] + F, float64
    for start in range(0, length, _CHUNK):
        chunk = v if length <= _CHUNK else v[..., start:start + _CHUNK]
        chunk = (chunk if nonnegative else torch.relu(chunk)).to(torch.float64)
        whole = chunk.shape[-1] == ramp.shape[-1]  # a stream's block: no slice of the ramps to take
        steps = ramp if whole else ramp[..., : chunk.shape[-1]]
        shifted = torch.cummax(torch.log(chunk + _LOG_FLOOR) + steps, dim=-1).values - steps
        if last is not None:
            shifted = torch.maximum(shifted, torch.log(last) - (lead if whole else lead[..., : chunk.shape[-1]]))
        peak = torch.exp(shifted)
        last = peak[..., -1:]
        if out is None:  # one chunk: no copy into a preallocated result
            out = (peak - _LOG_FLOOR).to(dtype)
        else:
            out[..., start:start + chunk.shape[-1]] = peak - _LOG_FLOOR
    if carry is not None and last is not None:
        carry[key] = last
    return out if out is not None else v.new_empty(v.shape, dtype=dtype)


def _release_terms(time_ms: Number, width: int, sample_rate: float,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`peak_release` derives from the release time alone, in float64: ``(n d, (n + 1) d)``
    for ``n < width``, ``d = -log a`` per node."""
    decay = _decay_per_sample(per_node(time_ms, torch.empty(0, dtype=torch.float64, device=device)), sample_rate)
    ramp = torch.arange(width, dtype=torch.float64, device=device) * decay
    return ramp, ramp + decay


def ballistics(v: torch.Tensor, attack_ms: Number, release_ms: Number, sample_rate: float,
               carry: dict[str, torch.Tensor] | None = None, nonnegative: bool = False) -> torch.Tensor:
    """Smooth a control signal with attack and release times (module docstring).

    Rises of ``|v|`` follow the attack time, falls the release time; a
    negative ``v`` is smoothed like its magnitude, with its sign.

    Args:
        v: ``[nodes, channels, samples]``.
        attack_ms: per node, ``> 0``.
        release_ms: per node, ``> 0``.
        sample_rate: in Hz.
        carry: for a render block by block, the state after the previous
            block (an empty dict before the first), updated in place to the
            state after this one: the peak detectors' last values
            (``"release"``, ``"release_negative"``) and the attack
            smoother's last output (``"attack"``), each ``[nodes, channels, 1]``.
        nonnegative: the caller knows ``v >= 0`` (a compressor's soft-knee curve): the
            negative detector is not looked for (a check per call, and on GPUs a sync).

    Returns:
        ``[nodes, channels, samples]`` in ``v``'s dtype.
    """
    # Block by block the detectors' float64 output goes straight on to the attack smoother, which works
    # in float64 (a stream's blocks are small: conversions cost as much as the arithmetic).
    inner = torch.float64 if carry is not None else v.dtype
    peaks = peak_release(v, release_ms, sample_rate, inner, carry, nonnegative=nonnegative)
    # Negative values occur only in parameters' guard bands (a range_db below 0, say); block by block
    # the negative detector runs from the first block that has them (before it, its state is zero).
    if (not nonnegative and bool((v < 0).any())) or (carry is not None and "release_negative" in carry):
        peaks = peaks - peak_release(-v, release_ms, sample_rate, inner, carry, "release_negative")
    return one_pole(peaks, attack_ms, sample_rate, carry).to(v.dtype)


_GROWTH = 600.0
"""The largest exponent a block's closed form lets its ramps reach (``e**600``; float64 holds ``e**709``)."""


def smooth_block(v: torch.Tensor, terms: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                torch.Tensor], carry: dict[str, torch.Tensor]) -> torch.Tensor:
    """One block of :func:`ballistics` for a non-negative ``v``, in float64: a stream's compressor envelope.

    The peak detector and the attack smoother are solved together in
    closed form, chunk by chunk, in the linear domain::

        peak[n] = a_r**n * max(cummax_k v[k] a_r**-k, peak[-1] a_r)
        out[n]  = a_a**(n + 1) * (out[-1] + sum_{k <= n} peak[k] (1 - a_a) a_a**-(k + 1))

    so that ``peak`` itself is never formed: ``cummax`` of ``v`` times a growth
    ramp, then a cumulative sum of that times one ramp that holds both the peak's
    decay and the smoother's growth, then the smoother's decay. Chunks are short
    enough that no ramp passes ``e**600``. About half the tensor operations of
    :func:`ballistics` with ``carry`` (which works in the log domain, where the
    peak detector's floor needs a logarithm and an exponential): on a stream's
    small blocks each operation costs microseconds whatever its size. The
    result equals :func:`ballistics` to float64 rounding plus that function's
    ``1e-9`` log floor.

    Args:
        v: ``[nodes, channels, samples]``, ``>= 0`` (a compressor's soft-knee curve).
        terms: :func:`smooth_terms` of the attack and release times for blocks of ``samples``
            (a shorter block, the stream's last, is cut from them).
        carry: the state after the previous block (empty before the first),
            updated in place: ``"peak"`` (the last peak times ``a_r``) and
            ``"attack"`` (the smoother's last output), ``[nodes, channels, 1]`` float64.

    Returns:
        ``[nodes, channels, samples]`` float64.
    """
    chunk, growth, to_attack, decay, release, step = terms
    samples = v.shape[-1]
    v = v.to(torch.float64)
    peak, last = carry.get("peak"), carry.get("attack")
    pieces = []
    for begin in range(0, samples, chunk):
        piece = v if chunk == samples else v[..., begin:begin + chunk]
        width = piece.shape[-1]
        if width < chunk:  # a shorter chunk: the end of a block, or a shorter block
            growth, to_attack, decay = growth[..., :width], to_attack[..., :width], decay[..., :width]
            step = torch.exp(-width * release)
        held = torch.cummax(piece * growth, dim=-1).values
        if peak is not None:
            held = torch.maximum(held, peak)
        y = torch.cumsum(held * to_attack, dim=-1)
        y = (y if last is None else y.add_(last)).mul_(decay)
        peak, last = held[..., -1:] * step, y[..., -1:]
        pieces.append(y)
    assert peak is not None and last is not None  # a block has samples
    carry["peak"], carry["attack"] = peak, last
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)


def smooth_terms(attack_ms: Number, release_ms: Number, sample_rate: float, samples: int,
                 device: torch.device) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`smooth_block` derives from the attack and release times alone, float64 per node:
    ``(chunk, a_r**-k, a_r**k (1 - a_a) a_a**-(k + 1), a_a**(k + 1), -log a_r, a_r**chunk)`` for ``k`` below the chunk
    length, the longest that keeps every ramp below ``e**600`` in blocks of ``samples`` (split evenly)."""
    like = torch.empty(0, dtype=torch.float64, device=device)
    attack = _decay_per_sample(per_node(attack_ms, like), sample_rate)  # d = -log a, per node
    release = _decay_per_sample(per_node(release_ms, like), sample_rate)
    fastest = max(float(attack.detach().max()), float(release.detach().max()), 1e-300)
    pieces = -(-samples // max(1, min(samples, int(_GROWTH // fastest))))
    chunk = -(-samples // pieces)  # equal chunks: no ramps to cut for a shorter last one, where it divides
    k = torch.arange(chunk, dtype=torch.float64, device=device)
    to_attack = torch.exp((k + 1) * attack - k * release) * -torch.expm1(-attack)
    return chunk, torch.exp(k * release), to_attack, torch.exp(-(k + 1) * attack), release, torch.exp(-chunk * release)
