"""Audio processing graphs: typed nodes and edges between outlets and inlets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._jsonfile import read_json, write_text_atomically
from .errors import GraphConnectionError, GraphCycleError, GraphError

__all__ = ["Node", "Edge", "Graph", "NodeRef", "BUILTIN_TYPES", "disjoint_union"]

NodeRef = Union[int, str]
"""A node given by its integer id or its unique name."""

GRAPH_FORMAT = "grafx-core.graph"
GRAPH_FORMAT_VERSION = 1

BUILTIN_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "in": ((), ("main",)),
    "out": (("main",), ()),
    "mix": (("main",), ("main",)),
}
"""Built-in node types and their ``(inlets, outlets)``: a source, a sink whose
summed input is an output row, and a node that sums its inputs."""


@dataclass(frozen=True)
class Node:
    """One node: its id (position in the graph), type and optional unique name."""

    id: int
    type: str
    name: str | None = None

    def label(self) -> str:
        """A human-readable reference such as ``node 3 ('kick_eq', type 'eq')``."""
        named = f"{self.name!r}, " if self.name is not None else ""
        return f"node {self.id} ({named}type {self.type!r})"


@dataclass(frozen=True)
class Edge:
    """A connection from ``src``'s outlet to ``dst``'s inlet."""

    src: int
    dst: int
    outlet: str = "main"
    inlet: str = "main"


class Graph:
    """A directed acyclic audio processing graph.

    Nodes are numbered in the order they are added. Several edges into one
    inlet are summed; parallel edges are allowed. Whether a node type exists
    and which ports a processor has are checked when the graph is compiled
    against its processors, except for the built-in types (``"in"``,
    ``"out"``, ``"mix"``), which are checked at once.
    """

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._edges: list[Edge] = []
        self._names: dict[str, int] = {}
        # Read-only snapshots, rebuilt after a change: a fresh tuple per access made compiling quadratic.
        self._node_tuple: tuple[Node, ...] | None = None
        self._edge_tuple: tuple[Edge, ...] | None = None

    # -- building -----------------------------------------------------------
    def add(self, node_type: str, name: str | None = None) -> int:
        """Add a node of ``node_type`` and return its id.

        Raises:
            GraphError: the type is not a non-empty string, or the name is taken.
        """
        if not isinstance(node_type, str) or not node_type:
            raise GraphError(f"node type must be a non-empty string, got {node_type!r}")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise GraphError(f"node name must be a non-empty string or None, got {name!r}")
            if name in self._names:
                raise GraphError(
                    f"node name {name!r} is already used by {self._nodes[self._names[name]].label()}"
                )
            self._names[name] = len(self._nodes)
        self._nodes.append(Node(len(self._nodes), node_type, name))
        self._node_tuple = None
        return len(self._nodes) - 1

    def connect(self, src: NodeRef, dst: NodeRef, outlet: str = "main", inlet: str = "main") -> None:
        """Connect ``src``'s ``outlet`` to ``dst``'s ``inlet``.

        Raises:
            GraphError: a node reference does not exist.
            GraphCycleError: ``src`` and ``dst`` are the same node.
            GraphConnectionError: a port name is not a string, or a built-in node
                lacks that outlet or inlet.
        """
        s, d = self.node(src), self.node(dst)
        if s.id == d.id:
            raise GraphCycleError(f"self-loop: {s.label()} cannot feed itself")
        if not isinstance(outlet, str) or not isinstance(inlet, str):
            raise GraphConnectionError(
                f"edge {s.label()} -> {d.label()}: outlet and inlet must be port names (str), "
                f"got outlet {outlet!r} and inlet {inlet!r}"
            )
        if s.type in BUILTIN_TYPES and outlet not in BUILTIN_TYPES[s.type][1]:
            raise GraphConnectionError(
                f"{s.label()} has no outlet {outlet!r}; built-in type {s.type!r} has outlets "
                f"{list(BUILTIN_TYPES[s.type][1])}"
            )
        if d.type in BUILTIN_TYPES and inlet not in BUILTIN_TYPES[d.type][0]:
            raise GraphConnectionError(
                f"{d.label()} has no inlet {inlet!r}; built-in type {d.type!r} has inlets "
                f"{list(BUILTIN_TYPES[d.type][0])}"
            )
        self._edges.append(Edge(s.id, d.id, outlet, inlet))
        self._edge_tuple = None

    def add_serial_chain(self, nodes: Sequence[str | Mapping[str, Any]]) -> tuple[int, int]:
        """Add nodes connected in series (each ``"main"`` outlet to the next ``"main"`` inlet).

        Args:
            nodes: node types, or mappings of :meth:`add`'s keyword arguments
                (``{"node_type": "eq", "name": "kick_eq"}``).

        Returns:
            The ids of the first and the last node of the chain.

        Raises:
            GraphError: ``nodes`` is empty, or an entry is neither a type nor
                such a mapping (the graph is left unchanged), or as :meth:`add`.
        """
        entries = [{"node_type": n} if isinstance(n, str) else n for n in nodes]
        if not entries or not all(isinstance(e, Mapping) and set(e) <= {"node_type", "name"} and "node_type" in e
                                  for e in entries):
            raise GraphError(f"add_serial_chain takes a non-empty list of node types or of "
                             f"{{'node_type': ..., 'name': ...}} mappings, got {list(nodes)!r}")
        ids = [self.add(**entry) for entry in entries]
        for src, dst in zip(ids, ids[1:]):
            self.connect(src, dst)
        return ids[0], ids[-1]

    def remove(self, *refs: NodeRef, rewire: bool = True) -> list[int | None]:
        """Remove nodes; with ``rewire``, bypass each one (its ``"main"`` inputs feed its consumers).

        Ids are positions, so the nodes after a removed one move down; the
        returned map says where each went. Parameter rows follow the ids
        (row ``k`` of a type is its ``k``-th node), so drop the removed
        nodes' rows from a parameter set made for the old graph.

        Args:
            refs: the nodes to remove, by id or name.
            rewire: connect what fed each removed node's ``"main"`` inlet to
                every inlet its outlets fed (edges into its other inlets,
                such as a sidechain, are dropped); otherwise drop its edges.

        Returns:
            ``node_map``: ``node_map[i]`` is old node ``i``'s new id, or
            ``None`` if it was removed.

        Raises:
            GraphError: a reference does not exist.
        """
        removed = {self.node(ref).id for ref in refs}
        edges = _bypassed_edges(self._edges, removed) if rewire else [
            e for e in self._edges if e.src not in removed and e.dst not in removed]
        node_map: list[int | None] = []
        nodes: list[Node] = []
        for node in self._nodes:
            if node.id in removed:
                node_map.append(None)
            else:
                node_map.append(len(nodes))
                nodes.append(Node(len(nodes), node.type, node.name))
        self._nodes = nodes
        self._names = {n.name: n.id for n in nodes if n.name is not None}
        self._edges = [Edge(node_map[e.src], node_map[e.dst], e.outlet, e.inlet)  # type: ignore[arg-type]
                       for e in edges]
        return node_map

    # -- reading ------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes, in id order."""
        if self._node_tuple is None:
            self._node_tuple = tuple(self._nodes)
        return self._node_tuple

    @property
    def edges(self) -> tuple[Edge, ...]:
        """All edges, in the order they were connected."""
        if self._edge_tuple is None:
            self._edge_tuple = tuple(self._edges)
        return self._edge_tuple

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, ref: NodeRef) -> Node:
        """The node with this id or name.

        Raises:
            GraphError: no such node.
        """
        if isinstance(ref, bool):
            raise GraphError(f"node reference must be an int id or a str name, got {ref!r}")
        if isinstance(ref, int):
            if 0 <= ref < len(self._nodes):
                return self._nodes[ref]
            raise GraphError(f"no node with id {ref}; the graph has ids 0..{len(self._nodes) - 1}")
        if isinstance(ref, str):
            if ref in self._names:
                return self._nodes[self._names[ref]]
            raise GraphError(f"no node named {ref!r}")
        raise GraphError(f"node reference must be an int id or a str name, got {ref!r}")

    def node_types(self) -> list[str]:
        """The distinct node types, in order of first appearance."""
        return list(dict.fromkeys(n.type for n in self._nodes))

    def processor_types(self) -> list[str]:
        """The distinct node types that need a processor (all but the built-ins)."""
        return [t for t in self.node_types() if t not in BUILTIN_TYPES]

    def nodes_of_type(self, node_type: str) -> list[int]:
        """Ids of the nodes of ``node_type`` in id order; row k of that type's
        parameters belongs to the k-th of them."""
        return [n.id for n in self._nodes if n.type == node_type]

    def predecessors(self, ref: NodeRef) -> list[int]:
        """Ids of the nodes with an edge into ``ref`` (with repeats for parallel edges)."""
        i = self.node(ref).id
        return [e.src for e in self._edges if e.dst == i]

    def successors(self, ref: NodeRef) -> list[int]:
        """Ids of the nodes ``ref`` has an edge into (with repeats for parallel edges)."""
        i = self.node(ref).id
        return [e.dst for e in self._edges if e.src == i]

    def __repr__(self) -> str:
        counts = {t: len(self.nodes_of_type(t)) for t in self.node_types()}
        return f"Graph({len(self._nodes)} nodes, {len(self._edges)} edges, types={counts})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self._nodes == other._nodes and self._edges == other._edges

    # -- serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` turns back into an equal graph."""
        return {
            "format": GRAPH_FORMAT,
            "version": GRAPH_FORMAT_VERSION,
            "nodes": [{"type": n.type, "name": n.name} for n in self._nodes],
            "edges": [
                {"src": e.src, "dst": e.dst, "outlet": e.outlet, "inlet": e.inlet} for e in self._edges
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Graph:
        """Rebuild a graph from :meth:`to_dict`'s output.

        Every key is checked: an unknown or misspelt key (``"outlte"``) is an
        error rather than a silently applied default.

        Raises:
            GraphError: the dict is not a grafx-core graph of a known version,
                or a node or edge has an unknown key or a value of the wrong type.
        """
        if not isinstance(data, dict) or data.get("format") != GRAPH_FORMAT:
            raise GraphError(f"not a grafx-core graph: expected a dict with format {GRAPH_FORMAT!r}")
        version = data.get("version")
        if type(version) is not int or version != GRAPH_FORMAT_VERSION:
            raise GraphError(
                f"graph format version {version!r} is not supported "
                f"(this grafx-core reads version {GRAPH_FORMAT_VERSION})"
            )
        _check_keys(data, "the graph", required=("format", "version", "nodes", "edges"), optional=())
        graph = cls()
        for i, node in enumerate(_entries(data, "nodes")):
            where = f"node {i}"
            _check_keys(node, where, required=("type",), optional=("name",))
            graph.add(node["type"], node.get("name"))
        for i, edge in enumerate(_entries(data, "edges")):
            where = f"edge {i}"
            _check_keys(edge, where, required=("src", "dst"), optional=("outlet", "inlet"))
            for key in ("src", "dst"):
                if not isinstance(edge[key], (int, str)) or isinstance(edge[key], bool):
                    raise GraphError(f"{where}: {key!r} must be a node id (int) or name (str), got {edge[key]!r}")
            try:
                graph.connect(edge["src"], edge["dst"], edge.get("outlet", "main"), edge.get("inlet", "main"))
            except GraphError as exc:
                raise type(exc)(f"{where}: {exc}") from exc
        return graph

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the graph as JSON to ``path`` (a temporary file renamed over it, so
        that a concurrent reader never sees a partial file).

        Raises:
            GraphError: the file cannot be written.
        """
        write_text_atomically(path, json.dumps(self.to_dict(), indent=1), "graph file", GraphError)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Graph:
        """Read a graph written by :meth:`save`.

        Raises:
            GraphError: the file is missing, a folder, unreadable, not UTF-8,
                not JSON (or nested too deeply), or not a valid graph; the
                message names the file.
        """
        name = os.fspath(path)
        data = read_json(name, "graph file", GraphError)
        try:
            return cls.from_dict(data)
        except GraphError as exc:
            raise type(exc)(f"{name!r}: {exc}") from exc


def _check_keys(entry: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise GraphError(f"{where} must be a JSON object, got {entry!r}")
    missing = [k for k in required if k not in entry]
    unknown = sorted(str(k) for k in entry if k not in required and k not in optional)
    if missing or unknown:
        problems = ([f"missing key(s) {missing}"] if missing else []) + (
            [f"unknown key(s) {unknown}"] if unknown else [])
        raise GraphError(f"{where}: {' and '.join(problems)}; expected keys {list(required + optional)}")


def _entries(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise GraphError(f"the graph's {key!r} must be a JSON list, got {type(value).__name__}")
    return value


def _bypassed_edges(edges: Iterable[Edge], removed: Iterable[int]) -> list[Edge]:
    """``edges`` with the ``removed`` nodes bypassed: what fed a removed node's
    ``"main"`` inlet feeds every inlet its outlets fed (chains of removed nodes
    resolve one node at a time, in id order); its other edges are dropped."""
    work = list(edges)
    for node in sorted(set(removed)):
        feeds = [(e.src, e.outlet) for e in work if e.dst == node and e.inlet == "main"]
        consumers = [(e.dst, e.inlet) for e in work if e.src == node]
        work = [e for e in work if node not in (e.src, e.dst)]
        work += [Edge(s, d, o, i) for d, i in consumers for s, o in feeds]
    return work


def disjoint_union(graphs: Sequence[Graph]) -> tuple[Graph, list[list[int]]]:
    """Put several graphs side by side in one graph (graph-level batching).

    Nodes keep their relative order: graph 0's nodes come first, then graph
    1's, and so on, so each type's parameter rows and the ``"in"`` sources of
    the union are the graphs' own concatenated in order. Names become
    ``"g{index}/{name}"``.

    Returns:
        The union and, for each input graph, the list mapping its node ids to
        ids in the union.
    """
    union = Graph()
    maps: list[list[int]] = []
    for index, graph in enumerate(graphs):
        mapping = [
            union.add(n.type, None if n.name is None else f"g{index}/{n.name}") for n in graph.nodes
        ]
        for e in graph.edges:
            union.connect(mapping[e.src], mapping[e.dst], e.outlet, e.inlet)
        maps.append(mapping)
    return union, maps
