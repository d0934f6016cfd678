"""Biquad cascades whose coefficients move: exact recursion, block by block, memories carried.

A moving control reaches a filter as ``[nodes, k, samples]``. The filter
takes the control's value at the first sample of each block of ``block``
samples, designs that block's biquads from it, and runs the exact
direct-form-I recursion through the block, starting from the filter's
memories at the end of the previous block. The coefficients thus step once a
block (they never change inside one), and nothing is reset between blocks: a
constant curve renders what the static filter renders.

The recursion is not a Python loop over samples. Inside a block of constant
coefficients the all-pole part ``1/A(z)`` has the companion matrix
``C = [[-a1, -a2], [1, 0]]``, whose powers are
``C**n = [[h[n], -a2 h[n-1]], [h[n-1], -a2 h[n-2]]]``: the block's impulse
response ``h`` (one vectorised step per sample for all blocks) gives both its response to an input and
its response ``(h[n+1], -a2 h[n])`` to the memories ``(y[-1], y[-2])``. Each block's zero-state output is a
causal FFT convolution of the block with its own ``h`` (exact: only the first
``block`` samples of ``h`` reach inside the block), and the memories passed
from block to block obey an affine recursion solved by a parallel prefix scan.
Gradients are autograd's, exact for this computation.

A stream renders the same filter block by block (:func:`moving_sos_block`):
the coefficient grid runs from the stream's start, and the state carries the
memories at its last grid point, so the blocks equal the one-call render
whatever their lengths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["block_values", "blockwise_coefficients", "moving", "moving_sos_filter", "moving_sos_block", "DEFAULT_BLOCK"]

DEFAULT_BLOCK = 256
"""Samples between coefficient updates of a moving filter (5.8 ms at 44.1 kHz)."""


def block_values(value: torch.Tensor, samples: int, block: int) -> torch.Tensor:
    """A control's value at the start of each block: ``[nodes, k]`` or ``[nodes, k, samples]`` to
    ``[nodes, k, blocks]`` with ``blocks = ceil(samples / block)`` (a constant is repeated)."""
    blocks = math.ceil(samples / block)
    if value.dim() == 3:
        return value[..., ::block][..., :blocks]
    return value.unsqueeze(-1).expand(*value.shape, blocks)


def moving(params: dict[str, Any]) -> bool:
    """Whether any control among ``params`` is a moving one (``[nodes, k, samples]``)."""
    return any(isinstance(value, torch.Tensor) and value.dim() == 3 for value in params.values())


def blockwise_coefficients(design: Callable[..., tuple[torch.Tensor, torch.Tensor]], params: dict[str, torch.Tensor],
                           samples: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``design(**params)`` once per block: ``(b, a)`` ``[nodes, sections, 3, blocks]``.

    Each control's value at each block's first sample (:func:`block_values`)
    is folded into the node dimension, so one call designs every block.
    """
    values = {name: block_values(value, samples, block) for name, value in params.items()}
    nodes, blocks = next(iter(values.values())).shape[0], next(iter(values.values())).shape[-1]
    flat = {name: value.movedim(-1, 1).reshape(nodes * blocks, *value.shape[1:-1]) for name, value in values.items()}
    b, a = design(**flat)
    return (b.reshape(nodes, blocks, *b.shape[1:]).movedim(1, -1), a.reshape(nodes, blocks, *a.shape[1:]).movedim(1, -1))


