"""torch's intra-op thread count for a block of code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (``None``: unchanged), then restore them.

    A render's FFTs and sums can round differently on another thread count
    (2.4e-7 apart between 1 and 2 threads for the fit's console), so a render
    that must be repeated bit for bit names its count.
    """
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
