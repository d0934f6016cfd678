"""Graph building, references, JSON round trip and disjoint union."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grafx_core import Graph, GraphConnectionError, GraphCycleError, GraphError, disjoint_union


@st.composite
def graphs(draw):
    graph = Graph()
    types = ["in", "gain", "eq", "mix", "split"]
    for i in range(draw(st.integers(1, 12))):
        name = draw(st.one_of(st.none(), st.just(f"n{i}")))
        node = graph.add(draw(st.sampled_from(types)), name)
        candidates = [n.id for n in graph.nodes[:node] if n.type != "out"]
        if graph.nodes[node].type != "in" and candidates:
            for src in draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3)):
                outlet = "low" if graph.nodes[src].type == "split" and draw(st.booleans()) else "main"
                graph.connect(src, node, outlet=outlet)
    out = graph.add("out", "master")
    graph.connect(graph.nodes[0].id, out)
    return graph


@settings(max_examples=40, deadline=None)
@given(graph=graphs())
def test_json_round_trip_is_lossless(graph, tmp_path_factory):
    restored = Graph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert restored == graph
    assert [n.name for n in restored.nodes] == [n.name for n in graph.nodes]
    path = tmp_path_factory.mktemp("g") / "graph.json"
    graph.save(path)
    assert Graph.load(path) == graph


def test_nodes_are_found_by_id_and_name():
    graph = Graph()
    a = graph.add("in", "kick")
    b = graph.add("gain")
    graph.connect("kick", b)
    assert graph.node("kick").id == a and graph.node(b).type == "gain"
    assert graph.predecessors(b) == [a] and graph.successors("kick") == [b]
    assert graph.nodes_of_type("gain") == [b]


def test_bad_references_and_ports_are_named():
    graph = Graph()
    a = graph.add("in", "kick")
    out = graph.add("out")
    with pytest.raises(GraphError, match="already used by node 0"):
        graph.add("gain", "kick")
    with pytest.raises(GraphError, match="no node named 'snare'"):
        graph.connect("snare", out)
    with pytest.raises(GraphError, match="no node with id 7"):
        graph.connect(a, 7)
    with pytest.raises(GraphCycleError, match="self-loop.*'kick'"):
        graph.connect(a, a)
    with pytest.raises(GraphConnectionError, match="no inlet 'side'.*'out'"):
        graph.connect(a, out, inlet="side")
    with pytest.raises(GraphConnectionError, match="no outlet 'low'.*'in'"):
        graph.connect(a, out, outlet="low")


def test_from_dict_rejects_foreign_data():
    with pytest.raises(GraphError, match="not a grafx-core graph"):
        Graph.from_dict({"nodes": []})
    with pytest.raises(GraphError, match="version 99"):
        Graph.from_dict({"format": "grafx-core.graph", "version": 99, "nodes": [], "edges": []})


@settings(max_examples=20, deadline=None)
@given(st.lists(graphs(), min_size=1, max_size=3))
def test_disjoint_union_tells_where_each_node_went(parts):
    union, maps = disjoint_union(parts)
    assert len(union) == sum(len(g) for g in parts)
    for graph, mapping in zip(parts, maps):
        for node in graph.nodes:
            assert union.nodes[mapping[node.id]].type == node.type
        mapped = {(mapping[e.src], mapping[e.dst], e.outlet, e.inlet) for e in graph.edges}
        assert mapped <= {(e.src, e.dst, e.outlet, e.inlet) for e in union.edges}
    # graph order is kept, so per-type rows of the union are the parts' rows concatenated
    flat = [n for mapping in maps for n in mapping]
    assert flat == sorted(flat)
