"""Run per-item work on a persistent pool of daemon threads, one effect instance per thread.

A runner renders a black box's items: :meth:`ThreadPoolRunner.run_items` (and
:meth:`grafx_core.blackbox.RayRunner.run_items`, its twin on a Ray cluster)
takes ``(audio, natural)`` items, calls ``processor.process_item`` on each and
hands every output to ``accept``.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ..errors import BlackBoxTimeoutError

__all__ = ["ThreadPoolRunner", "PerThread", "check_workers_and_timeout"]


def check_workers_and_timeout(workers: int | None, timeout: float | None) -> None:
    """Refuse a runner's ``workers`` (a positive int or ``None``) or ``timeout`` (positive, finite seconds or ``None``).

    Raises:
        ValueError: naming the argument and the value given.
    """
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or not 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive finite number of seconds or None, got {timeout!r}")

T = TypeVar("T")

Item = tuple[np.ndarray, Mapping[str, float]]
"""One item: read-only float32 audio ``[channels, samples]`` and its natural control values."""


class ItemProcessor(Protocol):
    """What a runner needs of a processor: a name and a per-item render."""

    name: str

    def process_item(self, audio: np.ndarray, natural: Mapping[str, float]) -> np.ndarray:
        """Render one item."""


_POLL_S = 0.1
"""How often a waiting call looks at the clock and lets Ctrl-C in; a call that
finishes returns at once, whatever this is."""


class _Pool:
    """Daemon worker threads fed from one queue.

    Not a ``ThreadPoolExecutor``: the interpreter joins an executor's threads
    at exit, so one effect that never returns kept a Ctrl-C'd process alive
    forever. Daemon threads are left behind instead.
    """

    def __init__(self, threads: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], None], Future[None]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"grafx-blackbox-{k}", daemon=True)
                         for k in range(threads)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            function, future = job
            if future.set_running_or_notify_cancel():
                try:
                    function()
                    future.set_result(None)
                except BaseException as error:  # handed to the caller, SystemExit from an effect included
                    future.set_exception(error)

    def submit(self, function: Callable[[], None]) -> Future[None]:
        future: Future[None] = Future()
        self._queue.put((function, future))
        return future

    def stop(self, wait_for_threads: bool) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait_for_threads:
            for thread in self._threads:
                thread.join()


class ThreadPoolRunner:
    """Runs ``task(i)`` for ``i in range(count)`` on up to ``workers`` threads.

    Items are split into one contiguous chunk per thread; with one worker (or
    one item) and no ``timeout`` they run in the calling thread, with no pool
    overhead. The pool persists between calls. Effects that release the GIL
    (pedalboard, most scipy filters) scale with cores; cheap ones may be
    faster on one thread.

    The pool's threads are daemons: Ctrl-C ends a waiting call at once (the
    chunks stop before their next item) and the process can exit while an
    effect is still stuck inside a call.

    Args:
        workers: threads to use; ``None`` means ``os.cpu_count()`` (capped by
            the number of items in each call).
        timeout: seconds one item may take; ``None`` waits for ever.

    Raises:
        ValueError: ``workers`` is not a positive int or ``timeout`` not a
            positive number of seconds.
    """

    def __init__(self, workers: int | None = None, timeout: float | None = None) -> None:
        check_workers_and_timeout(workers, timeout)
        self._workers = workers
        self.timeout = timeout
        self._pool: _Pool | None = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        """The most threads a call uses."""
        return self._workers if self._workers is not None else (os.cpu_count() or 1)

    def run(self, task: Callable[[int], None], count: int) -> None:
        """Run ``task(i)`` for every ``i < count``; return when all are done.

        Raises:
            BlackBoxTimeoutError: an item ran longer than ``timeout`` (its
                ``item`` attribute says which); its thread is abandoned and
                the next call starts fresh threads.
            BaseException: otherwise the first exception by item order among
                the chunks that failed (a chunk stops at its first failure;
                the others run to the end).
        """
        threads = min(self.workers, count)
        if threads <= 0:
            return
        if threads == 1 and self.timeout is None:
            for i in range(count):
                task(i)
            return
        pool = self._executor()
        bounds = [count * k // threads for k in range(threads + 1)]
        started: list[tuple[int, float] | None] = [None] * threads
        stop = threading.Event()

        def chunk(k: int) -> None:
            try:
                for i in range(bounds[k], bounds[k + 1]):
                    if stop.is_set():
                        return
                    started[k] = (i, time.monotonic())
                    task(i)
            finally:
                started[k] = None

        futures = [pool.submit(lambda k=k: chunk(k)) for k in range(threads)]
        try:
            self._wait(futures, started, pool)
        except BaseException:
            stop.set()  # Ctrl-C or a timeout: the other chunks end after their current item
            raise
        first: BaseException | None = None
        for future in futures:
            error = future.exception()
            if error is not None and first is None:
                first = error
        if first is not None:
            raise first

    def run_items(self, processor: ItemProcessor, items: Sequence[Item],
                  accept: Callable[[int, tuple[Any, ...]], None], failed: Callable[[int, BaseException], Exception],
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
            BlackBoxTimeoutError: an item ran longer than ``timeout`` (see :meth:`run`).
            Exception: ``failed(i, error)`` for the first item whose effect raised, or
                what ``accept`` raised, whichever comes first by item order.
        """
        def task(i: int) -> None:
            audio, natural = items[i]
            try:
                ys = tuple(processor.process_item(audio, natural) for _ in range(2 if i == twice else 1))
            except (Exception, SystemExit) as error:  # an effect calling sys.exit() must not end the host
                raise failed(i, error) from error
            accept(i, ys)

        self.run(task, len(items))

    def fresh(self) -> ThreadPoolRunner:
        """A runner with the same settings and no threads started."""
        return ThreadPoolRunner(self._workers, self.timeout)

    def describe(self) -> str:
        """``workers=N``, for a processor's ``repr``."""
        return f"workers={self.workers}"

    def _wait(self, futures: list[Future[None]], started: list[tuple[int, float] | None], pool: _Pool) -> None:
        pending = set(futures)
        while pending:
            # FIRST_EXCEPTION: a failed chunk still lets the others finish, but is seen early.
            _, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_EXCEPTION)
            if self.timeout is None:
                continue
            now = time.monotonic()
            for current in list(started):
                if current is not None and now - current[1] > self.timeout:
                    self._abandon(pool)
                    raise BlackBoxTimeoutError(
                        f"item {current[0]} did not return within the timeout of {self.timeout:g} s",
                        item=current[0])

    def _executor(self) -> _Pool:
        with self._lock:
            if self._pool is None:
                self._pool = _Pool(self.workers)
            return self._pool

    def _abandon(self, pool: _Pool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.stop(wait_for_threads=False)

    def close(self) -> None:
        """Stop the pool's threads (a later call starts a new pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop(wait_for_threads=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"workers": self._workers, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["workers"], state.get("timeout"))  # type: ignore[misc]


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
