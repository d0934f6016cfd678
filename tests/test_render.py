"""The batched engine against a plain one-node-at-a-time reference renderer."""

import math
from collections import defaultdict, deque

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grafx_core import (
    Graph,
    compile_render,
    concatenate_parameters,
    create_empty_parameters,
    disjoint_union,
    render,
)


# -- test processors: several inlets/outlets, channel changes, aux values ------
class Gain(torch.nn.Module):
    def forward(self, x, gain_db):
        y = x * (10 ** (gain_db / 20))[..., None]
        return y, {"gain_penalty": gain_db.pow(2).sum(-1)}

    def parameter_size(self):
        return {"gain_db": 1}


class Tone(torch.nn.Module):
    """A two-tap FIR per node: y[t] = a x[t] + b x[t-1]; nested parameters."""

    def forward(self, x, taps):
        shifted = torch.nn.functional.pad(x, (1, 0))[..., :-1]
        return taps["a"][:, :, None] * x + taps["b"][:, :, None] * shifted

    def parameter_size(self):
        return {"taps": {"a": 1, "b": (1,)}}


class Split(torch.nn.Module):
    """Two outlets: a smooth and a residual part."""

    outlets = ("low", "high")

    def forward(self, x, mix):
        smooth = 0.5 * (x + torch.roll(x, 1, dims=-1))
        weight = torch.sigmoid(mix)[..., None]
        return weight * smooth, x - weight * smooth

    def parameter_size(self):
        return {"mix": 1}


class Duck(torch.nn.Module):
    """Two inlets: the sidechain's energy lowers the main signal."""

    inlets = ("main", "sidechain")

    def forward(self, x, side, depth):
        energy = side.pow(2).mean(dim=(1, 2))[:, None, None]
        return x / (1 + torch.nn.functional.softplus(depth)[..., None] * energy)

    def parameter_size(self):
        return {"depth": 1}


class Widen(torch.nn.Module):
    """Mono or stereo in, stereo out (changes the channel count)."""

    def forward(self, x, pan):
        mono = x.mean(dim=1, keepdim=True)
        angle = torch.sigmoid(pan)[..., None] * (math.pi / 2)
        return torch.cat([mono * torch.cos(angle), mono * torch.sin(angle)], dim=1)

    def parameter_size(self):
        return {"pan": 1}


PROCESSORS = {"gain": Gain(), "tone": Tone(), "split": Split(), "duck": Duck(), "widen": Widen()}
PORTS = {"in": ((), ("main",)), "mix": (("main",), ("main",)), "out": (("main",), ())}
PORTS.update({t: (getattr(p, "inlets", ("main",)), getattr(p, "outlets", ("main",))) for t, p in PROCESSORS.items()})


def reference_render(graph, processors, parameters, sources):
    """Topological order, one node at a time, plain Python sums."""
    indegree = defaultdict(int)
    for e in graph.edges:
        indegree[e.dst] += 1
    ready = deque(n.id for n in graph.nodes if indegree[n.id] == 0)
    rank, counter = {}, defaultdict(int)
    for n in graph.nodes:
        rank[n.id] = counter[n.type]
        counter[n.type] += 1
    outputs, aux = {}, {}
    while ready:
        node = graph.nodes[ready.popleft()]
        inputs = []
        for inlet in PORTS[node.type][0]:
            feeds = [outputs[(e.src, e.outlet)] for e in graph.edges if e.dst == node.id and e.inlet == inlet]
            total = feeds[0]
            for f in feeds[1:]:
                total = total + f
            inputs.append(total)
        if node.type == "in":
            result = {"main": sources[rank[node.id]][None]}
        elif node.type in ("mix", "out"):
            result = {"main": inputs[0]}
        else:
            def rows(tree):
                return {k: rows(v) if isinstance(v, dict) or hasattr(v, "keys") else v[rank[node.id]][None]
                        for k, v in tree.items()}
            y = processors[node.type](*inputs, **rows(parameters[node.type]))
            if isinstance(y, tuple) and isinstance(y[-1], dict):
                aux[node.id] = {k: v[0] for k, v in y[-1].items()}
                y = y[:-1]
            y = y if isinstance(y, tuple) else (y,)
            result = dict(zip(PORTS[node.type][1], y))
        for outlet, value in result.items():
            outputs[(node.id, outlet)] = value
        for e in graph.edges:
            if e.src == node.id:
                indegree[e.dst] -= 1
                if indegree[e.dst] == 0 and e.dst not in [r for r in ready]:
                    ready.append(e.dst)
    outs = [outputs[(n, "main")][0] for n in graph.nodes_of_type("out")]
    channels = max(o.shape[0] for o in outs)
    return torch.stack([o.expand(channels, -1) for o in outs]), aux


