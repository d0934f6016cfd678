"""Processor state across blocks: the helpers of the state protocol.

A processor that carries state declares ``initial_state(*signals, **params)``
and ``forward_stateful(state, *signals, **params) -> (result, state)``; one
whose output sample ``n`` depends only on input sample ``n`` declares
``memoryless = True`` (see the docs page "Time: state across blocks and
controls that move"). This module holds what every user of that protocol
needs once: how a stream calls a processor for one block, how a state tree is
detached between blocks, and how a processor is rendered block by block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from .description import describe
from .errors import StreamingError

__all__ = ["detach_state", "require_streamable", "call_block", "render_in_blocks", "split_lengths"]


def detach_state(state: Any) -> Any:
    """``state`` with every tensor detached from autograd, nested mappings, lists and tuples rebuilt.

    Other objects (a black box's plug-in instances) are returned as they are.
    A stream detaches each state between blocks, so that memory does not grow
    with the number of blocks rendered (truncated back-propagation).
    """
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, Mapping):
        return {key: detach_state(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(value) for value in state)
    return state


def require_streamable(processor: Any, where: str = "") -> str:
    """How a stream calls ``processor``: ``"stateful"`` or ``"memoryless"``.

    Args:
        processor: any processor.
        where: what the message names besides the processor (a node type).

    Raises:
        StreamingError: the processor neither carries state nor declares
            ``memoryless`` (one line naming it and what it needs).
    """
    description = describe(processor)
    if description.stateful:
        return "stateful"
    if description.memoryless:
        return "memoryless"
    raise StreamingError(
        f"{description.name}{f' ({where})' if where else ''} cannot be rendered block by block: it declares "
        "neither initial_state/forward_stateful (state carried across blocks) nor memoryless = True"
    )


def call_block(processor: Any, state: Any, signals: Sequence[torch.Tensor],
               parameters: Mapping[str, Any]) -> tuple[Any, Any]:
    """Render one block through ``processor`` from ``state``.

    Args:
        processor: a stateful or memoryless processor.
        state: the state after the previous block; ``None`` before the first
            (then ``initial_state`` is asked for it).
        signals: one ``[rows, channels, samples]`` block per inlet.
        parameters: the call's parameters, as ``forward`` takes them.

    Returns:
        ``(result, state)``: ``result`` as ``forward`` returns it, and the
        state after the block (``None`` for a memoryless processor).

    Raises:
        StreamingError: see :func:`require_streamable`.
    """
    if state is None:  # the first block, or a memoryless processor's every block
        if require_streamable(processor) == "memoryless":
            return processor(*signals, **parameters), None
        state = processor.initial_state(*signals, **parameters)
    return processor.forward_stateful(state, *signals, **parameters)


def split_lengths(total: int, sizes: Iterable[int]) -> list[int]:
    """Block lengths covering ``total`` samples, cycling through ``sizes`` (the last block is cut short).

    Raises:
        ValueError: a size is not a positive int, or ``sizes`` is empty.
    """
    sizes = list(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"block sizes must be positive ints, got {sizes!r}")
    lengths, done, k = [], 0, 0
    while done < total:
        lengths.append(min(sizes[k % len(sizes)], total - done))
        done += lengths[-1]
        k += 1
    return lengths


def render_in_blocks(processor: Any, signals: Sequence[torch.Tensor], parameters: Mapping[str, Any],
                     sizes: Iterable[int], detach: bool = False) -> list[torch.Tensor]:
    """Render ``signals`` through ``processor`` in blocks and join the outlets' outputs.

    Aux values are left out (a block's aux describes that block). A
    processor's ``latency_samples`` is not compensated here: its stateful
    output is that many samples late, as a stream receives it.

    Args:
        processor: a stateful or memoryless processor.
        signals: one ``[rows, channels, samples]`` signal per inlet.
        parameters: as ``forward`` takes them; a moving control, a curve ``[rows, *shape, samples]``
            over the whole signal (one more axis than its declared shape and the row axis), is cut
            to each block's samples, as a stream's engine hands it to the processor.
        sizes: block lengths, cycled until the signals end.
        detach: detach the state between blocks.

    Returns:
        One ``[rows, channels', samples]`` tensor per outlet.

    Raises:
        StreamingError: see :func:`require_streamable`.
    """
    state, pieces, start = None, [], 0
    total = signals[0].shape[-1]
    curves = _curve_paths(processor, parameters, total)
    for length in split_lengths(total, sizes):
        block = [x[..., start:start + length] for x in signals]
        result, state = call_block(processor, state, block, _cut(parameters, curves, start, start + length))
        if detach:
            state = detach_state(state)
        items = list(result) if isinstance(result, (tuple, list)) else [result]
        if items and isinstance(items[-1], Mapping):
            items.pop()
        pieces.append(items)
        start += length
    return [torch.cat(outlet, dim=-1) for outlet in zip(*pieces)]


def _curve_paths(processor: Any, parameters: Mapping[str, Any], samples: int) -> list[tuple[str, ...]]:
    """The paths of ``parameters`` that are curves over ``samples``: ``[rows, *shape, samples]`` for a
    control of declared ``shape``."""
    found = []
    for path, control in describe(processor).controls.items():
        value: Any = parameters
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if (isinstance(value, torch.Tensor) and value.dim() == len(control.shape) + 2
                and value.shape[-1] == samples):
            found.append(tuple(path))
    return found


def _cut(parameters: Mapping[str, Any], curves: list[tuple[str, ...]], start: int, stop: int) -> Mapping[str, Any]:
    """``parameters`` with each curve at ``curves`` cut to the samples ``[start, stop)``."""
    if not curves:
        return parameters
    cut = dict(parameters)
    for path in curves:
        tree = cut
        for key in path[:-1]:
            tree[key] = tree = dict(tree[key])
        tree[path[-1]] = tree[path[-1]][..., start:stop]
    return cut
