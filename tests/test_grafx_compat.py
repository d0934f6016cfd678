"""What costs little to make GRAFX users feel at home: scalar aux values,
serial chains, node removal, the "fixed" order, random initialisation, and
a clear error for GRAFX's argument order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grafx_core import (
    Graph,
    GraphError,
    compile_render,
    create_empty_parameters,
    render,
    render_order,
)
from grafx_core.testing import check_processor


class Gain(nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * 10 ** (gain_db[..., None] / 20)


class GainStaged(Gain):
    """Returns GRAFX-style aux values: one scalar for the whole call, and a tensor per node."""

    def forward(self, x, gain_db):
        y = super().forward(x, gain_db)
        energy = lambda s: s.pow(2).mean((1, 2)).add(1e-8).log()  # noqa: E731
        per_node = (energy(y) - energy(x)).abs()
        return y, {"gain_reg": per_node.mean(), "per_node": per_node}


def console(chain=("eq", "comp", "eq")):
    graph = Graph()
    source = graph.add("in")
    first, last = graph.add_serial_chain(list(chain))
    graph.connect(source, first)
    graph.connect(last, graph.add("out"))
    return graph


def test_a_scalar_aux_value_is_split_over_the_nodes_of_its_call_and_keeps_its_gradient():
    graph = Graph()
    sources = [graph.add("in") for _ in range(3)]
    gains = [graph.add("gain") for _ in range(3)]
    out = graph.add("out")
    for s, g in zip(sources, gains):
        graph.connect(s, g)
        graph.connect(g, out)
    processors = {"gain": GainStaged()}
    params = create_empty_parameters(graph, processors)
    with torch.no_grad():
        params["gain"]["gain_db"].copy_(torch.tensor([[1.0], [6.0], [-12.0]]))
    x = torch.randn(3, 2, 64, generator=torch.Generator().manual_seed(0))
    _, aux = render(graph, processors, params, x)
    _, reference = GainStaged()(x, params["gain"]["gain_db"])
    for row, node in enumerate(gains):
        torch.testing.assert_close(aux[node]["per_node"], reference["per_node"][row])
        torch.testing.assert_close(aux[node]["gain_reg"], reference["gain_reg"] / 3)
    total = sum(aux[node]["gain_reg"] for node in gains)
    torch.testing.assert_close(total, reference["gain_reg"])
    (grad,) = torch.autograd.grad(total, params["gain"]["gain_db"])
    (expected,) = torch.autograd.grad(reference["gain_reg"], params["gain"]["gain_db"])
    torch.testing.assert_close(grad, expected)
    assert bool((grad != 0).all())
    check_processor(GainStaged())  # the kit takes scalar aux values too


def test_add_serial_chain_connects_main_to_main_and_returns_both_ends():
    graph = Graph()
    first, last = graph.add_serial_chain(["eq", {"node_type": "comp", "name": "bus"}, "eq"])
    assert (first, last) == (0, 2) and graph.node("bus").id == 1
    assert [(e.src, e.dst, e.outlet, e.inlet) for e in graph.edges] == [(0, 1, "main", "main"), (1, 2, "main", "main")]
    with pytest.raises(GraphError, match="add_serial_chain takes a non-empty list"):
        graph.add_serial_chain([{"type": "eq"}])
    assert len(graph) == 3


def test_removing_a_node_bypasses_it_and_renumbers_the_rest():
    graph = console(("eq", "comp", "eq"))
    graph.connect(1, 4)  # a second edge from the first eq to the out node
    node_map = graph.remove(2)
    assert node_map == [0, 1, None, 2, 3]
    assert sorted((e.src, e.dst) for e in graph.edges) == [(0, 1), (1, 2), (1, 3), (2, 3)]
    processors = {"eq": Gain()}
    params = create_empty_parameters(graph, processors)
    x = torch.randn(1, 1, 16)
    y, _ = render(graph, processors, params, x)
    torch.testing.assert_close(y, 2 * x)  # two 0 dB paths into the out node
    bare = console(("eq", "comp"))
    bare.remove(2, rewire=False)
    assert [(e.src, e.dst) for e in bare.edges] == [(0, 1)]


def test_the_fixed_order_follows_a_type_sequence_and_renders_like_the_beam_search():
    graph = console(("eq", "comp", "eq", "comp"))
    stages = render_order(graph, "fixed", type_sequence=["in", "eq", "comp", "eq", "comp", "out"])
    assert [s.type for s in stages] == ["eq", "comp", "eq", "comp", "out"]
    processors = {"eq": Gain(), "comp": Gain()}
    params = create_empty_parameters(graph, processors, std=1.0, generator=torch.Generator().manual_seed(0))
    x = torch.randn(1, 2, 32)
    fixed, _ = compile_render(graph, processors, stages=stages)(params, x)
    torch.testing.assert_close(fixed, render(graph, processors, params, x)[0])
    with pytest.raises(GraphError, match=r"ends with 2 node\(s\) not rendered: node 3"):
        render_order(graph, "fixed", type_sequence=["eq", "comp"])
    with pytest.raises(ValueError, match=r"type_sequence names \['gain'\]"):
        render_order(graph, "fixed", type_sequence=["gain"])


def test_std_draws_seeded_noise_around_the_defaults():
    graph = console(("eq",) * 400)
    processors = {"eq": Gain()}
    assert float(create_empty_parameters(graph, processors)["eq"]["gain_db"].detach().abs().max()) == 0.0
    noisy = create_empty_parameters(graph, processors, std=0.5, generator=torch.Generator().manual_seed(3))
    again = create_empty_parameters(graph, processors, std=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(noisy["eq"]["gain_db"], again["eq"]["gain_db"])
    assert float(noisy["eq"]["gain_db"].detach().std()) == pytest.approx(0.5, rel=0.15)


def test_calls_in_grafx_argument_order_name_the_expected_order():
    graph = console(("eq",))
    processors = {"eq": Gain()}
    with pytest.raises(TypeError, match=r"create_empty_parameters\(graph, processors\): the processors came "
                                        r"first and the graph second \(GRAFX's order\)"):
        create_empty_parameters(processors, graph)
    with pytest.raises(TypeError, match=r"compile_render\(graph, processors, method\): the processors came first"):
        compile_render(processors, graph)
    with pytest.raises(TypeError, match=r"a processors mapping\? scheduling needs only the graph"):
        render_order(graph, processors)
    with pytest.raises(TypeError, match=r"render\(graph, processors, parameters, sources\): expected a "
                                        r"grafx_core.Graph first, got dict \(processors\? GRAFX takes them first"):
        render(processors, torch.zeros(1, 1, 8), {}, None)  # render_grafx(processors, sources, parameters, data)