@st.composite
def random_graphs(draw):
    """Random DAGs with every test processor, mix nodes and parallel edges."""
    graph = Graph()
    for _ in range(draw(st.integers(1, 3))):
        graph.add("in")
    for _ in range(draw(st.integers(1, 14))):
        node_type = draw(st.sampled_from(["gain", "tone", "split", "duck", "widen", "mix"]))
        earlier = list(range(len(graph)))
        node = graph.add(node_type)
        for inlet in PORTS[node_type][0]:
            for src in draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=3)):
                outlets = PORTS[graph.nodes[src].type][1]
                graph.connect(src, node, outlet=draw(st.sampled_from(outlets)), inlet=inlet)
    for _ in range(draw(st.integers(1, 2))):
        out = graph.add("out")
        feeders = [n.id for n in graph.nodes if n.type != "out"]
        for src in draw(st.lists(st.sampled_from(feeders), min_size=1, max_size=3, unique=True)):
            graph.connect(src, out, outlet=draw(st.sampled_from(PORTS[graph.nodes[src].type][1])))
    return graph


def random_parameters(graph, seed, dtype=torch.float32):
    params = create_empty_parameters(graph, PROCESSORS, dtype=dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=dtype))
    return params


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), method=st.sampled_from(["beam", "greedy", "one-by-one"]),
       channels=st.sampled_from([1, 2]), seed=st.integers(0, 2**16),
       tile_bytes=st.sampled_from([None, 600, 2000]))
def test_batched_render_and_gradients_match_reference(graph, method, channels, seed, tile_bytes):
    params = random_parameters(graph, seed)
    sources = torch.randn(len(graph.nodes_of_type("in")), channels, 64, generator=torch.Generator().manual_seed(seed))

    # 64 float32 samples per channel: tile_bytes of 600 or 2000 give tiles of 1 to 7 nodes
    y, aux = render(graph, PROCESSORS, params, sources, method=method, tile_bytes=tile_bytes)
    y_ref, aux_ref = reference_render(graph, PROCESSORS, params, sources)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    assert aux.keys() == aux_ref.keys()
    for node in aux_ref:
        torch.testing.assert_close(aux[node]["gain_penalty"], aux_ref[node]["gain_penalty"])

    if not y.requires_grad:  # no parameterised node reaches an output
        assert not y_ref.requires_grad
        return
    # A batched stage may hold rows that do and rows that do not depend on the
    # parameters, so y can require grad where the reference does not; the
    # gradients must then be zero.
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1))
    leaves = list(params.parameters())
    grads = torch.autograd.grad((y * weights).sum(), leaves, allow_unused=True)
    grads_ref = (torch.autograd.grad((y_ref * weights).sum(), leaves, allow_unused=True)
                 if y_ref.requires_grad else [None] * len(leaves))
    for leaf, g, g_ref in zip(leaves, grads, grads_ref):
        g = torch.zeros_like(leaf) if g is None else g
        g_ref = torch.zeros_like(leaf) if g_ref is None else g_ref
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def _small_graph():
    graph = Graph()
    a, b = graph.add("in"), graph.add("in")
    split, duck, widen = graph.add("split"), graph.add("duck"), graph.add("widen")
    tone, out = graph.add("tone"), graph.add("out")
    graph.connect(a, split)
    graph.connect(split, duck, outlet="low")
    graph.connect(b, duck, inlet="sidechain")
    graph.connect(split, duck, outlet="high", inlet="sidechain")
    graph.connect(duck, widen)
    graph.connect(b, tone)
    graph.connect(widen, out)
    graph.connect(tone, out)
    graph.connect(tone, out)  # a parallel edge sums twice
    return graph


def test_gradcheck_float64_through_parameters_and_sources():
    graph = _small_graph()
    plan = compile_render(graph, PROCESSORS)
    params = random_parameters(graph, 3, dtype=torch.float64)
    leaves = [(t, name) for t in params for name in params[t].keys() if not hasattr(params[t][name], "keys")]
    sources = torch.randn(2, 1, 16, dtype=torch.float64, requires_grad=True)

    def run(src, *flat):
        tree = {t: dict(params[t]) for t in params}
        tree["tone"] = {"taps": dict(params["tone"]["taps"])}
        for (t, name), value in zip(leaves, flat):
            tree[t][name] = value
        tree["tone"]["taps"] = {"a": flat[-2], "b": flat[-1]}
        return plan(tree, src)[0]

    taps = [params["tone"]["taps"]["a"].detach().clone().requires_grad_(),
            params["tone"]["taps"]["b"].detach().clone().requires_grad_()]
    flat = [params[t][name].detach().clone().requires_grad_() for t, name in leaves] + taps
    assert torch.autograd.gradcheck(run, (sources, *flat))