class _AllPoleImpulse(torch.autograd.Function):
    """``h[0 .. count - 1]`` of ``1 / (1 + a1 z^-1 + a2 z^-2)`` for every ``(a1, a2)``, with its exact gradient.

    The forward pass is the plain recursion, one vectorised step per sample
    over every node and block at once, outside autograd; the recursion carries
    its rounding errors along the filter's own stable dynamics (doubling,
    ``h[n + m] = h[m] h[n] - a2 h[m - 1] h[n - 1]``, cancels ever larger terms near
    ``z = 1`` and lost 1e-5 of a 100 Hz shelf's output even in float64). The
    backward pass uses ``dh/da1 = -(h * h)[n - 1]`` and ``dh/da2 = -(h * h)[n - 2]``
    (``*`` a causal convolution, by FFT): the derivative of ``1 / A`` is ``-z^-k / A**2``.
    """

    @staticmethod
    def forward(ctx: Any, a1: torch.Tensor, a2: torch.Tensor, count: int) -> torch.Tensor:  # type: ignore[override]
        if a1.device.type == "cpu":
            h = _impulse_numpy(a1, a2, count)
        else:
            h = torch.empty(*a1.shape, max(count, 2), dtype=a1.dtype, device=a1.device)
            h[..., 0] = 1.0
            h[..., 1] = -a1
            for n in range(2, count):
                torch.addcmul(-a2 * h[..., n - 2], -a1, h[..., n - 1], out=h[..., n])
            h = h[..., :count]
        ctx.save_for_backward(h)
        return h

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # type: ignore[override]
        (h,) = ctx.saved_tensors
        count = h.shape[-1]
        size = 2 * count
        spectrum = torch.fft.rfft(h, n=size)
        square = torch.fft.irfft(spectrum * spectrum, n=size)[..., :count]
        grad_a1 = -(grad[..., 1:] * square[..., :-1]).sum(-1)
        grad_a2 = -(grad[..., 2:] * square[..., :-2]).sum(-1)
        return grad_a1, grad_a2, None


def _impulse_numpy(a1: torch.Tensor, a2: torch.Tensor, count: int) -> torch.Tensor:
    """:class:`_AllPoleImpulse`'s recursion on the CPU, in numpy: a stream designs a few blocks at a
    time, where a torch operation's dispatch per sample cost several times numpy's."""
    minus_a1, minus_a2 = (-a1).detach().numpy(), (-a2).detach().numpy()
    h = np.empty((max(count, 2), *minus_a1.shape), dtype=minus_a1.dtype)  # samples first: contiguous rows
    h[0], h[1] = 1.0, minus_a1
    older = np.empty_like(minus_a1)
    for n in range(2, count):
        np.multiply(minus_a2, h[n - 2], out=older)
        np.multiply(minus_a1, h[n - 1], out=h[n])
        h[n] += older
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(h[:count], 0, -1)))


def _impulse(a1: torch.Tensor, a2: torch.Tensor, count: int) -> torch.Tensor:
    """``h[0 .. count - 1]`` of ``1 / (1 + a1 z^-1 + a2 z^-2)``, ``[..., count]`` (see :class:`_AllPoleImpulse`)."""
    return _AllPoleImpulse.apply(a1, a2, count)


