"""gauss-newton's joint search of a node's controls (:mod:`grafx_core.fitting._node_search`) on a valley that no
one control leaves and no declaration points at.

The reference is independent of any optimiser: the target is rendered from hidden settings of a textbook
peaking biquad (RBJ's cookbook, filtered by ``scipy.signal.lfilter``) whose centre is declared without a unit,
so the band scan (which pairs controls declared in Hz) does not see it; the optimum and its settings are known.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_core import BlackBoxProcessor, Control, Graph, ParameterSpec, compile_render
from grafx_core.fitting import LatentParameters, RenderBudget, SpectralLoss, optimise
from grafx_core.fitting._node_search import NodeWatch, node_groups, search_cost, search_nodes

SAMPLES = 8192
FFT_SIZES = (256, 1024)
HIDDEN = {"centre": 1500.0, "boost": -6.0, "width": 2.0}
PARKED = {"centre": 60.0, "boost": 1.0, "width": 8.0}  # narrow, low and nearly flat: a wrong valley
BUDGET = 400


def _bell(audio: np.ndarray, sample_rate: float, centre: float, boost: float, width: float) -> np.ndarray:
    """RBJ's peaking EQ biquad (``centre`` in Hz, ``boost`` in dB, ``width`` the Q)."""
    a, w = 10 ** (boost / 40), 2 * np.pi * centre / sample_rate
    alpha = np.sin(w) / (2 * width)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return scipy.signal.lfilter(b, den, audio, axis=-1).astype(np.float32)


def _level(audio: np.ndarray, sample_rate: float, level_db: float) -> np.ndarray:
    return (10 ** (level_db / 20) * audio).astype(np.float32)


def _problem():
    bell = BlackBoxProcessor(_bell, [ParameterSpec("centre", 20.0, 8000.0, scale="log"),
                                     ParameterSpec("boost", -12.0, 12.0), ParameterSpec("width", 0.3, 10.0, scale="log")],
                             workers=1, check_determinism=False)
    level = BlackBoxProcessor(_level, [ParameterSpec("level_db", -12.0, 6.0)], workers=1, check_determinism=False)
    graph = Graph()
    source, a, b, out = graph.add("in"), graph.add("level"), graph.add("bell"), graph.add("out")
    graph.connect(source, a)
    graph.connect(a, b)
    graph.connect(b, out)
    processors = {"level": level, "bell": bell}
    plan = compile_render(graph, processors)
    sources = (0.3 * torch.randn(1, 1, SAMPLES, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    hidden = {"level": level.raw_parameters(level_db=[0.0]), "bell": bell.raw_parameters(**{k: [v] for k, v in HIDDEN.items()})}
    with torch.no_grad():
        loss = SpectralLoss(plan(hidden, sources)[0][0], FFT_SIZES)
    return graph, processors, plan, sources, loss


def _fit(search: bool):
    graph, processors, plan, sources, loss = _problem()
    start = {"level": processors["level"].raw_parameters(level_db=[-8.0]),
             "bell": processors["bell"].raw_parameters(**{k: [v] for k, v in PARKED.items()})}
    latent = LatentParameters(start, processors)
    budget = RenderBudget(graph, processors, BUDGET)
    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget, seed=0,
                      options={"starts": 1, "nodes": search})
    with torch.no_grad():
        natural = processors["bell"].natural_parameters(**latent.values()["bell"])
    return result, natural, budget.renders


def test_the_node_search_places_a_bell_that_no_declaration_points_at(one_torch_thread):
    stuck, natural, renders = _fit(search=False)
    assert renders <= BUDGET
    # No band (nothing is declared in Hz): Levenberg-Marquardt, the compass and the profile scan set the level
    # and leave the bell narrow and low.
    assert stuck.final_loss > 0.05 * stuck.initial_loss and float(natural["centre"]) < 200.0
    result, natural, renders = _fit(search=True)
    assert renders <= BUDGET
    assert result.final_loss < 1e-4 * result.initial_loss
    assert float(natural["centre"]) == pytest.approx(HIDDEN["centre"], rel=1e-3)
    assert float(natural["boost"]) == pytest.approx(HIDDEN["boost"], abs=0.02)
    assert float(natural["width"]) == pytest.approx(HIDDEN["width"], rel=1e-3)
