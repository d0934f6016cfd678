"""Assembling a stage's input signals from the outputs of earlier stages.

Each stage reads each of its inputs once and writes it once: a producer's
output is used as is when a stage takes all of it in order, sliced when it
takes a contiguous run, and otherwise gathered with one ``index_select`` per
producer followed by one concatenation (or one ``index_add_`` when several
edges meet at an inlet and must be summed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import GraphConnectionError

Producer = tuple[int, int]
"""``(stage index, outlet index)``; stage ``-1`` is the sources."""


@dataclass
class EdgeGroup:
    """The edges into one inlet of a stage that come from one producer."""

    producer: Producer
    src_rows: np.ndarray  # row in the producing stage
    dst_rows: np.ndarray  # row in the consuming stage


@dataclass
class InletPlan:
    """How to assemble one inlet's input for a whole stage."""

    name: str
    groups: list[EdgeGroup]
    num_rows: int
    one_edge_each: bool  # every row is fed by exactly one edge (no sums)
    describe_row: list[str] = field(default_factory=list)  # node labels, for errors


@dataclass
class Produced:
    """One outlet of one stage: its output tensors ``[batch, rows, channels, samples]``.

    A stage whose nodes had to be split by input shape holds several parts;
    ``rows[k]`` lists the stage rows that part ``k`` holds (``None``: all, in
    order).
    """

    parts: list[torch.Tensor]
    rows: list[np.ndarray | None]
    part_of: np.ndarray | None = None
    local_row: np.ndarray | None = None

    @classmethod
    def single(cls, tensor: torch.Tensor) -> Produced:
        return cls([tensor], [None])

    def finish(self, num_rows: int) -> None:
        """Index rows to parts once all parts are in (several parts only)."""
        if len(self.parts) == 1 and self.rows[0] is None:
            return
        self.part_of = np.empty(num_rows, dtype=np.int64)
        self.local_row = np.empty(num_rows, dtype=np.int64)
        for k, rows in enumerate(self.rows):
            self.part_of[rows] = k
            self.local_row[rows] = np.arange(len(rows))

    def channels_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Channel count of each of the given rows."""
        if self.part_of is None:
            return np.full(len(rows), self.parts[0].shape[2], dtype=np.int64)
        per_part = np.array([p.shape[2] for p in self.parts], dtype=np.int64)
        return per_part[self.part_of[rows]]


class IndexCache:
    """Index tensors made once per device for the plan's own (long-lived) arrays."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, torch.device], torch.Tensor] = {}

    def get(self, array: np.ndarray, device: torch.device, static: bool) -> torch.Tensor:
        if not static:
            return torch.as_tensor(array, device=device)
        key = (id(array), device)
        tensor = self._cache.get(key)
        if tensor is None:
            tensor = torch.as_tensor(array, device=device)
            self._cache[key] = tensor
        return tensor


def inlet_channels(inlet: InletPlan, produced: dict[Producer, Produced]) -> np.ndarray | int:
    """The channel count each row of the inlet receives (an int if all agree).

    Summing a mono signal into a multichannel one broadcasts, so a row's
    channel count is the largest among its inputs.
    """
    counts = set()
    for group in inlet.groups:
        source = produced[group.producer]
        counts.update(p.shape[2] for p in source.parts)
    if len(counts) == 1:
        return counts.pop()
    per_row = np.zeros(inlet.num_rows, dtype=np.int64)
    for group in inlet.groups:
        np.maximum.at(per_row, group.dst_rows, produced[group.producer].channels_of_rows(group.src_rows))
    return per_row


def _is_range(rows: np.ndarray, start: int, length: int) -> bool:
    if len(rows) != length:
        return False
    if length == 0:
        return True
    if rows[0] != start or rows[length - 1] != start + length - 1:
        return False
    # A stream gathers every stage's inputs once per block: for the few rows of a stage a list
    # comparison costs a tenth of numpy's diff.
    return length <= 2 or (rows.tolist() == list(range(start, start + length)) if length <= 64
                           else bool(np.all(np.diff(rows) == 1)))


Gathered = Callable[[dict[Producer, Produced]], torch.Tensor]
"""An inlet's input assembled from the producers' outputs (:func:`gather_step`)."""


