"""Gradients reach the source signals: through autograd and through each estimator's signal option."""

import pytest
import torch

from grafx_core import Graph, compile_render, create_empty_parameters, render
from grafx_core.estimators import SPSA, FiniteDifference, StoppedSignalGradientWarning, StraightThrough, with_estimator


class Gain(torch.nn.Module):
    def forward(self, x, gain_db):
        return x * torch.pow(10.0, gain_db / 20)[..., None]

    def parameter_size(self):
        return {"gain_db": 1}


class Drive(torch.nn.Module):
    def forward(self, x, drive_db):
        return torch.tanh(x * torch.pow(10.0, drive_db / 20)[..., None])

    def parameter_size(self):
        return {"drive_db": 1}


class Duck(torch.nn.Module):
    inlets = ("main", "sidechain")

    def forward(self, x, side, depth):
        return x / (1 + depth.pow(2)[..., None] * side.pow(2).mean(dim=(1, 2), keepdim=True))

    def parameter_size(self):
        return {"depth": 1}


def sidechain_graph() -> Graph:
    """Two sources; one ducks the other, both are driven, then summed."""
    graph = Graph()
    vocal, music = graph.add("in", "vocal"), graph.add("in", "music")
    duck, drive, gain = graph.add("duck"), graph.add("drive"), graph.add("gain")
    out = graph.add("out")
    graph.connect(music, duck)
    graph.connect(vocal, duck, inlet="sidechain")
    graph.connect(duck, drive)
    graph.connect(vocal, gain)
    graph.connect(drive, out)
    graph.connect(gain, out)
    return graph


def test_gradcheck_float64_with_respect_to_sources_of_a_multi_inlet_graph():
    graph = sidechain_graph()
    processors = {"duck": Duck(), "drive": Drive(), "gain": Gain()}
    params = create_empty_parameters(graph, processors, dtype=torch.float64)
    with torch.no_grad():
        params["duck"]["depth"].fill_(1.5)
        params["drive"]["drive_db"].fill_(6.0)
    plan = compile_render(graph, processors)
    sources = torch.randn(2, 2, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: plan(params, s)[0], (sources,))


def _source_gradient(processor, sources, weights):
    graph = Graph()
    for _ in range(sources.shape[0]):
        graph.connect(graph.add("in"), graph.add("drive"))
    out = graph.add("out")
    for node in graph.nodes_of_type("drive"):
        graph.connect(node, out)
    params = {"drive": {"drive_db": torch.tensor([[3.0], [-2.0]], requires_grad=True)}}
    sources = sources.clone().requires_grad_()
    y, _ = render(graph, {"drive": processor}, params, sources)
    (grad,) = torch.autograd.grad((y * weights).sum(), sources, allow_unused=True)
    return torch.zeros_like(sources) if grad is None else grad


def test_straight_through_passes_the_output_gradient_to_the_source():
    sources = torch.randn(2, 1, 32) * 0.3
    weights = torch.randn(1, 1, 32)
    grad = _source_gradient(with_estimator(Drive(), StraightThrough(surrogate=Drive()), signal_gradient="straight-through"),
                            sources, weights)
    torch.testing.assert_close(grad, weights.expand(2, 1, 32))


def test_spsa_source_gradient_is_unbiased():
    torch.manual_seed(0)
    sources = torch.randn(2, 1, 8) * 0.3
    weights = torch.randn(1, 1, 8)
    exact = _source_gradient(Drive(), sources, weights)
    estimate = torch.stack([
        _source_gradient(with_estimator(Drive(), SPSA(samples=1, signal_samples=64, seed=seed),
                                        signal_gradient="spsa"), sources, weights)
        for seed in range(40)
    ]).mean(0)
    cosine = torch.nn.functional.cosine_similarity(estimate.flatten(), exact.flatten(), dim=0)
    assert cosine > 0.95, cosine


def test_auto_source_gradient_is_the_probed_one_and_a_stop_is_silent_when_asked_for():
    sources = torch.randn(2, 1, 256, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(1, 1, 256, generator=torch.Generator().manual_seed(1))
    exact = _source_gradient(Drive(), sources, weights)
    auto = with_estimator(Drive(), FiniteDifference(seed=0))
    estimate = _source_gradient(auto, sources, weights)
    assert auto.signal_gradient == "diagonal"  # tanh is memoryless: the probe finds it
    torch.testing.assert_close(estimate, exact, rtol=1e-2, atol=1e-3)  # below float32 resolution: 0
    chosen = _source_gradient(with_estimator(Drive(), FiniteDifference(), signal_gradient="none"),
                              sources, weights)  # no warning: filterwarnings = error
    assert torch.all(chosen == 0)


class Reverse(torch.nn.Module):
    """Backwards and mirrored in frequency (times ``(-1)^n``): on music, nothing linear explains it."""

    def forward(self, x, drive_db):
        alternating = 1 - 2 * (torch.arange(x.shape[-1]) % 2).to(x.dtype)
        return alternating * torch.flip(x, [-1]) * torch.pow(10.0, drive_db / 20)[..., None]

    def parameter_size(self):
        return {"drive_db": 1}


def test_a_stop_that_nothing_better_explains_warns_with_the_scores():
    from grafx_core.demo.multitrack import synthesise_multitrack

    # drums: white noise keeps its spectrum however it is shuffled, and a ratio passes its gradient on
    sources = synthesise_multitrack(3, 0.25, 44100, seed=0)[1].float()[[0, 2], :1, :8192]
    with pytest.warns(StoppedSignalGradientWarning, match="scores .*fft-ratio"):
        grad = _source_gradient(with_estimator(Reverse(), FiniteDifference(seed=0)), sources, torch.ones(1, 1, 8192))
    assert torch.all(grad == 0)
