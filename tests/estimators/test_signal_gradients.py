"""Signal gradients across black boxes: each estimator against its definition, the default in a graph,
the gradient report's classes, and backward errors that name the graph node."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grafx_core import Graph, get_processor, render
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import BlackBoxError
from grafx_core.estimators import with_estimator
from grafx_core.estimators.linearisation import diagonal_perturbation, linearise
from grafx_core.testing import gradient_report


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.mark.parametrize("kind", ["spectral-ratio", "fft-ratio", "smooth-gain"])
@pytest.mark.parametrize("channels", [(2, 2), (1, 2), (2, 1)])
def test_the_adjoint_passes_the_dot_product_test(kind, channels):
    gen = torch.Generator().manual_seed(0)
    cin, cout = channels
    x = torch.randn(2, cin, 3001, generator=gen, dtype=torch.float64)  # odd length: irfft needs n=
    y = torch.randn(2, cout, 3001, generator=gen, dtype=torch.float64)
    lin = linearise(kind, x, y)
    v, w = torch.randn(x.shape, generator=gen, dtype=torch.float64), torch.randn(y.shape, generator=gen, dtype=torch.float64)
    left, right = float((lin.apply(v) * w).sum()), float((v * lin.adjoint(w)).sum())
    assert abs(left - right) <= 1e-9 * max(abs(left), 1.0)


def _fir(x, k):
    return torch.nn.functional.conv1d(torch.nn.functional.pad(x, (len(k) - 1, 0)), k.flip(0).view(1, 1, -1))


def test_spectral_ratios_recover_an_lti_filter():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, 8192, generator=gen, dtype=torch.float64)
    k = torch.tensor([0.5, 0.3, -0.2, 0.1], dtype=torch.float64)
    y, g = _fir(x, k), torch.randn(1, 1, 8192, generator=gen, dtype=torch.float64)
    x_leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(_fir(x_leaf, k), x_leaf, g)
    assert _cos(linearise("fft-ratio", x, y).adjoint(g), exact) > 0.999
    assert _cos(linearise("spectral-ratio", x, y).adjoint(g), exact) > 0.95  # frames blur a little


def test_the_fft_ratio_keeps_a_response_longer_than_the_signal():
    # A reverb-like tail rings on past the last sample: the zero-padded ratio Y X*/|X|^2 misses it
    # (its cosine here is 0.71); the causal fit models the cut-off.
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1, 2000, generator=gen, dtype=torch.float64)
    k = torch.randn(6000, generator=gen, dtype=torch.float64) * torch.exp(-torch.arange(6000.0, dtype=torch.float64) / 1500)
    y, g = _fir(x, k)[..., :2000], torch.randn(2, 1, 2000, generator=gen, dtype=torch.float64)
    x_leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(_fir(x_leaf, k), x_leaf, g)
    estimate = linearise("fft-ratio", x, y).adjoint(g)
    assert _cos(estimate, exact) > 0.98
    assert abs(float(estimate.norm() / exact.norm()) - 1) < 0.05


def test_the_fft_ratio_is_the_identity_on_a_silent_row():
    x = torch.zeros(1, 2, 500, dtype=torch.float64)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(linearise("fft-ratio", x, x).adjoint(g), g)


def test_the_diagonal_probe_is_a_waveshapers_derivative():
    gen = torch.Generator().manual_seed(2)
    x = 0.5 * torch.randn(2, 2, 4000, generator=gen, dtype=torch.float64)
    signs = torch.randint(0, 2, x.shape, generator=gen) * 2 - 1
    moved, h = diagonal_perturbation(x, signs, 1e-4)
    lin = linearise("diagonal", x, torch.tanh(3 * x), perturbed=torch.tanh(3 * moved), signs=signs, h=h)
    # changes below float32 resolution count as zero: deep in saturation the derivative is ~0 anyway
    torch.testing.assert_close(lin.factor, 3 / torch.cosh(3 * x) ** 2, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("kind", ["spectral-ratio", "fft-ratio", "smooth-gain", "diagonal"])
def test_every_estimator_is_exact_for_a_gain(kind):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 2, 2048, generator=gen, dtype=torch.float64)
    g = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    extra = {}
    if kind == "diagonal":
        signs = torch.randint(0, 2, x.shape, generator=gen) * 2 - 1
        moved, h = diagonal_perturbation(x, signs, 1e-3)
        extra = {"perturbed": 0.5 * moved, "signs": signs, "h": h}
    estimate = linearise(kind, x, 0.5 * x, **extra).adjoint(g)
    assert _cos(estimate, g) > 0.99  # the ratios shrink quiet bins toward 1: not exactly 0.5 there
    assert abs(float(estimate.norm() / (0.5 * g).norm()) - 1) < 0.05


def _console(box):
    graph = Graph()
    mix = graph.add("mix")
    for _ in range(3):
        s, eq, gain, bb = graph.add("in"), graph.add("eq"), graph.add("gain"), graph.add("box", name=None)
        graph.connect(s, eq), graph.connect(eq, gain), graph.connect(gain, bb), graph.connect(bb, mix)
    graph.connect(mix, graph.add("out"))
    return graph, {"eq": get_processor("dsp:parametric_eq"), "gain": get_processor("dsp:gain"), "box": box}


@pytest.mark.parametrize("effect", ["compressor", "reverb", "distortion"])
def test_the_default_passes_gradients_upstream_through_a_black_box(effect, one_torch_thread):
    exact_box = get_processor(f"dsp:{effect}")
    graph, exact = _console(exact_box)
    _, estimated = _console(with_estimator(exact_box, "finite-difference", seed=0))
    gen = torch.Generator().manual_seed(4)
    sources = 0.2 * torch.randn(3, 2, 8192, generator=gen)
    g = torch.randn(1, 2, 8192, generator=gen)
    grads = []
    for processors in (exact, estimated):
        params = {t: {k: v.expand(3, *v.shape[1:]).clone().requires_grad_(t != "box")
                      for k, v in p.default_parameters().items()} for t, p in processors.items()
                  if hasattr(p, "default_parameters") and p.default_parameters()}
        params["gain"]["gain_db"] = params["gain"]["gain_db"].detach() + torch.tensor([[-6.0], [0.0], [3.0]])
        params["gain"]["gain_db"].requires_grad_()
        y, _ = render(graph, processors, params, sources)
        (y * g).sum().backward()
        grads.append(torch.cat([params[t][k].grad.flatten() for t in ("eq", "gain") for k in sorted(params[t])]))
    assert estimated["box"].signal_gradient != "none"
    assert _cos(grads[1], grads[0]) > 0.9
    assert 0.5 < float(grads[1].norm() / grads[0].norm()) < 2


def test_the_report_classifies_known_controls():
    def delay(audio, sample_rate, delay_ms):
        d = int(round(delay_ms * sample_rate / 1000))
        out = np.zeros_like(audio)
        out[:, d:] = audio[:, :audio.shape[1] - d]
        return out

    def hard_knee(audio, sample_rate, threshold_db):
        t = 10 ** (threshold_db / 20)
        level = np.abs(audio)
        return audio * np.where(level > t, (t / np.maximum(level, 1e-9)) ** 0.75, 1.0)

    options = {"items": 2, "seconds": 0.1, "estimators": ("finite-difference",), "signal_gradients": ()}
    assert gradient_report(get_processor("dsp:gain"), **options).behaviour("gain_db") == "smooth"
    kinked = BlackBoxProcessor(hard_knee, [ParameterSpec("threshold_db", -40.0, 0.0)], workers=1)
    assert gradient_report(kinked, **options).behaviour("threshold_db") == "kinked"
    stepwise = BlackBoxProcessor(delay, [ParameterSpec("delay_ms", 1.0, 50.0)], workers=1)
    report = gradient_report(stepwise, **{**options, "items": 4, "seconds": 0.5})
    assert report.behaviour("delay_ms") == "stepwise"
    assert [r.estimator for r in report.rows if r.control == "delay_ms"] == ["-"]  # not differenced


def test_a_failure_in_the_backward_renders_names_the_graph_node():
    def fragile(audio, sample_rate, gain_db):
        if gain_db > 0:
            raise RuntimeError("plug-in crashed")
        return audio * 10 ** (gain_db / 20)

    box = BlackBoxProcessor(fragile, [ParameterSpec("gain_db", -12.0, 12.0)], name="fragile", workers=1,
                            signal_gradient="none")
    graph = Graph()
    s, a, b, out = graph.add("in"), graph.add("box", name="kick"), graph.add("box", name="snare"), graph.add("out")
    graph.connect(s, a), graph.connect(a, b), graph.connect(b, out)
    raw = box.raw_parameters(gain_db=[-3.0, -1e-4])["gain_db"].requires_grad_()
    y, _ = render(graph, {"box": box}, {"box": {"gain_db": raw}}, torch.randn(1, 1, 64))
    box.node_labels = ["wrong", "labels"]  # what the box holds now must not matter: the forward call's do
    with pytest.raises(BlackBoxError, match=r"black box 'fragile', .*snare.* \(finite-difference render\)"):
        y.sum().backward()


def test_the_gradients_command_prints_a_report_per_processor(capsys):
    from grafx_core.cli import main

    assert main(["gradients", "dsp:gain", "--items", "1", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "dsp:gain (reference: autograd)" in out
    assert "gain_db" in out and "smooth" in out and "auto -> " in out
