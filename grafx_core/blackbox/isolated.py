"""Render a black box's items in worker processes, so a plug-in that crashes or hangs cannot take the host down.

``BlackBoxProcessor(..., runner="isolated")`` (or ``runner=IsolatedRunner(...)``)
renders every item of every call (forward rows and the backward renders of
an estimator alike) in separate worker processes, each holding its own copy
of the processor (without its estimator,
:meth:`~grafx_core.blackbox.BlackBoxProcessor.for_workers`) and so its own
effect instances. Audio travels through one shared-memory segment per
worker; only the item's index and control values go through a pipe. A
watchdog waits on every worker:

* a worker that dies (a segmentation fault, ``os._exit``, ``abort()``) makes
  the call raise a :class:`~grafx_core.errors.BlackBoxError` naming the
  node, the plug-in, the control values and the signal or exit status;
* an item that runs past ``timeout`` has its worker killed and raises a
  :class:`~grafx_core.errors.BlackBoxTimeoutError` naming the same;

and the host process goes on; the next call starts a fresh worker in place
of the lost one. Outputs are checked and stored in the host exactly as the
thread pool's are, so they are bit-identical to in-process rendering.

Workers are started with ``spawn`` (no fork of a multi-threaded host): the
processor must pickle, and each worker's start costs an interpreter with
torch imported (about a second), paid once per worker and runner. In-process
threads (``runner="threads"``) stay the fast choice for trusted effects.
"""

from __future__ import annotations

import math
import mmap
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from ..errors import BlackBoxTimeoutError, BlackBoxWorkerError
from .runner import Item, ItemProcessor, check_workers_and_timeout

__all__ = ["IsolatedRunner", "DEFAULT_ITEM_TIMEOUT", "EffectCrashed"]

DEFAULT_ITEM_TIMEOUT = 120.0
"""Seconds one item may take in a worker before the watchdog calls it hung (``timeout=None`` waits for ever)."""

_START_TIMEOUT_S = 120.0
_POLL_S = 0.1


class EffectCrashed(Exception):
    """The worker process rendering an item died (what the host's error says the effect did)."""


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"its worker process was killed by signal {-code} ({name})"
    return f"its worker process exited with status {code} (the effect ended the process)"


def _attach(name: str, size: int) -> tuple[Any, Any]:  # pragma: no cover - runs in the worker process
    """Map the host's segment ``name`` without registering it with a resource tracker (the host owns it)."""
    try:
        import _posixshmem
    except ImportError:  # not POSIX: the tracker-free way does not exist, and neither does a tracker
        segment = shared_memory.SharedMemory(name=name)
        return segment.buf, segment
    fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        mapped = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    return memoryview(mapped), mapped


