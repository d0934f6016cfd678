"""A stereo, batched mixing graph with torch EQs, pedalboard compressors and a pedalboard reverb."""

from __future__ import annotations

import pytest
import torch

from grafx_core import Graph, create_empty_parameters, render
from grafx_core.errors import BlackBoxError
from grafx_pedalboard import pedalboard_processor

TRACKS = 3


class PeakEQ(torch.nn.Module):
    """A stand-in RBJ peaking EQ (used when grafx-dsp is not installed): frequency-sampled, autograd."""

    def forward(self, x, cutoff_hz, q, gain_db):
        n = 2 * x.shape[-1]
        w = torch.linspace(0, torch.pi, n // 2 + 1, dtype=torch.float64)
        z = torch.exp(-1j * w)
        big_a = 10 ** (gain_db.double() / 40)
        w0 = 2 * torch.pi * cutoff_hz.double() / 44100
        alpha = torch.sin(w0) / (2 * q.double())
        c = torch.cos(w0)
        num = (1 + alpha * big_a) - 2 * c * z + (1 - alpha * big_a) * z ** 2
        den = (1 + alpha / big_a) - 2 * c * z + (1 - alpha / big_a) * z ** 2
        spectrum = torch.fft.rfft(x.double(), n=n) * (num / den)[:, None, :]
        return torch.fft.irfft(spectrum, n=n)[..., : x.shape[-1]].to(x.dtype)

    def parameter_size(self):
        return {"cutoff_hz": 1, "q": 1, "gain_db": 1}


def eq_processor():
    try:
        from grafx_dsp.biquad import Biquad
    except ImportError:
        return PeakEQ()
    return Biquad("peak")


def mixing_graph() -> Graph:
    """Three tracks: EQ -> compressor -> bus; the bus goes to the output dry and through a reverb."""
    graph = Graph()
    bus = graph.add("mix", "bus")
    for i in range(TRACKS):
        source = graph.add("in", f"track{i}")
        eq = graph.add("eq", f"eq{i}")
        comp = graph.add("pedalboard:compressor", f"comp{i}")
        graph.connect(source, eq)
        graph.connect(eq, comp)
        graph.connect(comp, bus)
    verb = graph.add("pedalboard:reverb", "verb")
    out = graph.add("out", "master")
    graph.connect(bus, verb)
    graph.connect(verb, out)
    graph.connect(bus, out)
    return graph


@pytest.fixture
def setup(bursts):
    processors = {
        "eq": eq_processor(),
        # identity signal gradient through the compressors, so the EQs upstream train too
        "pedalboard:compressor": pedalboard_processor("compressor", signal_gradient="straight-through"),
        "pedalboard:reverb": pedalboard_processor("reverb"),
    }
    graph = mixing_graph()
    params = create_empty_parameters(graph, processors)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        params["eq"]["cutoff_hz"].copy_(torch.tensor([[300.0], [1200.0], [4000.0]]))
        params["eq"]["q"].copy_(torch.tensor([[0.7], [1.5], [1.0]]))
        params["eq"]["gain_db"].copy_(torch.tensor([[6.0], [-4.0], [3.0]]))
        for group in ("pedalboard:compressor", "pedalboard:reverb"):
            for value in params[group].values():
                value.add_(0.5 * torch.randn(value.shape, generator=gen))
    sources = torch.stack([bursts(TRACKS, samples=4410, seed=s) for s in (1, 2)])  # [batch 2, 3 tracks, 2, L]
    return graph, processors, params, sources


def node_by_node(processors, params, sources) -> torch.Tensor:
    """The graph rendered by hand, one node at a time, one example at a time."""
    outputs = []
    for example in sources:
        bus = 0
        for i in range(TRACKS):
            x = example[i : i + 1]
            eq = processors["eq"](x, **{k: v[i : i + 1] for k, v in params["eq"].items()})
            comp = processors["pedalboard:compressor"](
                eq, **{k: v[i : i + 1] for k, v in params["pedalboard:compressor"].items()})
            bus = bus + comp
        verb = processors["pedalboard:reverb"](bus, **dict(params["pedalboard:reverb"].items()))
        outputs.append(verb + bus)
    return torch.cat(outputs)[:, None]


def test_the_graph_equals_its_nodes_rendered_one_by_one(setup):
    graph, processors, params, sources = setup
    with torch.no_grad():
        y, _ = render(graph, processors, params, sources)
        expected = node_by_node(processors, params, sources)
    assert y.shape == (2, 1, 2, 4410)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter_of_every_node(setup):
    graph, processors, params, sources = setup
    y, _ = render(graph, processors, params, sources)  # every input gets a signal gradient: no warning
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    (y * weights).sum().backward()
    for group, tensors in params.items():
        for name, value in tensors.items():
            assert value.grad is not None and torch.isfinite(value.grad).all(), f"{group}.{name}"
            assert (value.grad != 0).all(), f"{group}.{name}: a node row got no gradient"


def test_an_effect_error_names_the_nodes_and_parameters(setup):
    graph, processors, params, sources = setup
    # pedalboard cannot tell channels from samples in a 2 x 2 item and raises
    with pytest.raises(BlackBoxError) as caught:
        render(graph, processors, params, sources[..., :2])
    message = str(caught.value)
    assert "('comp0', type 'pedalboard:compressor')" in message and "batch item 0" in message
    assert "threshold_db=" in message and "ratio=" in message and "channel layout" in message
