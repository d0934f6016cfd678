"""gauss-newton's joint search of a node's controls (:mod:`grafx_core.fitting._node_search`) on a valley that no
one control leaves and no declaration points at.

The reference is independent of any optimiser: the target is rendered from hidden settings of a textbook
peaking biquad (RBJ's cookbook, filtered by ``scipy.signal.lfilter``) whose centre is declared without a unit,
so the band scan (which pairs controls declared in Hz) does not see it; the optimum and its settings are known.
"""

from __future__ import annotations

import pytest
import torch

from grafx_core import Control
from grafx_core.fitting import LatentParameters, RenderBudget, optimise
from grafx_core.fitting._node_search import NodeWatch, node_groups, search_cost, search_nodes

HIDDEN = {"centre": 1500.0, "boost": -6.0, "width": 2.0}
PARKED = {"centre": 60.0, "boost": 1.0, "width": 8.0}  # narrow, low and nearly flat: a wrong valley
BUDGET = 300


def _fit(bell_after_level, search: bool):
    graph, processors, plan, sources, loss = bell_after_level(HIDDEN)
    start = {"level": processors["level"].raw_parameters(level_db=[-8.0]),
             "bell": processors["bell"].raw_parameters(**{k: [v] for k, v in PARKED.items()})}
    latent = LatentParameters(start, processors)
    budget = RenderBudget(graph, processors, BUDGET)
    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget, seed=0,
                      options={"starts": 1, "nodes": search})
    with torch.no_grad():
        natural = processors["bell"].natural_parameters(**latent.values()["bell"])
    return result, natural, budget.renders


def test_the_node_search_places_a_bell_that_no_declaration_points_at(one_torch_thread, bell_after_level):
    stuck, natural, renders = _fit(bell_after_level, search=False)
    assert renders <= BUDGET
    # No band (nothing is declared in Hz): Levenberg-Marquardt, the compass and the profile scan set the level
    # and leave the bell narrow and low.
    assert stuck.final_loss > 0.05 * stuck.initial_loss and float(natural["centre"]) < 200.0
    result, natural, renders = _fit(bell_after_level, search=True)
    assert renders <= BUDGET
    assert result.final_loss < 1e-4 * result.initial_loss
    assert float(natural["centre"]) == pytest.approx(HIDDEN["centre"], rel=1e-3)
    assert float(natural["boost"]) == pytest.approx(HIDDEN["boost"], abs=0.02)
    assert float(natural["width"]) == pytest.approx(HIDDEN["width"], rel=1e-3)


def test_node_groups_gather_each_nodes_continuous_controls_from_the_declarations():
    hz = Control(low=20.0, high=20000.0, unit="Hz", scale="log", unconstrained=True)
    gain = Control(low=-12.0, high=12.0, default=0.0, unit="dB", unconstrained=True)
    mode = Control(low=0.0, high=2.0, values=(0.0, 1.0, 2.0), differentiable=False, unconstrained=True)
    # Two EQ nodes (one tensor per control, [nodes, 1]), a one-control low-pass and an undeclared tensor.
    sizes = [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]
    described = [("eq", hz), ("eq", gain), ("eq", mode), ("lowpass", hz), ("eq", None)]
    assert node_groups(sizes, described) == [(0, 2), (1, 3)]
    # One [nodes, 3] tensor: each row is a node's.
    assert node_groups([(2, 6)], [("comp", gain)]) == [(0, 1, 2), (3, 4, 5)]


def test_the_search_samples_every_node_and_refines_within_its_cost():
    # A separable quadratic bowl per node with its minimum at known places: the search's renders, counted,
    # stay within search_cost, and the best of the pooled samples' refinements lands on the bowl's bottom.
    hidden = torch.tensor([0.2, 0.7, 0.4, 0.9, 0.3, 0.6], dtype=torch.float64)
    groups = [(0, 1), (2, 3, 4)]
    rendered = []

    class Point:
        def __init__(self, y: torch.Tensor) -> None:
            self.residuals = y - hidden
            self.loss = float(self.residuals.square().sum())

    def evaluate(y: torch.Tensor) -> Point:
        rendered.append(y.clone())
        return Point(y)

    from grafx_core.fitting._linear import LinearModel

    def jacobian(y: torch.Tensor, point: Point, indices: list[int]) -> LinearModel:
        rows = torch.zeros(len(indices), len(hidden), dtype=torch.float64)
        for row, j in enumerate(indices):
            rendered.append(y)  # a finite difference's render
            rows[row, j] = 1.0
        return LinearModel(rows, point.residuals)

    x = hidden.clone()
    x[[2, 3, 4]] = torch.tensor([0.95, 0.05, 0.95], dtype=torch.float64)  # node 2 is wrong, node 1 right
    centre = Point(x)
    best, where = search_nodes(evaluate, jacobian, x, centre, groups, 1e-4, lambda: False, seed=3)
    assert len(rendered) <= search_cost(groups)
    assert best.loss < 1e-12 and torch.allclose(where, hidden, atol=1e-6)
    # Only the sampled node's controls moved in each render of the samples.
    for y in rendered:
        assert torch.equal(y[[0, 1]], x[[0, 1]]) or torch.equal(y[[2, 3, 4]], x[[2, 3, 4]])


def test_the_node_search_waits_a_whole_window_after_a_band_scan_and_for_a_persisting_stall():
    watch = NodeWatch(cost=100)
    none = float("-inf")
    assert not watch.due(50, 0.2, 1.0, 900, none)  # nothing a window before yet
    assert not watch.due(150, 0.19, 1.0, 900, 80)  # 0.2 -> 0.19 is a stall, but a band scan ran 70 renders ago
    assert not watch.due(170, 0.19, 1.0, 150, none)  # the search would take over half of what is left
    assert not watch.due(175, 0.19, 0.5, 900, none)  # above 0.3 of the first: gross errors, not a valley
    assert watch.due(180, 0.19, 1.0, 900, 80)
    watch.searched(180, 0.19, found=False)
    assert not watch.due(300, 0.185, 1.0, 700, none)  # a barren search waits for the loss to halve
    assert not watch.due(320, 0.001, 1.0, 700, none)  # at the floor
    assert not watch.due(350, 0.09, 1.0, 600, none)  # halved: progress, not a stall
    assert watch.due(460, 0.089, 1.0, 500, none)
    watch.searched(460, 0.089, found=True)
    assert not watch.due(600, 0.088, 1.0, 400, none)  # at most two searches
