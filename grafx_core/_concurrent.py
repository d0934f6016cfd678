"""Stages whose processors declare ``concurrent_calls`` run in the background (engine-internal).

A processor with ``concurrent_calls = True`` says that a call may run on
another thread while other stages run (black boxes: their work is C code on
their own thread pool, releasing the GIL). The render engine gathers such a
stage's inputs on the calling thread, hands the call to :func:`submit`, goes on
with the stages that do not depend on it, and waits only where a later stage
reads its outputs. A stage whose one node is a reverb then no longer leaves
the other cores idle while the rest of the graph renders.

Grad mode and inference mode are per thread in torch; the call runs under the
caller's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

from .processor import ProcessorLike
from .description import describe

__all__ = ["runs_concurrently", "submit"]

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def runs_concurrently(processor: ProcessorLike) -> bool:
    """Whether ``processor`` declares ``concurrent_calls = True``."""
    return describe(processor).concurrent_calls


def submit(call: Callable[[], T]) -> Future[T]:
    """Run ``call()`` on the shared stage pool under the caller's grad and inference modes."""
    global _pool
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def run() -> T:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return call()

    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="grafx-stage")
        return _pool.submit(run)