def test_rows_bind_to_nodes_by_id_not_by_render_order():
    graph = Graph()
    src = graph.add("in")
    late = graph.add("gain")  # id 1, but rendered after node 2
    early = graph.add("gain")
    out = graph.add("out")
    graph.connect(src, early)
    graph.connect(early, late)
    graph.connect(late, out)
    stages = compile_render(graph, PROCESSORS).stages
    assert [s.nodes for s in stages] == [(early,), (late,), (out,)]

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, x, gain_db):
            self.seen.append(gain_db.flatten().tolist())
            return x * gain_db[..., None]

        def parameter_size(self):
            return {"gain_db": 1}

    recorder = Recorder()
    params = {"gain": {"gain_db": torch.tensor([[10.0], [20.0]])}}  # row 0 -> node 1, row 1 -> node 2
    render(graph, {"gain": recorder}, params, torch.ones(1, 1, 4))
    assert recorder.seen == [[20.0], [10.0]]


def test_source_batches_and_per_example_parameters_equal_separate_renders():
    graph = _small_graph()
    plan = compile_render(graph, PROCESSORS)
    shared = random_parameters(graph, 0)
    sources = torch.randn(3, 2, 1, 32)
    y, _ = plan(shared, sources)
    torch.testing.assert_close(y, torch.stack([plan(shared, s)[0] for s in sources]))

    per_example = [random_parameters(graph, seed) for seed in (1, 2, 3)]
    stacked = {
        t: {k: torch.stack([p[t][k] for p in per_example]) for k in shared[t].keys() if k != "taps"}
        for t in shared
    }
    stacked["tone"] = {"taps": {k: torch.stack([p["tone"]["taps"][k] for p in per_example]) for k in ("a", "b")}}
    y, _ = plan(stacked, sources)
    torch.testing.assert_close(y, torch.stack([plan(p, s)[0] for p, s in zip(per_example, sources)]))


def test_union_of_graphs_equals_separate_renders():
    g1, g2 = _small_graph(), _small_graph()
    g2.connect(3, 6)  # make the two graphs differ: duck also feeds the out
    p1, p2 = random_parameters(g1, 5), random_parameters(g2, 6)
    s1, s2 = torch.randn(2, 1, 32), torch.randn(2, 1, 32)
    union, maps = disjoint_union([g1, g2])
    y, _ = render(union, PROCESSORS, concatenate_parameters([p1, p2]), torch.cat([s1, s2]))
    torch.testing.assert_close(y, torch.cat([render(g1, PROCESSORS, p1, s1)[0], render(g2, PROCESSORS, p2, s2)[0]]))


def test_mono_meets_stereo_and_stage_splits_by_shape():
    graph = Graph()
    a, b = graph.add("in"), graph.add("in")
    wide = graph.add("widen")
    g_mono, g_stereo = graph.add("gain"), graph.add("gain")
    bus, out = graph.add("mix"), graph.add("out")
    graph.connect(a, wide)
    graph.connect(b, g_mono)
    graph.connect(wide, g_stereo)
    graph.connect(g_mono, bus)
    graph.connect(g_stereo, bus)
    graph.connect(bus, out)
    plan = compile_render(graph, PROCESSORS)
    assert any(s.nodes == (g_mono, g_stereo) for s in plan.stages)  # one stage, two calls
    params = random_parameters(graph, 7)
    sources = torch.randn(2, 1, 50)
    y, _ = plan(params, sources)
    assert y.shape == (1, 2, 50)
    torch.testing.assert_close(y, reference_render(graph, PROCESSORS, params, sources)[0])


def test_render_follows_device_and_dtype(device):
    graph = _small_graph()
    params = random_parameters(graph, 1, dtype=torch.float64).to(device)
    sources = torch.randn(2, 1, 32, dtype=torch.float64, device=device)
    y, aux = render(graph, PROCESSORS, params, sources)
    assert y.device.type == device.type and y.dtype == torch.float64


def test_no_grad_frees_signals_after_their_last_consumer():
    import weakref

    alive = []

    class Tracked(torch.nn.Module):
        def forward(self, x):
            live = sum(1 for ref in alive if ref() is not None)
            peak.append(live)
            y = x * 0.5
            alive.append(weakref.ref(y))
            return y

        def parameter_size(self):
            return {}

    peak = []
    graph = Graph()
    node = graph.add("in")
    for _ in range(64):
        nxt = graph.add("t")
        graph.connect(node, nxt)
        node = nxt
    graph.connect(node, graph.add("out"))
    with torch.no_grad():
        y, _ = render(graph, {"t": Tracked()}, {}, torch.ones(1, 1, 8))
    assert max(peak) <= 1  # only the input being processed is alive when a node runs
    torch.testing.assert_close(y, torch.full((1, 1, 8), 0.5**64))
