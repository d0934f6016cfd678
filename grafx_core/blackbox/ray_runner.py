"""Run a black box's items on Ray actors, across the cores of a cluster.

``BlackBoxProcessor(..., runner="ray")`` (or ``runner=RayRunner(address=...)``)
sends every call's items (the forward rows and the perturbed rows of a
finite-difference or SPSA backward alike) to a pool of Ray actors. Each actor
is one worker process holding its own copy of the processor, so each has its
own effect instances, made as the processor's lifecycle says; the processor
(without its estimator: :meth:`~grafx_core.blackbox.BlackBoxProcessor.for_workers`)
is pickled and put in the object store once, and each actor loads it at its
first item. Audio rows travel through Ray's object store; every actor renders a
contiguous chunk of items with ``processor.process_item`` and the results are
checked and stored in the caller's process exactly as the thread pool's are,
so the outputs are bit-identical to those of
:class:`~grafx_core.blackbox.ThreadPoolRunner`.

``ray`` is imported at the first call, not with this module; without it that
call raises :class:`~grafx_core.errors.OptionalDependencyError` naming the
``ray`` extra. One pool of actors serves every Ray-run black box of a process
(one per rank under DDP); it grows to the largest ``workers`` asked for and is
rebuilt when Ray is restarted.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._optional import require
from ..errors import BlackBoxError, BlackBoxTimeoutError, BlackBoxWorkerError
from .runner import Item, ItemProcessor

__all__ = ["RayRunner", "local_ray_cluster"]

_STARTUP_TIMEOUT_S = 120.0


def _ray() -> Any:
    return require("ray", "ray", "runner='ray' (black boxes on a Ray cluster)")


@contextmanager
def local_ray_cluster(num_cpus: int = 2) -> Iterator[Any]:
    """Ray for the ``with`` block: the Ray already initialised in this process, else a new local cluster.

    For tests and benchmarks of processors on ``runner="ray"``: a cluster this
    block started (``num_cpus`` CPUs, no dashboard, worker logs kept out of the
    caller's output) is shut down at its end; one that was running is left
    running. Yields the ``ray`` module.

    Raises:
        OptionalDependencyError: ``ray`` is not installed (``pip install grafx-core[ray]``).
    """
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class _Worker:
    """The body of one Ray actor: processors by token, each loaded at its first chunk."""

    def __init__(self) -> None:
        self._processors: dict[str, Any] = {}

    def where(self) -> tuple[str, str, int]:
        ray = _ray()
        return ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id(), os.getpid()

    def run(self, token: str, shipped: list[Any], rows: list[np.ndarray], which: list[int],
            naturals: list[dict[str, float]], twice: int | None) -> list[Any]:
        processor = self._processors.get(token)
        if processor is None:
            # The processor's reference arrives inside a list so that Ray does not
            # deserialise it for every chunk; it is fetched here once per actor.
            processor = self._processors[token] = _ray().get(shipped[0])
        results: list[Any] = []
        for k, (row, natural) in enumerate(zip(which, naturals)):
            try:
                renders = 2 if k == twice else 1
                results.append((True, tuple(np.asarray(processor.process_item(rows[row], natural))
                                            for _ in range(renders))))
            except (Exception, SystemExit) as error:  # reported per item, as the thread pool does; the actor lives on
                results.append((False, _portable(error)))
                break
        return results

    def forget(self, token: str) -> None:
        self._processors.pop(token, None)


def _portable(error: BaseException) -> Any:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return (type(error).__name__, str(error))


def _restore(payload: Any) -> BaseException:
    if isinstance(payload, BaseException):
        return payload
    name, message = payload
    return type(name, (Exception,), {})(message)


class _Pool:
    """The actors of one Ray session in this process, created on demand."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._actor_class = ray.remote(max_restarts=0, scheduling_strategy="SPREAD")(_Worker)
        self._actors: list[Any] = []
        self._where: list[Any] = []
        self._lock = threading.Lock()
        # The default pool size, read once: later nodes of an autoscaling cluster are not counted.
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def actors(self, count: int, name: str) -> list[Any]:
        with self._lock:
            fresh = []
            while len(self._actors) < count:
                actor = self._actor_class.remote()
                self._actors.append(actor)
                self._where.append(actor.where.remote())
                fresh.append(len(self._actors) - 1)
            if fresh:
                self._await_start([self._where[k] for k in fresh], name)
            return self._actors[:count]

    def _await_start(self, refs: list[Any], name: str) -> None:
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=_STARTUP_TIMEOUT_S)
        if len(ready) < len(refs):
            raise BlackBoxWorkerError(
                f"black box {name!r}: {len(refs) - len(ready)} of {len(refs)} Ray workers did not start within "
                f"{_STARTUP_TIMEOUT_S:g} s; cluster resources {self._ray.available_resources()}"
            )

    def where(self, actor: Any) -> str:
        k = self._actors.index(actor) if actor in self._actors else -1
        if k < 0:
            return "an unknown node"
        try:
            ip, node, pid = self._ray.get(self._where[k], timeout=5)
        except Exception:
            return "an unknown node"
        return f"node {ip} (id {node[:8]}, pid {pid})"

    def replace(self, actor: Any) -> Any:
        """A new actor in the dead one's place (it loads processors again as it needs them)."""
        with self._lock:
            if actor not in self._actors:
                return actor
            k = self._actors.index(actor)
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone with its node
                pass
            new = self._actor_class.remote()
            self._actors[k] = new
            self._where[k] = new.where.remote()
            return new

    def forget(self, token: str) -> None:
        for actor in self._actors:
            actor.forget.remote(token)


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(ray: Any) -> _Pool:
    session = ray.get_runtime_context().get_job_id()
    with _POOLS_LOCK:
        pool = _POOLS.get(session)
        if pool is None:
            _POOLS.clear()  # pools of an earlier Ray session hold dead handles
            pool = _POOLS[session] = _Pool(ray)
        return pool


_CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a cluster address to accept a TCP connection before ``ray.init`` is tried."""


def _split_address(address: Any) -> tuple[str, int] | None:
    """``(host, port)`` of a cluster address, ``None`` for ``"auto"`` and ``"local"``.

    Raises:
        ValueError: ``address`` is not ``"auto"``, ``"local"``, ``host:port`` or ``ray://host:port``.
    """
    if address in ("auto", "local"):
        return None
    text = address[len("ray://"):] if isinstance(address, str) and address.startswith("ray://") else address
    host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host or " " in host:
        raise ValueError(f"Ray address {address!r} is not 'auto', 'local', 'host:port' or 'ray://host:port'")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, what: str) -> None:
    """Fail at once, naming the address, when nothing accepts connections there (ray.init would wait minutes)."""
    try:
        where = _split_address(address)
    except ValueError as error:
        raise BlackBoxWorkerError(f"{what}: {error}") from None
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise BlackBoxWorkerError(f"{what} {address!r}: no Ray cluster answers there ({error.strerror or error}, "
                                  f"within {_CONNECT_TIMEOUT_S:g} s); start one with `ray start --head`, or "
                                  "leave the address unset for a local cluster") from None


class RayRunner:
    """Runs a black box's items on Ray actors, one effect per actor and processor.

    The first call connects to Ray: an already initialised Ray is used as is;
    otherwise ``ray.init(address)`` joins the cluster at ``address`` (or the one
    the ``RAY_ADDRESS`` environment variable names), and with neither a local
    cluster of ``os.cpu_count()`` CPUs is started (``RAY_ADDRESS=auto`` joins
    one that ``ray start`` started on this machine). Every node needs grafx-core
    (and the plugin providing the effect) installed.

    The processor is shipped once, at its first call; change it afterwards and
    the workers keep the old copy (make a new processor instead).

    Args:
        workers: actors to spread each call's items over (default: the
            cluster's CPUs at the first call).
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``).
        retries: how often the items of a worker that died (its process killed,
            its node lost) are sent again to a fresh worker before the call fails.
        timeout: seconds one item may take: a worker's chunk of n items fails
            the call after n times this, and the worker is replaced (default:
            no limit; Ray itself reports dead workers and nodes).

    Raises:
        ValueError: a bad ``workers``, ``retries``, ``timeout`` or ``address`` (not ``"auto"``,
            ``"local"``, ``host:port`` or ``ray://host:port``).
    """

    def __init__(self, workers: int | None = None, *, address: str | None = None, retries: int = 1,
                 timeout: float | None = None) -> None:
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be a positive int or None, got {workers!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                    or not 0 < timeout < math.inf):
            raise ValueError(f"timeout must be a positive finite number of seconds or None, got {timeout!r}")
        if address is not None:
            _split_address(address)
        self._workers, self.address, self.retries, self.timeout = workers, address, retries, timeout
        self._shipped: weakref.WeakKeyDictionary[Any, tuple[str, str, list[Any]]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @property
    def workers(self) -> int | None:
        """The actors a call uses, or ``None`` for as many as the cluster has CPUs."""
        return self._workers

    def describe(self) -> str:
        """``runner='ray', workers=...``, for a processor's ``repr``."""
        return f"runner='ray', workers={self._workers if self._workers is not None else 'cluster CPUs'}"

    def fresh(self) -> RayRunner:
        """A runner with the same settings that has shipped nothing yet."""
        return RayRunner(self._workers, address=self.address, retries=self.retries, timeout=self.timeout)

    def connect(self) -> Any:
        """Connect to (or start) Ray if needed and return the ``ray`` module.

        Raises:
            OptionalDependencyError: ``ray`` is not installed (``pip install grafx-core[ray]``).
            BlackBoxWorkerError: the address (``address`` or ``RAY_ADDRESS``) is malformed, or nothing
                accepts connections there within a few seconds.
        """
        address = self.address or os.environ.get("RAY_ADDRESS")
        ray = _ray()
        with self._lock:
            if not ray.is_initialized():
                if address:
                    _check_reachable(address, "RayRunner address" if self.address else "RAY_ADDRESS")
                    ray.init(address=address)
                else:
                    # "local": a new instance, even where a stale ray_current_cluster file names a
                    # cluster that is gone (ray.init() would try to join it and refuse num_cpus).
                    ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False)
        return ray

    def run_items(self, processor: ItemProcessor, items: Sequence[Item],
                  accept: Callable[[int, tuple[Any, ...]], None], failed: Callable[[int, BaseException], Exception],
                  twice: int | None = None) -> None:
        """Render every item on the Ray workers and hand its outputs to ``accept(i, (y,))`` here.

        Args:
            processor: shipped to the workers once; each calls its ``process_item``.
            items: ``(audio, natural)`` per item.
            accept: takes each item's outputs, in item order, in the calling thread.
            failed: turns an effect's exception into the error to raise.
            twice: an item to render twice in a row on one worker (the first-use
                determinism check); ``accept`` gets both outputs.

        Raises:
            Exception: ``failed(i, error)`` for the first item whose effect raised, or
                what ``accept`` raised, whichever comes first by item order.
            BlackBoxWorkerError: a worker died more than ``retries`` times (its
                process or node lost); the message names the processor, the node
                and the items.
            BlackBoxTimeoutError: a worker's chunk took longer than ``timeout``
                per item (the message names the processor, the node and the items).
            BlackBoxError: a worker could not load the processor (for instance
                grafx-core or the plugin is not installed on its node).
        """
        if not items:
            return
        ray = self.connect()
        pool = _pool(ray)
        count = len(items)
        actors = pool.actors(min(self._workers or pool.cpus, count), processor.name)
        token, shipped = self._ship(ray, processor)
        naturals = [dict(natural) for _, natural in items]
        bounds = [count * k // len(actors) for k in range(len(actors) + 1)]
        chunks = [range(bounds[k], bounds[k + 1]) for k in range(len(actors))]
        audio = [self._put_rows(ray, items, chunk) for chunk in chunks]
        results = self._gather(ray, pool, processor, actors, chunks, token, shipped, audio, naturals, twice)
        for chunk, result in zip(chunks, results):
            if isinstance(result, Exception):
                raise result
            for i, (ok, payload) in zip(chunk, result):
                if not ok:
                    error = _restore(payload)
                    raise failed(i, error) from error
                accept(i, payload)

    @staticmethod
    def _put_rows(ray: Any, items: Sequence[Item], chunk: range) -> tuple[Any, list[int]]:
        """One object-store entry with a chunk's distinct audio rows, and each item's row in it.

        Rows repeated across perturbations (finite differences) travel once; one
        entry per chunk costs one put, where one per row cost ~1 ms each.
        """
        rows: list[np.ndarray] = []
        seen: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
        which = []
        for i in chunk:
            audio = items[i][0]
            key = (audio.__array_interface__["data"][0], audio.shape, audio.strides)
            if key not in seen:
                seen[key] = len(rows)
                rows.append(audio)
            which.append(seen[key])
        return ray.put(rows), which

    def _ship(self, ray: Any, processor: ItemProcessor) -> tuple[str, list[Any]]:
        session = ray.get_runtime_context().get_job_id()
        with self._lock:
            entry = self._shipped.get(processor)
            if entry is None or entry[0] != session:
                shipped = processor.for_workers() if callable(getattr(processor, "for_workers", None)) else processor
                try:
                    entry = (session, uuid.uuid4().hex, [ray.put(shipped)])
                except Exception as error:  # ray's serialiser raises many kinds for an object it cannot pickle
                    raise BlackBoxWorkerError(
                        f"black box {processor.name!r} cannot be sent to Ray workers: it cannot be pickled "
                        f"({type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''})"
                        "; define its function or factory at module level, or use runner='threads'") from None
                self._shipped[processor] = entry
        return entry[1], entry[2]

    def _gather(self, ray: Any, pool: _Pool, processor: ItemProcessor, actors: list[Any], chunks: list[range],
                token: str, shipped: list[Any], audio: list[tuple[Any, list[int]]],
                naturals: list[dict[str, float]], twice: int | None) -> list[Any]:
        """Each chunk's per-item results, or the exception that ends the call there."""
        longest = max(len(chunk) for chunk in chunks)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout * longest
        results: list[Any] = [None] * len(chunks)
        tries = [0] * len(chunks)
        assigned = list(actors)

        def submit(k: int) -> Any:
            chunk = chunks[k]
            local = twice - chunk.start if twice is not None and twice in chunk else None
            rows, which = audio[k]
            return assigned[k].run.remote(token, shipped, rows, which, naturals[chunk.start:chunk.stop], local)

        pending = {submit(k): k for k in range(len(chunks))}
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = ray.wait(list(pending), num_returns=1, timeout=left)
            if not done:
                k = min(pending.values())
                where, chunk = pool.where(assigned[k]), chunks[k]
                for stuck in pending.values():
                    pool.replace(assigned[stuck])
                raise BlackBoxTimeoutError(
                    f"black box {processor.name!r}: the Ray worker on {where} gave no result for items "
                    f"{chunk.start}-{chunk.stop - 1} of the call within {self.timeout * longest:g} s "
                    f"(timeout={self.timeout:g} s per item); the worker was replaced")
            k = pending.pop(done[0])
            try:
                results[k] = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:
                results[k] = BlackBoxError(
                    f"black box {processor.name!r}: the Ray worker on {pool.where(assigned[k])} could not run "
                    f"its items ({_first_line(error)}); is grafx-core, with the plugin providing this effect, "
                    "installed on every node?"
                )
            except ray.exceptions.RayError as error:  # the worker's process or node is gone
                where = pool.where(assigned[k])
                assigned[k] = pool.replace(assigned[k])
                tries[k] += 1
                if tries[k] <= self.retries:
                    if deadline is not None:  # the fresh worker gets its own time
                        deadline = max(deadline, time.monotonic() + self.timeout * len(chunks[k]))
                    pending[submit(k)] = k
                    continue
                tried = f" after {self.retries} retr{'y' if self.retries == 1 else 'ies'}" if self.retries else ""
                results[k] = BlackBoxWorkerError(
                    f"black box {processor.name!r}: the Ray worker on {where} died ({_first_line(error)}) while "
                    f"rendering items {chunks[k].start}-{chunks[k].stop - 1} of the call{tried}")
        return results

    def close(self) -> None:
        """Make the workers drop the processors this runner shipped (a later call ships them again)."""
        ray = _ray()
        with self._lock:
            tokens = [entry[1] for entry in self._shipped.values()]
            self._shipped.clear()
        if ray.is_initialized():
            pool = _pool(ray)
            for token in tokens:
                pool.forget(token)

    def __getstate__(self) -> dict[str, Any]:
        return {"workers": self._workers, "address": self.address, "retries": self.retries, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["workers"], address=state["address"], retries=state["retries"],  # type: ignore[misc]
                      timeout=state["timeout"])


def _first_line(error: BaseException) -> str:
    """``Type: first line`` of what went wrong, unwrapped from Ray's task and system errors."""
    while True:
        inner = getattr(error, "cause", None)
        if not isinstance(inner, BaseException) and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]  # RaySystemError keeps the original exception first
        if not isinstance(inner, BaseException) or inner is error:
            break
        error = inner
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
