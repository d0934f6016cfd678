"""Fitting on long material: excerpts rendered with their real preceding state.

A loss on a random excerpt of an hour-long session needs the excerpt's output
as the whole render would give it: reverb tails, compressor envelopes and
filter memories that started long before the excerpt. :func:`render_excerpt`
renders the material before the excerpt block by block without gradient (a
stream: only the processors' states are kept), then the excerpt itself with
gradient, from those states. Memory is that of one block plus the excerpt's
autograd graph, whatever the material's length; the gradient is that of the
excerpt's own render (truncated back-propagation: how the parameters shaped
the states the excerpt starts from is not followed back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .plan import RenderPlan
from .stream import stream_latency

__all__ = ["render_excerpt"]


def render_excerpt(plan: RenderPlan, parameters: Any, sources: torch.Tensor, start: int, length: int, *,
                   warmup: int | None = None, block_size: int = 4096,
                   warmup_gradient: bool = False) -> torch.Tensor:
    """The outputs over samples ``[start, start + length)`` of ``sources``, as a whole render gives them.

    Args:
        plan: a compiled :class:`~grafx_core.RenderPlan`; every processor streams
            (see :func:`grafx_core.stream.stream_render`).
        parameters: as for :meth:`RenderPlan.__call__`; the excerpt's render
            records their gradient (when they require one).
        sources: ``[num_in, channels, samples]`` or batched; may be a
            memory-mapped file's view: only the blocks read are touched.
        start, length: the excerpt, in samples.
        warmup: samples before ``start`` rendered to build the state
            (``None``: all of them, exact; fewer is faster and exact once
            every processor's memory is shorter than ``warmup``).
        block_size: samples per warm-up block.
        warmup_gradient: render the warm-up with gradient too and keep the
            states' autograd graph, so that the excerpt's gradient also follows
            how the parameters shaped the state it starts from: the gradient of
            the same window of a whole render, once ``warmup`` covers every
            processor's memory. Memory then grows with ``warmup + length``
            (never with the material before the warm-up).

    Returns:
        ``[num_out, channels, length]`` (batched like ``sources``), with a
        gradient from the excerpt's render.

    Raises:
        ValueError: the excerpt does not lie inside ``sources`` or
            ``block_size``/``warmup`` is not positive.
        StreamingError: a processor cannot stream; a black box asked for a
            gradient (black boxes give none block by block).
    """
    total = sources.shape[-1]
    if not (0 <= start and length >= 1 and start + length <= total):
        raise ValueError(f"render_excerpt: the excerpt [{start}, {start + length}) is not inside the "
                         f"{total} samples of the sources")
    if block_size < 1 or (warmup is not None and warmup < 0):
        raise ValueError(f"render_excerpt: block_size must be >= 1 and warmup >= 0, got {block_size}, {warmup}")
    first = 0 if warmup is None else max(0, start - warmup)
    stop = min(total, start + length + stream_latency(plan))  # the samples a late processor still needs
    pieces, position = [], first
    blocks = _blocks(sources, first, start, stop, block_size, warmup_gradient)
    for y in plan.stream(parameters, blocks, detach_state=not warmup_gradient):
        lo, hi = max(position, start), min(position + y.shape[-1], start + length)
        if lo < hi:
            pieces.append(y[..., lo - position:hi - position])
        position += y.shape[-1]
    return torch.cat(pieces, dim=-1)


def _blocks(sources: torch.Tensor, first: int, start: int, stop: int, size: int,
            warmup_gradient: bool = False) -> Iterator[torch.Tensor]:
    """Warm-up blocks, rendered without gradient, then the excerpt with the caller's gradient mode.

    The stream renders each block right after taking it from this iterator, so
    the gradient mode set here is the one its render runs under.
    """
    enabled = torch.is_grad_enabled()
    try:
        torch.set_grad_enabled(enabled and warmup_gradient)
        for s in range(first, start, size):
            yield sources[..., s:min(s + size, start)]
        torch.set_grad_enabled(enabled)
        yield sources[..., start:stop]
    finally:
        torch.set_grad_enabled(enabled)