def gather_step(inlet: InletPlan, outlets: Mapping[Producer, tuple[int, int] | None], channels: int,
                device: torch.device, index_cache: IndexCache) -> Gathered | None:
    """How to assemble the inlet's input for the whole stage from its producers' outputs: every
    decision :func:`gather` takes (slice, select, sum) taken once, for a stream's blocks.

    Args:
        outlets: each producer's output as ``(rows, channels)``, or ``None`` where it is in several
            parts (its rows split by input shape).

    Returns:
        A function of the producers' outputs giving ``[batch, rows, channels, samples]``, or
        ``None`` where a producer's output is in several parts.
    """
    shapes = [outlets.get(group.producer) for group in inlet.groups]
    if any(shape is None for shape in shapes):
        return None
    pieces = [(group.producer, group.src_rows, group.dst_rows, shape)
              for group, shape in zip(inlet.groups, shapes) if shape is not None]

    def fitted(rows: np.ndarray, width: int) -> Callable[[torch.Tensor], torch.Tensor]:
        if width == channels:
            return lambda y: y
        if width == 1:
            return lambda y: y.expand(y.shape[0], y.shape[1], channels, y.shape[3])
        raise GraphConnectionError(
            f"{inlet.describe_row[int(rows[0])]}, inlet {inlet.name!r}: cannot sum a {width}-channel signal "
            f"with a {channels}-channel one (only mono broadcasts to any channel count)"
        )

    num_rows = inlet.num_rows
    if len(pieces) == 1:
        producer, src, dst, (total, width) = pieces[0]
        if len(dst) == num_rows and _is_range(dst, 0, num_rows):
            fit = fitted(dst, width)
            if _is_range(src, 0, total):
                return lambda p: fit(p[producer].parts[0])
            if _is_range(src, int(src[0]), num_rows):
                first = int(src[0])
                return lambda p: fit(p[producer].parts[0].narrow(1, first, num_rows))

    selects = []
    for producer, src, dst, (total, width) in pieces:
        fit = fitted(dst, width)
        if _is_range(src, 0, total):
            selects.append(lambda p, producer=producer, fit=fit: fit(p[producer].parts[0]))
        else:
            index = index_cache.get(src, device, True)
            selects.append(lambda p, producer=producer, fit=fit, index=index:
                           fit(p[producer].parts[0].index_select(1, index)))
    destinations = pieces[0][2] if len(pieces) == 1 else np.concatenate([p[2] for p in pieces])

    def stacked(p: dict[Producer, Produced]) -> torch.Tensor:
        return selects[0](p) if len(selects) == 1 else torch.cat([select(p) for select in selects], dim=1)

    if inlet.one_edge_each:
        if _is_range(destinations, 0, num_rows):
            return stacked
        order = torch.as_tensor(np.argsort(destinations, kind="stable"), device=device)
        return lambda p: stacked(p).index_select(1, order)
    into = torch.as_tensor(destinations, device=device)

    def summed(p: dict[Producer, Produced]) -> torch.Tensor:
        x = stacked(p)
        return x.new_zeros(x.shape[0], num_rows, channels, x.shape[3]).index_add_(1, into, x)

    return summed


def gather(
    inlet: InletPlan,
    produced: dict[Producer, Produced],
    subset: np.ndarray | None,
    channels: int,
    index_cache: IndexCache,
) -> torch.Tensor:
    """The inlet's input for the stage rows ``subset`` (all rows when ``None``).

    Returns:
        ``[batch, rows, channels, samples]``.
    """
    if subset is None:
        position = None
        num_rows = inlet.num_rows
    else:
        position = np.full(inlet.num_rows, -1, dtype=np.int64)
        position[subset] = np.arange(len(subset))
        num_rows = len(subset)

    pieces: list[tuple[torch.Tensor, np.ndarray, np.ndarray, bool]] = []
    for group in inlet.groups:
        src, dst, static = group.src_rows, group.dst_rows, True
        if position is not None:
            keep = position[dst] >= 0
            src, dst, static = src[keep], position[dst[keep]], False
            if len(src) == 0:
                continue
        source = produced[group.producer]
        if source.part_of is None:
            pieces.append((source.parts[0], src, dst, static))
            continue
        part_ids = source.part_of[src]
        for k in np.unique(part_ids):
            take = part_ids == k
            pieces.append((source.parts[k], source.local_row[src[take]], dst[take], False))

    def fit_channels(x: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        if x.shape[2] == channels:
            return x
        if x.shape[2] == 1:
            return x.expand(x.shape[0], x.shape[1], channels, x.shape[3])
        label = inlet.describe_row[int(subset[rows[0]]) if subset is not None else int(rows[0])]
        raise GraphConnectionError(
            f"{label}, inlet {inlet.name!r}: cannot sum a {x.shape[2]}-channel signal with a "
            f"{channels}-channel one (only mono broadcasts to any channel count)"
        )

    if len(pieces) == 1:
        tensor, src, dst, static = pieces[0]
        if len(dst) == num_rows and _is_range(dst, 0, num_rows):
            if _is_range(src, 0, tensor.shape[1]):
                return fit_channels(tensor, dst)
            if _is_range(src, int(src[0]), num_rows):
                return fit_channels(tensor.narrow(1, int(src[0]), num_rows), dst)

    device = pieces[0][0].device
    selected = [
        fit_channels(t if _is_range(src, 0, t.shape[1]) else t.index_select(1, index_cache.get(src, device, static)),
                     dst)
        for t, src, dst, static in pieces
    ]
    stacked = selected[0] if len(selected) == 1 else torch.cat(selected, dim=1)
    destinations = pieces[0][2] if len(pieces) == 1 else np.concatenate([p[2] for p in pieces])
    if inlet.one_edge_each:
        if _is_range(destinations, 0, num_rows):
            return stacked
        order = np.argsort(destinations, kind="stable")
        return stacked.index_select(1, torch.as_tensor(order, device=device))
    summed = stacked.new_zeros(stacked.shape[0], num_rows, channels, stacked.shape[3])
    return summed.index_add_(1, torch.as_tensor(destinations, device=device), stacked)
