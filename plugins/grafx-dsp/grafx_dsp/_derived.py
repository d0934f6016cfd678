"""Values derived from parameter tensors alone, kept from one block of a stream to the next.

A stream hands every block the same parameter tensors (``grafx_core.stream``
keeps a stage call's parameters outside autograd, and :meth:`DSPProcessor.limit`
returns the same limited tensor for them), so what a processor derives from its
parameters alone (per-node reshapes, ballistics coefficients, a knee's width) is
the same every block. On blocks of a few thousand samples, the dozens of tiny
tensor operations that derive them cost as much as the processor's work on the
signal. :func:`derived` keeps such a value for the very same input tensors,
unchanged since (their version counters), outside autograd, the rule of the
limit memo (:class:`grafx_dsp._base._LimitMemo`).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch

__all__ = ["derived"]

T = TypeVar("T")

SIZE = 512
"""Entries kept; the oldest goes first (a console holds a few per stage call)."""

LARGEST = 4096
"""Inputs with more elements (a signal, not a parameter) are never memoised."""

_MEMO: OrderedDict[Hashable, tuple[tuple[Any, ...], tuple[int, ...], Any]] = OrderedDict()


def _version(value: torch.Tensor) -> int | None:
    if value.numel() > LARGEST or (value.requires_grad and torch.is_grad_enabled()):
        return None  # a signal, or a value autograd must see
    try:
        return int(value._version)
    except RuntimeError:  # an inference tensor keeps no version counter
        return None


def derived(tag: str, compute: Callable[..., T], *values: Any, key: Hashable = None) -> T:
    """``compute(*values)``, reused while ``values`` are the same tensors, unchanged.

    Args:
        tag: what is derived (unique per call site).
        compute: a pure function of ``values`` (and of ``key``'s contents).
        values: tensors (compared by identity and version) or hashable
            constants (compared by value).
        key: anything else the result depends on (a dtype, a device, a length).

    Returns:
        ``compute(*values)``, computed now unless a kept value fits. Nothing is
        kept when an input is a large tensor, when autograd records
        the inputs, or when the result requires gradient.
    """
    tensors = tuple(v for v in values if isinstance(v, torch.Tensor))
    versions = tuple(_version(t) for t in tensors)
    if any(v is None for v in versions):
        return compute(*values)
    memo_key = (tag, key, tuple(("tensor", id(v)) if isinstance(v, torch.Tensor) else v for v in values))
    entry = _MEMO.get(memo_key)
    if entry is not None and entry[1] == versions and all(ref() is t for ref, t in zip(entry[0], tensors)):
        return entry[2]  # type: ignore[no-any-return]
    result = compute(*values)
    if any(isinstance(r, torch.Tensor) and r.requires_grad for r in _flat(result)):
        return result
    # An entry goes with the first of its tensors to be freed (a curve's slice for one block, say).
    refs = tuple(weakref.ref(t, lambda _, k=memo_key, memo=_MEMO: memo.pop(k, None))  # type: ignore[misc]
                 for t in tensors)
    _MEMO[memo_key] = (refs, versions, result)  # type: ignore[assignment]
    while len(_MEMO) > SIZE:
        _MEMO.popitem(last=False)
    return result


def _flat(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)
