"""FFT convolution, and how long a recursive filter's impulse response lasts.

Every inverse transform here is given its length ``n`` explicitly: without it
``irfft`` assumes an even length and silently returns a wrong signal whenever
the full convolution length is odd.
"""

from __future__ import annotations

import math

import scipy.fft
import torch

__all__ = [
    "fast_length",
    "fft_convolve",
    "decay_length",
    "convolve_block",
]

BLOCK = 1 << 16
"""Signal samples per FFT block once a signal is much longer than its kernel:
convolving block by block (overlap-add) keeps the spectra a block's size, not
the signal's (the whole-signal FFT of ten minutes of mono needed four signal
sizes for one EQ)."""

IR_TAIL_TOLERANCE = 1e-9
"""Relative level at which an infinite impulse response is considered to have ended."""


def fast_length(n: int) -> int:
    """The smallest length ``>= n`` whose FFT is fast (a 5-smooth number)."""
    return int(scipy.fft.next_fast_len(int(n), real=True))


def fft_convolve(x: torch.Tensor, h: torch.Tensor, mode: str = "full") -> torch.Tensor:
    """Linear convolution of ``x`` and ``h`` along the last dimension, by FFT.

    Args:
        x: signal ``[..., samples]``.
        h: kernel ``[..., taps]``; leading dimensions broadcast against ``x``'s.
        mode: ``"full"`` returns all ``samples + taps - 1`` output samples
            (equal to ``numpy.convolve``); ``"causal"`` returns the first
            ``samples`` (a causal filter applied with zero initial state).

    Returns:
        ``[..., samples + taps - 1]`` or ``[..., samples]`` in the result dtype of ``x`` and ``h``.

    Raises:
        ValueError: ``mode`` is neither ``"full"`` nor ``"causal"``.
    """
    if mode not in ("full", "causal"):
        raise ValueError(f"fft_convolve: mode must be 'full' or 'causal', got {mode!r}")
    if mode == "causal":
        h = h[..., : x.shape[-1]]  # later taps only reach outputs past the signal's end
    samples, taps = x.shape[-1], h.shape[-1]
    full = samples + taps - 1
    block = max(BLOCK, 4 * taps)
    if samples > 2 * block:
        return _overlap_add(x, h, block, full if mode == "full" else samples)
    n_fft = fast_length(full)
    spectrum = torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(h, n=n_fft)
    y = torch.fft.irfft(spectrum, n=n_fft)
    return y[..., : full if mode == "full" else samples]


def _overlap_add(x: torch.Tensor, h: torch.Tensor, block: int, length: int) -> torch.Tensor:
    """The first ``length`` samples of ``x * h``, one FFT per block of ``block`` samples of ``x``."""
    taps = h.shape[-1]
    n_fft = fast_length(block + taps - 1)
    kernel = torch.fft.rfft(h, n=n_fft)
    shape = torch.broadcast_shapes(x.shape[:-1], h.shape[:-1])
    y = torch.zeros((*shape, length), dtype=torch.promote_types(x.dtype, h.dtype), device=x.device)
    for start in range(0, min(x.shape[-1], length), block):
        piece = torch.fft.irfft(torch.fft.rfft(x[..., start:start + block], n=n_fft) * kernel, n=n_fft)
        stop = min(start + n_fft, length)
        y[..., start:stop] += piece[..., : stop - start]
    return y


def decay_length(pole_radius: float, minimum: int = 64, maximum: int = 1 << 22) -> int:
    """Samples until an impulse response with this largest pole radius has
    decayed below :data:`IR_TAIL_TOLERANCE` (with a margin for the
    polynomial factor of repeated poles), clipped to ``[minimum, maximum]``."""
    if pole_radius <= 0.0:
        return minimum
    if pole_radius >= 1.0:
        return maximum
    length = 1.5 * math.log(IR_TAIL_TOLERANCE) / math.log(pole_radius)
    return int(min(max(math.ceil(length), minimum), maximum))


def convolve_block(x: torch.Tensor, h: torch.Tensor, tail: torch.Tensor | None,
                   spectra: dict[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One block of a causal convolution carried across blocks (overlap-add).

    The block's full convolution with ``h`` (:func:`fft_convolve`), plus the
    part of the previous blocks' convolutions that reaches into it.

    Args:
        x: the block ``[..., samples]``.
        h: kernel ``[..., taps]``, the whole causal impulse response (not cut to the block).
        tail: the previous blocks' overhang ``[..., taps - 1]`` (``None`` or zeros at the start).
        spectra: a cache of ``h``'s transforms by FFT length, filled and reused
            (blocks of one size transform the kernel once); ``None``: no cache.

    Returns:
        ``(y, tail)``: the block's output ``[..., samples]`` and the overhang
        into the blocks that follow, ``[..., taps - 1]``.
    """
    samples, taps = x.shape[-1], h.shape[-1]
    if spectra is None or samples > 2 * max(BLOCK, 4 * taps):
        full = fft_convolve(x, h, mode="full")
    else:
        n_fft = fast_length(samples + taps - 1)
        kernel = spectra.get(n_fft)
        if kernel is None:
            kernel = spectra[n_fft] = torch.fft.rfft(h, n=n_fft)
        full = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * kernel, n=n_fft)[..., : samples + taps - 1]
    if tail is not None and tail.shape[-1]:
        overlap = tail.shape[-1]
        full = torch.cat([full[..., :overlap] + tail, full[..., overlap:]], dim=-1)
    return full[..., :samples], full[..., samples:]
