"""Gates blend a node with its bypass; pruning equals hard gating."""

import random

import pytest
import torch

from grafx_core import GATE_PARAMETER, Gated, Graph, create_empty_parameters, gate_processors, prune, render


class Gain(torch.nn.Module):
    def forward(self, x, gain_db):
        return x * torch.pow(10.0, gain_db / 20)[..., None]

    def parameter_size(self):
        return {"gain_db": 1}


class Drive(torch.nn.Module):
    def forward(self, x, drive_db):
        return torch.tanh(x * torch.pow(10.0, drive_db / 20)[..., None]), {"level": drive_db[:, 0]}

    def parameter_size(self):
        return {"drive_db": 1}


class Duck(torch.nn.Module):
    inlets = ("main", "sidechain")

    def forward(self, x, side, depth):
        return x / (1 + depth.abs()[..., None] * side.pow(2).mean(dim=(1, 2), keepdim=True))

    def parameter_size(self):
        return {"depth": 1}


PLAIN = {"gain": Gain(), "drive": Drive(), "duck": Duck()}


def console(seed: int, parallel_edges: bool = True) -> Graph:
    """Random chains of every processor type per track, with sidechains and a bus."""
    rng = random.Random(seed)
    graph = Graph()
    tracks = [graph.add("in") for _ in range(3)]
    bus = graph.add("mix")
    for track in tracks:
        node = track
        for node_type in rng.sample(["gain", "drive", "duck", "gain"], k=rng.randint(1, 4)):
            nxt = graph.add(node_type)
            graph.connect(node, nxt)
            if node_type == "duck":
                graph.connect(rng.choice(tracks), nxt, inlet="sidechain")
            if parallel_edges and rng.random() < 0.3:
                graph.connect(node, nxt)  # a parallel edge
            node = nxt
        graph.connect(node, bus)
    graph.connect(bus, graph.add("out"))
    return graph


def gated_parameters(graph, seed, processors):
    params = create_empty_parameters(graph, processors)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tree in params.values():
            for name, value in tree.items():
                value.copy_(torch.randn(value.shape, generator=generator) * (3.0 if name == GATE_PARAMETER else 1.0))
    return params


def test_open_gate_equals_the_node_and_closed_gate_equals_bypass():
    graph = console(0, parallel_edges=False)
    hard = gate_processors(PLAIN, mode="hard")
    params = gated_parameters(graph, 1, hard)
    sources = torch.randn(3, 2, 256)
    plain_params = {t: {k: v for k, v in tree.items() if k != GATE_PARAMETER} for t, tree in params.items()}
    with torch.no_grad():
        for tree in params.values():
            tree[GATE_PARAMETER].fill_(5.0)
    assert torch.equal(render(graph, hard, params, sources)[0], render(graph, PLAIN, plain_params, sources)[0])
    with torch.no_grad():
        for tree in params.values():
            tree[GATE_PARAMETER].fill_(-5.0)
    assert torch.equal(render(graph, hard, params, sources)[0], sources.sum(0, keepdim=True))


@pytest.mark.parametrize("seed", range(8))
def test_pruned_graph_renders_as_the_hard_gated_graph(seed):
    graph = console(seed)
    params = gated_parameters(graph, seed, gate_processors(PLAIN))
    sources = torch.randn(3, 2, 128, generator=torch.Generator().manual_seed(seed))
    hard_gated, _ = render(graph, gate_processors(PLAIN, mode="hard"), params, sources)
    pruned, pruned_params, node_map = prune(graph, params, threshold=0.5)
    kept = sum(m is not None for m in node_map)
    assert len(pruned) == kept < len(graph) or all(torch.sigmoid(t[GATE_PARAMETER]).min() >= 0.5 for t in params.values())
    torch.testing.assert_close(render(pruned, PLAIN, pruned_params, sources)[0], hard_gated, rtol=1e-6, atol=1e-6)
    for node_type, tree in pruned_params.items():
        assert GATE_PARAMETER not in tree
        assert tree[next(iter(tree.keys()))].shape[0] == len(pruned.nodes_of_type(node_type))


def test_soft_gates_train_and_report_sparsity_per_node():
    graph = console(3)
    gated = gate_processors(PLAIN, sparsity=0.1)
    params = gated_parameters(graph, 2, gated)
    y, aux = render(graph, gated, params, torch.randn(3, 2, 64))
    gated_nodes = [n.id for n in graph.nodes if n.type in PLAIN]
    assert sorted(aux) == gated_nodes
    for node in gated_nodes:
        node_type = graph.nodes[node].type
        row = graph.nodes_of_type(node_type).index(node)
        gate = torch.sigmoid(params[node_type][GATE_PARAMETER][row, 0])
        torch.testing.assert_close(aux[node]["gate_sparsity"], 0.1 * gate)
    loss = y.pow(2).mean() + sum(a["gate_sparsity"] for a in aux.values())
    loss.backward()
    assert all(tree[GATE_PARAMETER].grad.abs().sum() > 0 for tree in params.values())


def test_gating_refuses_what_it_cannot_bypass():
    class Split(torch.nn.Module):
        outlets = ("low", "high")

        def forward(self, x):
            return x, x

    with pytest.raises(Exception, match="outlets \\['low', 'high'\\]"):
        Gated(Split())
    assert "split" not in {t for t, p in gate_processors({"split": Split()}).items() if isinstance(p, Gated)}


def test_straight_through_gates_render_hard_and_pass_the_sigmoid_gradient():
    x = torch.randn(3, 2, 32)
    gain_db = torch.tensor([[6.0], [-3.0], [1.0]])
    logit = torch.tensor([[0.7], [-0.4], [2.0]], requires_grad=True)
    y, _ = Gated(Gain(), mode="straight-through")(x, gain_db=gain_db, gate_logit=logit)
    hard, _ = Gated(Gain(), mode="hard")(x, gain_db=gain_db, gate_logit=logit)
    assert torch.equal(y, hard)
    weights = torch.randn_like(y)
    (grad,) = torch.autograd.grad((y * weights).sum(), logit)
    wet = Gain()(x, gain_db)
    expected = ((wet - x) * weights).sum(dim=(1, 2))[:, None] * torch.sigmoid(logit) * (1 - torch.sigmoid(logit))
    torch.testing.assert_close(grad, expected.detach())
