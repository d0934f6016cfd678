"""Render orders are valid, and the beam search finds fewer stages than one-by-one."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grafx_core import Graph, GraphCycleError, render_order


def random_dag(seed: int, size: int) -> Graph:
    rng = random.Random(seed)
    graph = Graph()
    for _ in range(rng.randint(1, 3)):
        graph.add("in")
    for _ in range(size):
        node = graph.add(rng.choice(["a", "b", "c", "mix"]))
        for src in rng.sample(range(node), k=min(node, rng.randint(1, 3))):
            graph.connect(src, node)
    out = graph.add("out")
    graph.connect(out - 1, out)
    return graph


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(1, 40), method=st.sampled_from(["beam", "greedy", "one-by-one"]))
def test_every_order_is_a_valid_partition_into_ready_single_type_stages(seed, size, method):
    graph = random_dag(seed, size)
    stages = render_order(graph, method)
    done = set(graph.nodes_of_type("in"))
    for stage in stages:
        assert len({graph.nodes[i].type for i in stage.nodes}) == 1
        assert stage.type == graph.nodes[stage.nodes[0]].type
        assert list(stage.nodes) == sorted(stage.nodes)
        for node in stage.nodes:
            assert set(graph.predecessors(node)) <= done
        done |= set(stage.nodes)
    assert done == set(range(len(graph)))
    assert stages[-1].type == "out"
    if method == "one-by-one":
        assert all(len(s.nodes) == 1 for s in stages[:-1])
    else:
        types = len({n.type for n in graph.nodes if n.type not in ("in", "out")})
        assert len(stages) - 1 >= types  # at least one stage per type
        assert len(stages) <= len(render_order(graph, "one-by-one"))


def test_beam_waits_for_a_type_to_fill_up():
    # b1 feeds a2; taking a1 first would cost an extra stage for a2
    graph = Graph()
    src = graph.add("in")
    a1, b1, a2 = graph.add("a"), graph.add("b"), graph.add("a")
    graph.connect(src, a1)
    graph.connect(src, b1)
    graph.connect(b1, a2)
    out = graph.add("out")
    graph.connect(a1, out)
    graph.connect(a2, out)
    assert [(s.type, s.nodes) for s in render_order(graph, "beam")] == [("b", (b1,)), ("a", (a1, a2)), ("out", (out,))]
    assert len(render_order(graph, "one-by-one")) == 4


def test_mixing_console_takes_one_stage_per_layer():
    graph = Graph()
    master = graph.add("mix")
    for _ in range(64):
        node = graph.add("in")
        for t in ("eq", "comp", "pan"):
            nxt = graph.add(t)
            graph.connect(node, nxt)
            node = nxt
        graph.connect(node, master)
    graph.connect(master, graph.add("out"))
    assert [s.type for s in render_order(graph)] == ["eq", "comp", "pan", "mix", "out"]


def test_cycle_is_reported_with_its_nodes():
    graph = Graph()
    graph.add("in")
    x, y, z = graph.add("a", "x"), graph.add("b", "y"), graph.add("a", "z")
    graph.connect(0, x)
    graph.connect(x, y)
    graph.connect(y, z)
    graph.connect(z, x)
    with pytest.raises(GraphCycleError, match=r"'x'.*'y'.*'z'|'y'.*'z'.*'x'|'z'.*'x'.*'y'"):
        render_order(graph)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="'fastest'.*'beam'"):
        render_order(Graph(), "fastest")


def test_tiles_go_depth_first_and_black_box_stages_stay_whole():
    from grafx_core.schedule import tile_stages

    graph = Graph()
    bus = graph.add("mix")
    for _ in range(4):
        node = graph.add("in")
        for t in ("eq", "box"):
            nxt = graph.add(t)
            graph.connect(node, nxt)
            node = nxt
        graph.connect(node, bus)
    graph.connect(bus, graph.add("out"))
    stages = render_order(graph)
    tiled = tile_stages(graph, stages, max_nodes=2)
    assert [(s.type, len(s.nodes)) for s in tiled] == [
        ("eq", 2), ("box", 2), ("eq", 2), ("box", 2), ("mix", 1), ("out", 1)]
    kept = tile_stages(graph, stages, max_nodes=2, keep_whole={"box"})
    assert [(s.type, len(s.nodes)) for s in kept] == [("eq", 2), ("eq", 2), ("box", 4), ("mix", 1), ("out", 1)]
