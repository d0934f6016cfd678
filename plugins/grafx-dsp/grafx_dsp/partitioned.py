"""Uniformly partitioned FFT convolution: a long impulse response applied block by block.

Convolving every block of a stream with a whole one-second response costs an
FFT the response's length per block, whatever the block's length. Here the
response is cut into partitions of ``size`` taps, ``h_j = h[j*size:(j+1)*size]``,
transformed once (``2 * size`` points each), and the input is cut into chunks
of ``size`` samples at fixed positions ``q * size`` of the stream. The output
over chunk ``q`` is (overlap-save)::

    y_q = last size samples of irfft(sum_j S_{q-j} H_j),  S_r = rfft([x_{r-1}, x_r])

so a chunk costs one forward and one inverse FFT of ``2 * size`` points and a
multiply-accumulate over the frequency-domain delay line (the spectra
``S_{q-1}, S_{q-2}, ...`` kept in the state), however long the response is.

Blocks of any length are exact, with no latency: partitions ``j >= 1`` only
reach output ``n`` from input before ``n - size``, so the tail part of a chunk
is known from the stream's past as soon as the chunk begins; the head
partition ``h_0`` of a block that is not exactly one whole chunk is convolved
directly with the block and the ``size - 1`` input samples before it. A block
that is exactly one chunk takes the two-FFT path above.

Every operation is out of place, so gradients flow to the signal and to the
response within a block; tensors follow the input's device and dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .fft import fast_length

__all__ = ["partition_size", "partition_spectra", "partitioned_block", "initial_partitioned_state"]

MIN_SIZE, MAX_SIZE = 256, 8192
"""The range of partition sizes :func:`partition_size` picks from."""


def partition_size(block: int) -> int:
    """The partition size for a stream whose first block has ``block`` samples: the
    next power of two, within [256, 8192] (a block of that size is one chunk)."""
    size = 1 << max(int(block) - 1, 1).bit_length()
    return min(max(size, MIN_SIZE), MAX_SIZE)


def partition_spectra(h: torch.Tensor, size: int) -> torch.Tensor:
    """The transforms of ``h``'s partitions, ``[..., parts, size + 1]`` complex.

    Args:
        h: impulse responses ``[..., taps]``.
        size: taps per partition; ``parts = ceil(taps / size)`` (the last zero-padded).
    """
    taps = h.shape[-1]
    parts = max(1, -(-taps // size))
    padded = torch.nn.functional.pad(h, (0, parts * size - taps))
    return torch.fft.rfft(padded.reshape(*h.shape[:-1], parts, size), n=2 * size)


def initial_partitioned_state(x: torch.Tensor, parts: int, size: int) -> dict[str, Any]:
    """Silence before the stream: ``x`` is the first block ``[..., samples]`` (its leading
    shape, dtype and device are the state's).

    State: ``previous`` (the last whole chunk of input, ``[..., size]``),
    ``partial`` (the input of the chunk under way, ``[..., < size]``), ``lines``
    (the frequency-domain delay line ``S_{q-1}, S_{q-2}, ...``,
    ``[..., parts - 1, size + 1]``) and ``tail`` (the partitions ``j >= 1``'s
    output over the chunk under way, ``[..., size]``; made when it begins).
    """
    lead = x.shape[:-1]
    spectrum_dtype = torch.fft.rfft(x.new_zeros(2)).dtype
    return {
        "previous": x.new_zeros(*lead, size),
        "partial": x.new_zeros(*lead, 0),
        "lines": torch.zeros(*lead, parts - 1, size + 1, dtype=spectrum_dtype, device=x.device),
        "tail": x.new_zeros(*lead, size),
    }


def partitioned_block(x: torch.Tensor, spectra: torch.Tensor, head: torch.Tensor,
                      state: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """One block of the causal convolution of a stream with a partitioned response.

    Args:
        x: the block ``[..., samples]`` (any length).
        spectra: :func:`partition_spectra` of the response, ``[..., parts, size + 1]``
            (leading dimensions broadcast against ``x``'s).
        head: the response's first ``size`` taps, ``[..., size]``.
        state: :func:`initial_partitioned_state` or the state after the previous block.

    Returns:
        ``(y, state)``: the block's output ``[..., samples]`` (leading shape
        broadcast from ``x`` and the response) and the state after it.

    Raises:
        ValueError: the response has more partitions than the state was made for.
    """
    size = head.shape[-1]
    lines = state["lines"]
    if spectra.shape[-2] > lines.shape[-2] + 1:
        raise ValueError(f"partitioned_block: the response has {spectra.shape[-2]} partitions of {size} taps, "
                         f"but the stream's state was made for {lines.shape[-2] + 1}: a response may not grow "
                         "during a stream")
    tails = spectra[..., 1:, :]
    previous, partial, tail = state["previous"], state["partial"], state["tail"]
    pieces, done, samples = [], 0, x.shape[-1]
    while done < samples:
        offset = partial.shape[-1]
        take = min(size - offset, samples - done)
        piece = x[..., done:done + take]
        if offset == 0:
            if take == size:  # one whole chunk: the head partition joins the delay line's sum
                chunk = torch.fft.rfft(torch.cat([previous, piece], dim=-1), n=2 * size)
                total = torch.addcmul(_accumulate(lines, tails), chunk, spectra[..., 0, :])
                pieces.append(torch.fft.irfft(total, n=2 * size)[..., size:])
                lines, previous = _push(lines, chunk), piece
                done += take
                continue
            tail = torch.fft.irfft(_accumulate(lines, tails), n=2 * size)[..., size:]
        history = torch.cat([previous, partial], dim=-1)[..., offset + 1:]  # the size - 1 samples before
        pieces.append(tail[..., offset:offset + take] + _direct(torch.cat([history, piece], dim=-1), head, take))
        partial = torch.cat([partial, piece], dim=-1)
        if partial.shape[-1] == size:
            chunk = torch.fft.rfft(torch.cat([previous, partial], dim=-1), n=2 * size)
            lines, previous, partial = _push(lines, chunk), partial, partial[..., :0]
        done += take
    y = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
    return y, {"previous": previous, "partial": partial, "lines": lines, "tail": tail}


def _accumulate(lines: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """``sum_j S_{q-j} H_j`` over the partitions ``j >= 1`` (none: zeros)."""
    used = tails.shape[-2]
    if used == 0:
        return torch.zeros(torch.broadcast_shapes(lines.shape[:-2], tails.shape[:-2]) + lines.shape[-1:],
                           dtype=lines.dtype, device=lines.device)
    if used == 1:  # an EQ's response a little longer than a partition: no sum over one term
        return lines[..., 0, :] * tails[..., 0, :]
    return (lines[..., :used, :] * tails).sum(dim=-2)


def _push(lines: torch.Tensor, chunk: torch.Tensor) -> torch.Tensor:
    if lines.shape[-2] <= 1:
        return chunk.unsqueeze(-2) if lines.shape[-2] else lines
    return torch.cat([chunk.unsqueeze(-2), lines[..., :-1, :]], dim=-2)


def _direct(segment: torch.Tensor, head: torch.Tensor, take: int) -> torch.Tensor:
    """The last ``take`` samples of ``segment`` convolved with ``head`` (``segment`` holds the
    ``size - 1`` samples before them, so no output needs anything earlier)."""
    n = fast_length(segment.shape[-1] + head.shape[-1] - 1)
    full = torch.fft.irfft(torch.fft.rfft(segment, n=n) * torch.fft.rfft(head, n=n), n=n)
    stop = segment.shape[-1]
    return full[..., stop - take:stop]