def _serve(conn: Any) -> None:  # pragma: no cover - runs in the worker process
    """A worker's loop: load the processor, then render the items the host sends until told to stop."""
    try:
        path, payload = conn.recv()
        sys.path[:] = path
        processor = pickle.loads(payload)
    except BaseException as error:  # reported, then the worker ends
        conn.send(("failed", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ready", os.getpid()))
    buffer: Any = None
    holder: Any = None
    current = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the host is gone: so is this worker's purpose
            break
        if message is None:
            break
        call, i, name, size, in_shape, out_shape, natural, twice = message
        if current != name:
            buffer = None
            if holder is not None:
                holder.close()
            buffer, holder = _attach(name, size)
            current = name
        in_bytes = math.prod(in_shape) * 4
        audio = np.ndarray(in_shape, np.float32, buffer=buffer)
        audio.flags.writeable = False
        try:
            ys = [processor.process_item(audio, natural) for _ in range(2 if twice else 1)]
        except (Exception, SystemExit) as error:  # an effect calling sys.exit() is an error of that item
            conn.send((call, i, "raised", type(error).__name__, str(error)))
            continue
        outs: list[Any] = []
        for k, y in enumerate(ys):
            y = np.asarray(y)
            if y.dtype == np.float32 and y.shape == tuple(out_shape):
                offset = in_bytes + k * math.prod(out_shape) * 4
                np.ndarray(out_shape, np.float32, buffer=buffer, offset=offset)[...] = y
                outs.append(None)
            else:
                outs.append(y)  # a wrong shape or dtype goes through the pipe, for the host's own message
        del audio
        conn.send((call, i, "ok", outs))


def _child_main(read_fd: int, write_fd: int) -> None:  # pragma: no cover - runs in the worker process
    """Entry point of ``python -c``: the pipes to the host are two inherited file descriptors."""
    from multiprocessing.connection import Connection

    class _Pipe:
        def __init__(self) -> None:
            self.reader, self.writer = Connection(read_fd, writable=False), Connection(write_fd, readable=False)

        def recv(self) -> Any:
            return self.reader.recv()

        def send(self, obj: Any) -> None:
            self.writer.send(obj)

    _serve(_Pipe())


class _Worker:
    """One worker process, its pipes and its shared-memory segment.

    A plain ``python -c`` child rather than a ``multiprocessing`` one: spawn would run the host's
    ``__main__`` again in the worker (a script without an ``if __name__ == "__main__"`` guard would
    start over), and fork would copy a multi-threaded host, locks held included.
    """

    def __init__(self, payload: bytes, name: str) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = f"from grafx_core.blackbox.isolated import _child_main; _child_main({to_child_r}, {from_child_w})"
        try:
            self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w),
                                            stdin=subprocess.DEVNULL)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.writer, self.conn = Connection(to_child_w, readable=False), Connection(from_child_r, writable=False)
        self.writer.send((list(sys.path), payload))
        self.segment: shared_memory.SharedMemory | None = None
        self.ready = False
        self.item: int | None = None
        self.deadline = math.inf
        self.out_shape: tuple[int, int] = (0, 0)

    def alive(self) -> bool:
        return self.process.poll() is None

    def exitcode(self) -> int | None:
        return self.process.poll()

    def wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.conn.poll(_POLL_S):
            if not self.alive() or time.monotonic() > deadline:
                self.kill()
                raise BlackBoxWorkerError(f"black box {name!r}: an isolated worker process did not start "
                                          f"({_exit_reason(self.exitcode())})")
        try:
            message = self.conn.recv()
        except EOFError:
            message = ("failed", _exit_reason(self.process.wait(5)))
        if message[0] != "ready":
            self.kill()
            raise BlackBoxWorkerError(f"black box {name!r}: an isolated worker process could not load the "
                                      f"processor: {message[1]}")
        self.ready = True

    def segment_for(self, size: int) -> shared_memory.SharedMemory:
        if self.segment is None or self.segment.size < size:
            self._drop_segment()
            self.segment = shared_memory.SharedMemory(create=True, size=max(size, 1))
        return self.segment

    def _drop_segment(self) -> None:
        if self.segment is not None:
            self.segment.close()
            self.segment.unlink()
            self.segment = None

    def send(self, message: Any) -> None:
        self.writer.send(message)

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(5)
        self.writer.close()
        self.conn.close()
        self._drop_segment()

    def stop(self) -> None:
        try:
            self.writer.send(None)
            self.process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class IsolatedRunner:
    """Renders items in worker processes guarded by a watchdog (see the module documentation).

    Args:
        workers: worker processes; ``None`` means ``os.cpu_count()`` (capped
            by the number of items in each call).
        timeout: seconds one item may take before its worker is killed and the
            call raises :class:`~grafx_core.errors.BlackBoxTimeoutError`
            (default :data:`DEFAULT_ITEM_TIMEOUT`; ``None`` waits for ever).

    Raises:
        ValueError: ``workers`` is not a positive int or ``timeout`` not a
            positive number of seconds.
    """

    def __init__(self, workers: int | None = None, timeout: float | None = DEFAULT_ITEM_TIMEOUT) -> None:
        check_workers_and_timeout(workers, timeout)
        self._workers = workers
        self.timeout = timeout
        self._pool: list[_Worker] = []
        self._owner: Any = None
        self._payload = b""
        self._call = 0
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        """The most worker processes a call uses."""
        return self._workers if self._workers is not None else (os.cpu_count() or 1)

    def run_items(self, processor: ItemProcessor, items: Sequence[Item],
                  accept: Callable[[int, tuple[Any, ...]], None], failed: Callable[[int, BaseException], Exception],
                  twice: int | None = None) -> None:
        """Render every item in a worker process and hand its output to ``accept(i, (y,))`` (in this process).

        Args:
            processor: renders one item (pickled to the workers once).
            items: ``(audio, natural)`` per item.
            accept: takes each item's outputs.
            failed: turns an effect's exception (or :class:`EffectCrashed`) into the error to raise.
            twice: an item to render twice in a row in one worker (the first-use determinism check).

        Raises:
            BlackBoxTimeoutError: an item ran longer than ``timeout`` (its worker was killed).
            BlackBoxWorkerError: the processor cannot be pickled, or a worker could not start.
            Exception: ``failed(i, error)`` for the first item (by item order) whose effect raised or whose
                worker died, or what ``accept`` raised.
        """
        if not items:
            return
        with self._lock:  # one call at a time per runner: its workers serve one call
            self._run(processor, items, accept, failed, twice)

    def _run(self, processor: ItemProcessor, items: Sequence[Item], accept: Callable[[int, tuple[Any, ...]], None],
             failed: Callable[[int, BaseException], Exception], twice: int | None) -> None:
        pool = self._workers_for(processor, min(self.workers, len(items)))
        self._call += 1
        pending, idle = deque(range(len(items))), list(pool)
        errors: dict[int, BaseException] = {}
        busy: list[_Worker] = []
        try:
            while pending or busy:
                while pending and idle and not errors:
                    worker = idle.pop()
                    self._send(worker, pending.popleft(), items, processor, twice)
                    busy.append(worker)
                if not busy:
                    break
                wait([w.conn for w in busy], timeout=_POLL_S)
                for worker in list(busy):
                    if self._collect(worker, items, accept, failed, errors):
                        busy.remove(worker)
                        if worker.alive() and worker in self._pool:
                            idle.append(worker)
        except BaseException:  # Ctrl-C: items still running are abandoned with their workers
            for worker in busy:
                self._discard(worker)
            raise
        if errors:
            raise errors[min(errors)]

    def _send(self, worker: _Worker, i: int, items: Sequence[Item], processor: ItemProcessor,
              twice: int | None) -> None:
        audio, natural = items[i]
        out_shape = (getattr(processor, "output_channels", None) or audio.shape[0], audio.shape[-1])
        in_bytes, out_bytes = audio.nbytes, math.prod(out_shape) * 4
        segment = worker.segment_for(in_bytes + 2 * out_bytes)
        np.ndarray(audio.shape, np.float32, buffer=segment.buf)[...] = audio
        worker.item, worker.out_shape = i, out_shape
        worker.deadline = time.monotonic() + self.timeout if self.timeout is not None else math.inf
        worker.send((self._call, i, segment.name, segment.size, tuple(audio.shape), out_shape, dict(natural),
                     i == twice))

    def _collect(self, worker: _Worker, items: Sequence[Item], accept: Callable[[int, tuple[Any, ...]], None],
                 failed: Callable[[int, BaseException], Exception], errors: dict[int, BaseException]) -> bool:
        """Handle what ``worker`` did since the last look; whether its item is finished (or lost)."""
        i = worker.item
        assert i is not None
        message, ended = None, False
        try:
            while worker.conn.poll():
                candidate = worker.conn.recv()
                if candidate[0] == self._call and candidate[1] == i:
                    message = candidate
                    break
        except (EOFError, OSError):
            ended = True
        if message is None:
            if ended or not worker.alive():
                try:
                    code = worker.process.wait(5)
                except subprocess.TimeoutExpired:
                    code = None
                self._discard(worker)
                errors[i] = failed(i, EffectCrashed(f"{_exit_reason(code)}; the host process goes on"))
                return True
            if time.monotonic() > worker.deadline:
                self._discard(worker)
                errors[i] = BlackBoxTimeoutError(f"item {i} did not return within the timeout of "
                                                 f"{self.timeout:g} s (its worker process was killed)", item=i)
                return True
            return False
        worker.item = None
        if message[2] == "raised":
            errors[i] = failed(i, _raised(message[3], message[4]))
            return True
        try:
            accept(i, self._outputs(worker, items[i][0], message[3]))
        except Exception as error:
            errors[i] = error
        return True

    def _outputs(self, worker: _Worker, audio: np.ndarray, outs: list[Any]) -> tuple[Any, ...]:
        assert worker.segment is not None
        shape = worker.out_shape
        size = math.prod(shape) * 4
        return tuple(np.ndarray(shape, np.float32, buffer=worker.segment.buf, offset=audio.nbytes + k * size).copy()
                     if out is None else out for k, out in enumerate(outs))

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._pool:
            self._pool.remove(worker)

    def _workers_for(self, processor: ItemProcessor, count: int) -> list[_Worker]:
        if self._owner is not processor:
            self.close()
            for_workers = getattr(processor, "for_workers", None)
            shipped = for_workers() if callable(for_workers) else processor
            try:
                self._payload = pickle.dumps(shipped)
            except Exception as error:
                raise BlackBoxWorkerError(
                    f"black box {processor.name!r} cannot render in isolated worker processes: it cannot be "
                    f"pickled ({type(error).__name__}: {error}); define its function or factory at module level, "
                    "or use runner='threads'") from None
            self._owner = processor
        while len(self._pool) < count:
            self._pool.append(_Worker(self._payload, processor.name))
        for worker in self._pool[:count]:
            if not worker.ready:
                try:
                    worker.wait_ready(processor.name)
                except BlackBoxWorkerError:
                    self._pool.remove(worker)
                    raise
        return self._pool[:count]

    def fresh(self) -> IsolatedRunner:
        """A runner with the same settings and no workers started."""
        return IsolatedRunner(self._workers, self.timeout)

    def describe(self) -> str:
        """``isolated workers=N``, for a processor's ``repr``."""
        return f"isolated workers={self.workers}"

    def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        pool, self._pool = self._pool, []
        for worker in pool:
            worker.stop()
        self._owner = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the daemon workers end with the host anyway
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"workers": self._workers, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["workers"], state.get("timeout"))  # type: ignore[misc]


def _raised(kind: str, message: str) -> Exception:
    """The exception an effect raised in a worker, rebuilt in the host under its class's name."""
    return type(kind, (Exception,), {})(message)
