"""Render scheduling: group the nodes of a graph into stages.

A stage is a set of nodes of one type whose inputs are all computed by
earlier stages; the engine renders each stage with one batched processor
call. Fewer stages mean fewer, larger calls.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._arguments import require_graph
from .errors import GraphCycleError, GraphError
from .graph import Graph

__all__ = ["Stage", "render_order", "tile_stages", "SCHEDULING_METHODS"]

SCHEDULING_METHODS = ("beam", "greedy", "one-by-one")
"""The scheduling methods that need only the graph (:func:`render_order`'s
``method``; it also takes ``"fixed"`` with a ``type_sequence``)."""


@dataclass(frozen=True)
class Stage:
    """One batched call: the ids (ascending) of nodes of one type."""

    type: str
    nodes: tuple[int, ...]


class _Dag:
    """Adjacency of the nodes to schedule, in arrays, for fast state updates."""

    def __init__(self, graph: Graph) -> None:
        n = len(graph)
        self.types = [node.type for node in graph.nodes]
        self.type_names = list(dict.fromkeys(t for t in self.types if t not in ("in", "out")))
        type_index = {t: i for i, t in enumerate(self.type_names)}
        # "in" nodes are available from the start; "out" nodes all go into one
        # final stage, so neither takes part in the search.
        self.type_of = np.array([type_index.get(t, -1) for t in self.types], dtype=np.int64)
        self.schedulable = self.type_of >= 0
        pairs = sorted({(e.src, e.dst) for e in graph.edges})
        src = np.array([p[0] for p in pairs], dtype=np.int64)
        dst = np.array([p[1] for p in pairs], dtype=np.int64)
        keep = self.schedulable[dst] & self.schedulable[src] if n else np.zeros(0, bool)
        src, dst = src[keep], dst[keep]
        self.indegree = np.bincount(dst, minlength=n).astype(np.int64)
        order = np.argsort(src, kind="stable")
        self.succ = dst[order]
        self.succ_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
        self.graph = graph

    def successors_of(self, nodes: np.ndarray) -> np.ndarray:
        """All successor ids (with repeats) of ``nodes``, vectorised."""
        starts, ends = self.succ_ptr[nodes], self.succ_ptr[nodes + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return self.succ[np.arange(total) + offsets]


class _State:
    """A partial schedule: what is done, what each node still waits for, and
    how many nodes of each type are left."""

    __slots__ = ("indegree", "done", "stages", "remaining", "left")

    def __init__(self, indegree: np.ndarray, done: np.ndarray, stages: list[Stage], remaining: int,
                 left: np.ndarray) -> None:
        self.indegree, self.done, self.stages = indegree, done, stages
        self.remaining, self.left = remaining, left

    def ready(self) -> np.ndarray:
        return np.flatnonzero((self.indegree == 0) & ~self.done)

    def advance(self, dag: _Dag, nodes: np.ndarray, type_index: int) -> _State:
        indegree = self.indegree - np.bincount(dag.successors_of(nodes), minlength=len(self.indegree))
        done = self.done.copy()
        done[nodes] = True
        left = self.left.copy()
        left[type_index] -= len(nodes)
        stage = Stage(dag.type_names[type_index], tuple(int(i) for i in nodes))
        return _State(indegree, done, self.stages + [stage], self.remaining - len(nodes), left)


def _raise_cycle(dag: _Dag, done: np.ndarray) -> None:
    """Find one cycle among the nodes that could never become ready and report it."""
    graph = dag.graph
    stuck = {int(i) for i in np.flatnonzero(dag.schedulable & ~done)}
    preds: dict[int, list[int]] = {i: [] for i in stuck}
    for e in graph.edges:
        if e.dst in stuck and e.src in stuck:
            preds[e.dst].append(e.src)
    # Walk predecessors from any stuck node: every stuck node has a stuck
    # predecessor, so the walk must revisit a node, closing a cycle.
    path: list[int] = []
    seen: dict[int, int] = {}
    node = min(stuck)
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = preds[node][0]
    cycle = list(reversed(path[seen[node]:]))
    names = " -> ".join(graph.nodes[i].label() for i in cycle + [cycle[0]])
    raise GraphCycleError(f"the graph has a cycle: {names}")


def _search(dag: _Dag, width: int) -> list[Stage]:
    """Beam search over which ready type to render next.

    A move is scored before it is made: stages so far plus one per type with
    nodes left (a lower bound on the stages still needed), then fewer nodes
    left. Only the best moves are carried out, until ``width`` distinct
    states are kept, so a round costs little more than ``width`` updates
    however many types are ready.
    """
    total = int(dag.schedulable.sum())
    left = np.bincount(dag.type_of[dag.schedulable], minlength=len(dag.type_names))
    beam = [_State(dag.indegree.copy(), ~dag.schedulable, [], total, left)]
    while beam[0].remaining > 0:
        moves = []
        for rank, state in enumerate(beam):
            ready = state.ready()
            types = dag.type_of[ready]
            types_left = int(np.count_nonzero(state.left))
            for t in np.unique(types).tolist():
                nodes = ready[types == t]
                bound = types_left - int(state.left[t] == len(nodes))
                moves.append(((bound, state.remaining - len(nodes), rank, t), state, t, nodes))
        if not moves:
            _raise_cycle(dag, beam[0].done)
        moves.sort(key=lambda move: move[0])
        kept: dict[bytes, _State] = {}
        for _, state, t, nodes in moves:
            child = state.advance(dag, nodes, t)
            kept.setdefault(np.packbits(child.done).tobytes(), child)
            if len(kept) == width:
                break
        # Every state of a round has as many stages as the round number, so a
        # finished state (bound 0) ranks first and ends the loop.
        beam = list(kept.values())
    return beam[0].stages


def _one_by_one(dag: _Dag) -> list[Stage]:

    indegree = dag.indegree.copy()
    heap = [int(i) for i in np.flatnonzero(dag.schedulable & (indegree == 0))]
    heapq.heapify(heap)
    stages: list[Stage] = []
    done = ~dag.schedulable
    while heap:
        node = heapq.heappop(heap)
        done[node] = True
        stages.append(Stage(dag.types[node], (node,)))
        for s in dag.successors_of(np.array([node])):
            indegree[s] -= 1
            if indegree[s] == 0:
                heapq.heappush(heap, int(s))
    if not done.all():
        _raise_cycle(dag, done)
    return stages


def _fixed(dag: _Dag, type_sequence: Sequence[str]) -> list[Stage]:
    known = set(dag.type_names) | {"in", "out"}
    unknown = sorted({t for t in type_sequence if t not in known})
    if unknown:
        raise ValueError(f"type_sequence names {unknown}, which no node of the graph has "
                         f"(its types are {dag.type_names})")
    total = int(dag.schedulable.sum())
    left = np.bincount(dag.type_of[dag.schedulable], minlength=len(dag.type_names))
    state = _State(dag.indegree.copy(), ~dag.schedulable, [], total, left)
    for node_type in type_sequence:
        if node_type in ("in", "out"):
            continue
        t = dag.type_names.index(node_type)
        ready = state.ready()
        nodes = ready[dag.type_of[ready] == t]
        if len(nodes):
            state = state.advance(dag, nodes, t)
    if state.remaining:
        if not len(state.ready()):  # nothing left can ever become ready
            _raise_cycle(dag, state.done)
        unrendered = np.flatnonzero(~state.done)
        labels = ", ".join(dag.graph.nodes[int(i)].label() for i in unrendered[:5])
        more = f" and {len(unrendered) - 5} more" if len(unrendered) > 5 else ""
        raise GraphError(f"type_sequence {list(type_sequence)} ends with {len(unrendered)} node(s) not rendered: "
                         f"{labels}{more}; each entry renders the ready nodes of its type, so repeat types "
                         "in the order they are needed")
    return state.stages


def render_order(
    graph: Graph,
    method: Literal["beam", "greedy", "one-by-one", "fixed"] = "beam",
    beam_width: int = 16,
    type_sequence: Sequence[str] | None = None,
) -> list[Stage]:
    """Group the graph's processing nodes into stages to render in order.

    ``"in"`` nodes are not part of any stage (they are the sources); all
    ``"out"`` nodes form the last stage. Each other stage holds ready nodes
    of one type.

    Args:
        graph: the graph to schedule.
        method: ``"beam"`` searches for the fewest stages with a beam of
            ``beam_width`` partial schedules; ``"greedy"`` (a beam of one)
            always takes the type with the best bound; ``"one-by-one"`` puts
            every node in its own stage (a reference, and the slowest);
            ``"fixed"`` follows ``type_sequence``.
        beam_width: partial schedules kept per step by ``"beam"``.
        type_sequence: for ``"fixed"`` only: node types in the order to
            render them; each entry is one stage of every node of that type
            that is ready by then (skipped when none is), ``"in"`` and
            ``"out"`` entries are ignored (GRAFX's ``fixed_order``). Give it
            to :func:`compile_render` as ``stages=render_order(graph,
            "fixed", type_sequence=...)``.

    Returns:
        The stages, in render order.

    Raises:
        GraphCycleError: the graph has a cycle (its nodes are named).
        GraphError: ``type_sequence`` ends before every node is rendered.
        ValueError: unknown method, or ``type_sequence`` missing for
            ``"fixed"``, given for another method, or naming unknown types.
        TypeError: ``graph`` is not a :class:`Graph` or ``method`` not a
            string (processors passed as in :func:`compile_render`, say).
    """
    _check_arguments(graph, method)
    if method == "fixed":
        if type_sequence is None or isinstance(type_sequence, str):
            raise ValueError('method "fixed" needs a list of node types: render_order(graph, "fixed", '
                             'type_sequence=[...]), given to compile_render as stages=')
        return _fixed(_Dag(graph), list(type_sequence)) + _out_stage(graph)
    if type_sequence is not None:
        raise ValueError(f"type_sequence is only read by method 'fixed', not {method!r}")
    if method not in SCHEDULING_METHODS:
        raise ValueError(f"unknown scheduling method {method!r}; expected one of {SCHEDULING_METHODS} or 'fixed'")
    dag = _Dag(graph)
    if method == "one-by-one":
        stages = _one_by_one(dag)
    else:
        stages = _search(dag, beam_width if method == "beam" else 1)
    return stages + _out_stage(graph)


def _out_stage(graph: Graph) -> list[Stage]:
    outs = tuple(graph.nodes_of_type("out"))
    return [Stage("out", outs)] if outs else []


def _check_arguments(graph: Any, method: Any) -> None:
    require_graph("render_order(graph, method)", graph)
    if isinstance(method, str):
        return
    hint = (" (a processors mapping? scheduling needs only the graph: render_order(graph, method); "
            "compile_render(graph, processors, method) takes processors)") if isinstance(method, Mapping) else ""
    raise TypeError(f"render_order(graph, method=...): method must be a string such as 'beam', got "
                    f"{type(method).__name__}{hint}")


def tile_stages(graph: Graph, stages: list[Stage], max_nodes: int,
                keep_whole: Collection[str] = ()) -> list[Stage]:
    """Split stages into calls of at most ``max_nodes`` nodes, ordered depth first.

    On a CPU, a stage of many long signals streams every intermediate result
    through main memory, while rendering one node at a time keeps a node's
    signals in cache but pays the per-call overhead for each node. Tiles of a
    few nodes, each followed as far as possible by the tiles that consume it,
    get both: the working set stays in cache and calls stay few.

    Args:
        graph: the graph the stages belong to.
        stages: a render order (from :func:`render_order`).
        max_nodes: the largest number of nodes per call; the final ``"out"``
            stage is never split.
        keep_whole: node types whose stages are never split (black boxes,
            which process item by item in a thread pool and gain nothing
            from cache-sized tiles but parallelism from large calls).

    Returns:
        An equivalent render order whose stages hold at most ``max_nodes``
        nodes (except ``"out"``).
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
    tiles: list[Stage] = []
    for stage in stages:
        if stage.type == "out":
            continue
        if stage.type in keep_whole:
            tiles.append(stage)
            continue
        # Even tiles: 10 nodes with max 8 become 5 + 5, not 8 + 2.
        count = -(-len(stage.nodes) // max_nodes)
        size = -(-len(stage.nodes) // count)
        tiles += [Stage(stage.type, stage.nodes[i:i + size]) for i in range(0, len(stage.nodes), size)]
    tile_of = {node: t for t, tile in enumerate(tiles) for node in tile.nodes}
    waiting = [0] * len(tiles)
    consumers: list[set[int]] = [set() for _ in tiles]
    for edge in graph.edges:
        src, dst = tile_of.get(edge.src), tile_of.get(edge.dst)
        if src is not None and dst is not None and dst not in consumers[src]:
            consumers[src].add(dst)
            waiting[dst] += 1
    # A tile that became ready most recently goes first (depth first), so
    # the signals it reads were written moments ago; ties keep stage order.
    heap = [(0, t) for t in range(len(tiles)) if waiting[t] == 0]
    heapq.heapify(heap)
    order: list[Stage] = []
    clock = 0
    while heap:
        _, t = heapq.heappop(heap)
        order.append(tiles[t])
        clock -= 1
        for c in sorted(consumers[t]):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (clock, c))
    order += [s for s in stages if s.type == "out"]
    return order
