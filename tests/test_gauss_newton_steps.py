"""Gauss-Newton's step lengths: the stretch learned from its extrapolations, and the search of a rough control's
valley after the scan's grid, each against a problem whose optimum is known.

The stretch's parabola is checked against numpy's least-squares fit; the stretch itself by the renders a
black box ``level * tanh(drive * x)`` needs to reach its known optimum with and without it; the valley search by
an echo whose delay (whole samples: a staircase whose loss has valleys at the comb's other alignments) and
output gain are hidden.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render
from grafx_core.fitting import LatentParameters, RenderBudget, SpectralLoss, optimise
from grafx_core.fitting.gauss_newton import _vertex

sys.path.insert(0, str(Path(__file__).parent))
from test_optimizers import _problem  # noqa: E402  (the tanh black box and its known optimum)


def test_the_stretch_parabola_is_least_where_numpys_fit_of_the_three_losses_is():
    generator = np.random.default_rng(7)
    for _ in range(200):
        at_one = generator.uniform(0.1, 1.0)
        at_zero, at_two = at_one + generator.uniform(1e-3, 1.0), at_one + generator.uniform(0.0, 1.0)
        a, b, _ = np.polyfit([0.0, 1.0, 2.0], [at_zero, at_one, at_two], 2)
        assert _vertex(at_zero, at_one, at_two) == pytest.approx(min(max(-b / (2 * a), 0.5), 1.5), rel=1e-9)
    assert _vertex(1.0, 0.5, 0.0) == 1.0  # collinear: no curvature, the step as taken


def _renders_to(optimum_fraction: float, stretch: bool) -> float:
    graph, processors, plan, sources, _, start, loss = _problem()
    latent = LatentParameters(start, processors)
    budget = RenderBudget(graph, processors, 60)
    seen: list[tuple[float, float]] = []

    class _Log:
        def record(self, step: int, value: float, rate: float, seconds: float) -> None:
            seen.append((budget.renders, value))

    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget, seed=0,
                      log=_Log(), options={"starts": 1, "stretch": stretch})
    return next((renders for renders, value in seen if value <= optimum_fraction * result.initial_loss), np.inf)


def test_the_stretched_step_reaches_the_known_optimum_in_fewer_renders(one_torch_thread):
    # The loss is 0 at the hidden drive and level; the reweighted residuals' model makes each Gauss-Newton
    # step short, and starting the next step as long as the last extrapolation found best saves renders.
    stretched, plain = _renders_to(1e-4, True), _renders_to(1e-4, False)
    assert stretched <= 0.8 * plain
    assert stretched < 60


def _echo(audio: np.ndarray, sample_rate: float, delay_ms: float, gain_db: float) -> np.ndarray:
    shift = int(round(delay_ms * sample_rate / 1000))
    out = audio.copy()
    out[..., shift:] += 0.6 * audio[..., :audio.shape[-1] - shift]
    return (10 ** (gain_db / 20) * out).astype(np.float32)


def test_the_scan_searches_a_rough_controls_valley_down_to_the_sample(one_torch_thread):
    box = BlackBoxProcessor(_echo, [ParameterSpec("delay_ms", 1.0, 40.0), ParameterSpec("gain_db", -12.0, 12.0)],
                            workers=1, check_determinism=False)
    graph = Graph()
    source, node, out = graph.add("in"), graph.add("box"), graph.add("out")
    graph.connect(source, node)
    graph.connect(node, out)
    plan = compile_render(graph, {"box": box})
    sources = 0.3 * torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        target = plan({"box": box.raw_parameters(delay_ms=[17.3], gain_db=[3.0])}, sources)[0][0]
    loss = SpectralLoss(target, (64, 256, 1024))
    latent = LatentParameters({"box": box.raw_parameters(delay_ms=[5.0], gain_db=[-6.0])}, {"box": box})
    budget = RenderBudget(graph, {"box": box}, 150)
    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget, seed=0,
                      options={"starts": 1})
    with torch.no_grad():
        natural = box.natural_parameters(**latent.values()["box"])
    # The hidden delay, to the sample (the grid of the scan alone is 1 ms apart: 44 samples), and the gain.
    assert round(float(natural["delay_ms"]) * 44.1) == round(17.3 * 44.1)
    assert float(natural["gain_db"]) == pytest.approx(3.0, abs=0.01)
    assert result.final_loss < 1e-6 * result.initial_loss