def _scan(matrices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """States ``s_0 = 0, s_{k+1} = M_k s_k + c_k`` for ``k < K``: ``s_1 .. s_K``, ``[..., K, 2]``.

    A Hillis-Steele prefix scan over the affine maps (``log2 K`` vectorised
    steps), with the 2 x 2 products written out: batched matmuls of 2 x 2
    matrices cost far more than their eight products. ``matrices`` is
    ``[..., K, 4]`` (row-major entries, broadcast against ``offsets`` ``[..., K, 2]``).
    """
    count = offsets.shape[-2]
    step = 1
    while step < count:
        m, c = matrices[..., step:, :], offsets[..., step:, :]
        pm, pc = matrices[..., :-step, :], offsets[..., :-step, :]
        c = torch.stack([m[..., 0] * pc[..., 0] + m[..., 1] * pc[..., 1] + c[..., 0],
                         m[..., 2] * pc[..., 0] + m[..., 3] * pc[..., 1] + c[..., 1]], dim=-1)
        m = torch.stack([m[..., 0] * pm[..., 0] + m[..., 1] * pm[..., 2], m[..., 0] * pm[..., 1] + m[..., 1] * pm[..., 3],
                         m[..., 2] * pm[..., 0] + m[..., 3] * pm[..., 2], m[..., 2] * pm[..., 1] + m[..., 3] * pm[..., 3]],
                        dim=-1)
        offsets = torch.cat([offsets[..., :step, :], c], dim=-2)
        matrices = torch.cat([matrices[..., :step, :].expand(*m.shape[:-2], step, 4), m], dim=-2)
        step *= 2
    return offsets


def _section(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, h: torch.Tensor, block: int,
             inputs_before: torch.Tensor | None = None, outputs_before: torch.Tensor | None = None) -> torch.Tensor:
    """One moving biquad on ``x`` ``[nodes, channels, blocks * block]``; ``b``, ``a`` ``[nodes, 3, blocks]``,
    ``h`` its all-pole impulse responses ``[nodes, blocks, block + 1]``; ``inputs_before`` and
    ``outputs_before`` its input's and output's two samples before ``x`` (``[nodes, channels, 2]``, oldest
    first; zero if ``None``)."""
    nodes, channels, length = x.shape
    blocks = length // block
    steps = [coefficient.repeat_interleave(block, dim=-1).unsqueeze(1) for coefficient in b.unbind(1)]
    padded = F.pad(x, (2, 0)) if inputs_before is None else torch.cat([inputs_before, x], dim=-1)
    moved = steps[0] * x + steps[1] * padded[..., 1:-1] + steps[2] * padded[..., :-2]
    a2 = a[:, 2]  # [nodes, blocks]
    size = 2 * block
    segments = moved.reshape(nodes, channels, blocks, block)
    zero_state = torch.fft.irfft(torch.fft.rfft(segments, n=size) * torch.fft.rfft(h[..., :block], n=size).unsqueeze(1),
                                 n=size)[..., :block]
    # Output n of a block answers its entering memories (y[-1], y[-2]) with (h[n+1], -a2 h[n]).
    first, second = h[..., 1:].unsqueeze(1), (-a2.unsqueeze(-1) * h[..., :block]).unsqueeze(1)
    # The memories after block k: (y[B-1], y[B-2]) = c_k + C_k**B (memories entering block k).
    offsets = zero_state[..., [block - 1, block - 2]]  # [nodes, channels, blocks, 2]
    matrices = torch.stack([first[..., block - 1], second[..., block - 1],
                            first[..., block - 2], second[..., block - 2]], dim=-1)  # [nodes, 1, blocks, 4]
    if outputs_before is None:
        start = torch.zeros_like(offsets[..., :1, :])
    else:  # the first block's memories enter through its own map: fold them into its offset
        start = outputs_before[..., [1, 0]].unsqueeze(-2)  # (y[-1], y[-2]) [nodes, channels, 1, 2]
        m = matrices[..., :1, :]
        carried = torch.stack([m[..., 0] * start[..., 0] + m[..., 1] * start[..., 1],
                               m[..., 2] * start[..., 0] + m[..., 3] * start[..., 1]], dim=-1)
        offsets = torch.cat([offsets[..., :1, :] + carried, offsets[..., 1:, :]], dim=-2)
    after = _scan(matrices, offsets)
    entering = torch.cat([start, after[..., :-1, :]], dim=-2)
    y = zero_state + first * entering[..., :1] + second * entering[..., 1:]
    return y.reshape(nodes, channels, length)


def moving_sos_filter(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Filter ``x`` through cascades of biquads whose coefficients step once a block.

    Args:
        x: ``[nodes, channels, samples]``.
        b: numerators ``[nodes, sections, 3, blocks]``, one set per block of
            ``block`` samples (``blocks = ceil(samples / block)``).
        a: normalised denominators, the same shape, poles inside the unit circle.
        block: samples per block.

    Returns:
        ``[nodes, channels, samples]`` in ``x``'s dtype: the exact recursion
        (zero initial memories), as ``scipy.signal.sosfilt`` run block by block
        with the memories carried.
    """
    samples = x.shape[-1]
    blocks = b.shape[-1]
    if blocks != math.ceil(samples / block):
        raise ValueError(f"moving_sos_filter: {samples} samples in blocks of {block} need "
                         f"{math.ceil(samples / block)} coefficient sets, got {blocks}")
    # float64 inside: a low cutoff's all-pole part amplifies what its numerator cancelled, and in
    # float32 the block convolutions' rounding then reached 1e-4 of the output.
    y = F.pad(x.to(torch.float64), (0, blocks * block - samples))
    b, a = b.to(torch.float64), a.to(torch.float64)
    impulses = _impulse(a[:, :, 1], a[:, :, 2], block + 1)  # every section at once: [nodes, sections, blocks, n]
    for section in range(b.shape[1]):
        y = _section(y, b[:, section], a[:, section], impulses[:, section], block)
    return y[..., :samples].to(x.dtype)


def moving_sos_block(state: Mapping[str, Any], x: torch.Tensor,
                     design: Callable[..., tuple[torch.Tensor, torch.Tensor]], params: dict[str, torch.Tensor],
                     block: int = DEFAULT_BLOCK) -> tuple[torch.Tensor, dict[str, Any]]:
    """One block of a stream through :func:`moving_sos_filter`, equal to that part of its one-call render.

    The coefficient grid runs from the start of the stream, not of the block:
    a block that starts inside a grid block re-renders that grid block's
    earlier samples (at most ``block - 1``, kept in the state) from the
    memories at its start, with the coefficients designed where it began, so
    every sample sees the coefficients and the arithmetic of the one-call
    render, whatever the stream's block lengths.

    Args:
        state: ``{}`` before the first block, else the state this function returned:
            ``offset`` (samples since the last grid point, an int), ``memories``
            (``[nodes, channels, sections + 1, 2]`` float64: the last two samples
            before that grid point of the input and of each section's output,
            oldest first) and, where ``offset > 0``, ``pending`` (the input since
            the grid point, ``[nodes, channels, offset]`` float64) and ``b``,
            ``a``, ``h`` (that grid block's coefficients ``[nodes, sections, 3, 1]``
            and all-pole impulse responses ``[nodes, sections, 1, block + 1]``).
        x: the block ``[nodes, channels, samples]``.
        design: ``design(**values)`` to ``(b, a)`` ``[n, sections, 3]`` for values ``[n, k]``.
        params: the controls over the block: ``[nodes, k, samples]`` (a curve,
            the block's samples of it) or ``[nodes, k]`` (constant).
        block: samples per coefficient block.

    Returns:
        ``(y, state)``: ``[nodes, channels, samples]`` in ``x``'s dtype and the state after the block.
    """
    offset, samples = int(state.get("offset", 0)), x.shape[-1]
    signal = x.to(torch.float64)
    if offset:
        signal = torch.cat([state["pending"], signal], dim=-1)
    total = offset + samples
    blocks = math.ceil(total / block)
    first = (block - offset) % block  # the block's first grid point, in the block's samples
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if offset:
        parts.append((state["b"], state["a"], state["h"]))
    if first < samples:
        cut = {name: value[..., first:] if value.dim() == 3 else value for name, value in params.items()}
        b, a = blockwise_coefficients(design, cut, samples - first, block)
        b, a = b.to(torch.float64), a.to(torch.float64)
        parts.append((b, a, _impulse(a[:, :, 1], a[:, :, 2], block + 1)))
    b, a, impulses = (torch.cat(part, dim=dim) for part, dim in zip(zip(*parts), (-1, -1, -2)))
    nodes, channels, sections = x.shape[0], x.shape[1], b.shape[1]
    memories = state.get("memories")
    if memories is None:
        memories = signal.new_zeros(nodes, channels, sections + 1, 2)
    stage = F.pad(signal, (0, blocks * block - total))
    stages = [torch.cat([memories[:, :, 0], stage], dim=-1)]
    for section in range(sections):
        stage = _section(stage, b[:, section], a[:, section], impulses[:, section], block,
                         memories[:, :, section], memories[:, :, section + 1])
        stages.append(torch.cat([memories[:, :, section + 1], stage], dim=-1))
    y = stage[..., offset:total].to(x.dtype)
    grid = total // block * block  # the last grid point at or before the block's end
    new: dict[str, Any] = {"offset": total - grid,
                           "memories": torch.stack([s[..., grid:grid + 2] for s in stages], dim=2)}
    if total > grid:
        new.update(pending=signal[..., grid:], b=b[..., -1:], a=a[..., -1:], h=impulses[..., -1:, :])
    return y, new
