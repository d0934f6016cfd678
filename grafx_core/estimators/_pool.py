"""Backward renders pooled across processor calls: one backward pass starts them all at once.

Autograd runs the backward functions of a graph one after another, so the
extra renders of eight black-box calls (finite differences, tangent
stand-ins) would run in sequence, each on its own runner. The renders a call
needs in the backward pass depend only on what its forward pass saw, never on
the incoming gradient, so the first estimated backward to run starts the
renders of every pending call whose target allows it (a black box: its work
runs on its own runner, threads or Ray), :data:`DISPATCH_THREADS` calls at a
time, and each backward then waits only for its own. The stand-ins that the
renders feed are fitted on the same threads (``GradientRule.prepare``), so
autograd's serial backward keeps only the products with the incoming gradient. The gradients are the same as without
pooling: every call's rules draw from their own generators.

Pooling is on by default; :func:`backward_pooling` turns it off for a block
(to compare, or where renders must not overlap).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["backward_pooling", "pooling_enabled", "PendingRenders", "register", "DISPATCH_THREADS"]

DISPATCH_THREADS = max(2, os.cpu_count() or 1)
"""Calls whose backward renders run at once: each on its own runner, whose workers share the machine's cores.

One per core: measured on 2 cores with 1 s tracks, all eight calls of a backward at once (32 threads)
ran 0.91x as fast as one call after another; their workers fought for the cores and the caches."""

_enabled = True
_lock = threading.RLock()  # a freed call's weakref callback may run while the lock is held
_pending: dict[int, weakref.ref[PendingRenders]] = {}
_executor: ThreadPoolExecutor | None = None


@contextlib.contextmanager
def backward_pooling(enabled: bool) -> Iterator[None]:
    """Pool (or not) the backward renders of the calls made inside the block, then restore the setting.

    Pooling is on by default: the first estimated backward of a backward pass
    starts the extra renders of every black-box call still waiting for its
    backward, each on its own runner (threads or Ray) at once, and each call's
    backward then waits only for its own; the gradients are the same either way.

    Args:
        enabled: whether calls made in the block join the pool; a call's
            backward follows the setting of its forward.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def pooling_enabled() -> bool:
    """Whether calls made now join the backward pool."""
    return _enabled


class PendingRenders:
    """The backward renders of one call, planned and started when the first pooled backward runs.

    Args:
        plan: makes the call's render jobs (its rules' ``jobs``) and returns a
            function that renders them; called once, in the thread that starts the pool.
    """

    def __init__(self, plan: Callable[[], Callable[[], Any]]) -> None:
        self._plan = plan
        self._future: Future[Any] | None = None
        self._started = threading.Lock()

    def start(self, executor: ThreadPoolExecutor) -> None:
        """Plan the jobs and submit their render (once; later calls do nothing)."""
        with self._started:
            if self._future is not None:
                return
            render = self._plan()
            grad = torch.is_grad_enabled()

            def run() -> Any:
                with torch.set_grad_enabled(grad):
                    return render()

            self._future = executor.submit(run)

    def result(self) -> Any:
        """Start every pending call's renders (if not yet), then wait for this call's."""
        if self._future is None:
            start_all()
            self.start(_dispatcher())
        assert self._future is not None
        future, self._future = self._future, None
        _forget(self)
        return future.result()


def _dispatcher() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(DISPATCH_THREADS, thread_name_prefix="grafx-backward")
        return _executor


def _forget(entry: PendingRenders) -> None:
    with _lock:
        _pending.pop(id(entry), None)


def register(entry: PendingRenders) -> None:
    """Add a call's pending renders to the pool (dropped when the call's graph is freed)."""
    key = id(entry)
    with _lock:
        _pending[key] = weakref.ref(entry, lambda _, key=key: _pending.pop(key, None))


def start_all() -> None:
    """Start the renders of every pending call still alive, in the order they were registered."""
    with _lock:
        entries = [ref() for ref in _pending.values()]
        _pending.clear()
    executor = _dispatcher()
    for entry in entries:
        if entry is not None:
            entry.start(executor)
