"""Run per-item work on a persistent thread pool, one effect instance per thread.

A runner renders a black box's items: :meth:`ThreadPoolRunner.run_items` (and
:meth:`grafx_core.blackbox.RayRunner.run_items`, its twin on a Ray cluster)
takes ``(audio, natural)`` items, calls ``processor.process_item`` on each and
hands every output to ``accept``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

__all__ = ["ThreadPoolRunner", "PerThread"]

T = TypeVar("T")

Item = tuple[np.ndarray, Mapping[str, float]]
"""One item: read-only float32 audio ``[channels, samples]`` and its natural control values."""


class ItemProcessor(Protocol):
    """What a runner needs of a processor: a name and a per-item render."""

    name: str

    def process_item(self, audio: np.ndarray, natural: Mapping[str, float]) -> np.ndarray:
        """Render one item."""


def _run_chunk(task: Callable[[int], None], start: int, stop: int) -> None:
    for i in range(start, stop):
        task(i)


class ThreadPoolRunner:
    """Runs ``task(i)`` for ``i in range(count)`` on up to ``workers`` threads.

    Items are split into one contiguous chunk per thread; with one worker (or
    one item) they run in the calling thread, with no pool overhead. The pool
    persists between calls. Effects that release the GIL (pedalboard, most
    scipy filters) scale with cores; cheap ones may be faster on one thread.

    Args:
        workers: threads to use; ``None`` means ``os.cpu_count()`` (capped by
            the number of items in each call).
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be a positive int or None, got {workers!r}")
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        """The most threads a call uses."""
        return self._workers if self._workers is not None else (os.cpu_count() or 1)

    def run(self, task: Callable[[int], None], count: int) -> None:
        """Run ``task(i)`` for every ``i < count``; return when all are done.

        Raises:
            Exception: the first exception by item order among the chunks that failed
                (a chunk stops at its first failure; the others run to the end).
        """
        threads = min(self.workers, count)
        if threads <= 1:
            _run_chunk(task, 0, count)
            return
        pool = self._executor()
        bounds = [count * k // threads for k in range(threads + 1)]
        futures: list[Future[None]] = [
            pool.submit(_run_chunk, task, bounds[k], bounds[k + 1]) for k in range(threads)
        ]
        first: BaseException | None = None
        for future in futures:
            error = future.exception()
            if error is not None and first is None:
                first = error
        if first is not None:
            raise first

    def run_items(self, processor: ItemProcessor, items: Sequence[Item],
                  accept: Callable[[int, tuple[Any, ...]], None], failed: Callable[[int, Exception], Exception],
                  twice: int | None = None) -> None:
        """Render every item with ``processor.process_item`` and hand its output to ``accept(i, (y,))``.

        Args:
            processor: renders one item (in the worker thread).
            items: ``(audio, natural)`` per item.
            accept: takes each item's outputs; it runs in the worker thread.
            failed: turns an effect's exception into the error to raise.
            twice: an item to render twice in a row in one thread (the
                first-use determinism check); ``accept`` gets both outputs.

        Raises:
            Exception: ``failed(i, error)`` for the first item whose effect raised, or
                what ``accept`` raised, whichever comes first by item order.
        """
        def task(i: int) -> None:
            audio, natural = items[i]
            try:
                ys = tuple(processor.process_item(audio, natural) for _ in range(2 if i == twice else 1))
            except Exception as error:
                raise failed(i, error) from error
            accept(i, ys)

        self.run(task, len(items))

    def fresh(self) -> ThreadPoolRunner:
        """A runner with the same settings and no threads started."""
        return ThreadPoolRunner(self._workers)

    def describe(self) -> str:
        """``workers=N``, for a processor's ``repr``."""
        return f"workers={self.workers}"

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="grafx-blackbox")
            return self._pool

    def close(self) -> None:
        """Stop the pool's threads (a later call starts a new pool)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        return {"workers": self._workers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["workers"])  # type: ignore[misc]


class PerThread(Generic[T]):
    """Lazily made instances of ``factory()``, one per thread that asks.

    pedalboard serialises calls on one effect instance, so sharing one across
    threads would run them one after another; one instance per thread runs them
    in parallel.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        if not callable(factory):
            raise TypeError(f"effect factory must be callable, got {factory!r}")
        self.factory = factory
        self._local = threading.local()

    def get(self) -> T:
        """This thread's instance (made on first use)."""
        instance = getattr(self._local, "instance", None)
        if instance is None:
            instance = self.factory()
            self._local.instance = instance
        return instance

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["factory"])  # type: ignore[misc]

