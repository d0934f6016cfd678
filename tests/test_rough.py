"""gauss-newton's searches of a rough control (:mod:`grafx_core.fitting._rough`): when they are due, the shifted
grid, the Jacobian that leaves a cusp alone, and a fit whose hidden optimum only the second search finds.

The fit's reference is a black box built so that its optimum and valleys are known in closed form: an unwanted
noise component whose level is ``0.25 + 0.05 cos(10 pi rough)`` (valleys at 0.1, 0.3, ..., 0.9) minus a cusp
at ``rough`` = 0.4, 0.012 of the range wide, that only shows once ``shape`` is near its hidden 0.6. The first
scan of ``rough`` runs while ``shape`` is far off and its grid (0.0256 apart, nearest 0.4102) cannot see the
cusp; the shifted grid samples 0.3974, inside it.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render
from grafx_core.fitting import LatentParameters, RenderBudget, SpectralLoss, optimise
from grafx_core.fitting._rough import RoughWatch, shifted_grid
from grafx_core.fitting import gauss_newton
from grafx_core.fitting._run import Run
from grafx_core.fitting.gauss_newton import _Controls, _fresh_state, _jacobian, _Point, _scan, _search_again

SAMPLES = 4096
OTHER = (0.3 * np.random.default_rng(5).standard_normal(SAMPLES)).astype(np.float32)
HIDDEN = {"rough": 0.4, "shape": 0.6, "gain_db": 0.0}
BUDGET = 450


def _leak(rough: float, shape: float, flat: float = 0.0) -> float:
    """The unwanted noise's level; with ``flat`` > 0, 0.02 more except within ``flat`` of the hidden ``rough``
    (a plug-in's quantised control: the right value's flat narrower than the scan's search steps)."""
    cusp = max(0.0, 1 - abs(rough - 0.4) / 0.012) * np.exp(-(((shape - 0.6) / 0.15) ** 2))
    step = 0.02 * cusp if flat and abs(rough - 0.4) >= flat else 0.0
    return max(0.25 + 0.05 * np.cos(10 * np.pi * rough) - 0.3 * cusp + step, 0.0)


def _box(audio: np.ndarray, sample_rate: float, rough: float, shape: float, gain_db: float,
         flat: float = 0.0) -> np.ndarray:
    out = 10 ** (gain_db / 20) * audio + (shape - 0.6) * audio**2 + _leak(float(rough), float(shape), flat) * OTHER
    return out.astype(np.float32)


def _problem(flat: float = 0.0):
    box = BlackBoxProcessor(partial(_box, flat=flat), [ParameterSpec("rough", 0.0, 1.0), ParameterSpec("shape", 0.0, 1.0),
                                   ParameterSpec("gain_db", -12.0, 12.0)], workers=1, check_determinism=False)
    graph = Graph()
    source, node, out = graph.add("in"), graph.add("box"), graph.add("out")
    graph.connect(source, node)
    graph.connect(node, out)
    plan = compile_render(graph, {"box": box})
    sources = 0.3 * torch.randn(1, 1, SAMPLES, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        target = plan({"box": box.raw_parameters(**{k: [v] for k, v in HIDDEN.items()})}, sources)[0][0]
    return box, graph, plan, sources, SpectralLoss(target, (64, 256, 1024))


def _fit(rough: bool) -> tuple[float, float, dict[str, float]]:
    """Renders to a thousandth of the start loss (inf: never), the final fraction and the fitted settings."""
    box, graph, plan, sources, loss = _problem()
    latent = LatentParameters({"box": box.raw_parameters(rough=[0.8], shape=[0.3], gain_db=[-1.0])}, {"box": box})
    budget = RenderBudget(graph, {"box": box}, BUDGET)
    seen: list[tuple[float, float]] = []

    class _Log:
        def record(self, step: int, value: float, rate: float, seconds: float) -> None:
            seen.append((budget.renders, value))

    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget, seed=0,
                      log=_Log(), options={"rough": rough})
    with torch.no_grad():
        natural = {k: float(v) for k, v in box.natural_parameters(**latent.values()["box"]).items()}
    first = next((renders for renders, value in seen if value <= 1e-3 * result.initial_loss), np.inf)
    return first, result.final_loss / result.initial_loss, natural


def test_the_premise_the_cusp_is_between_the_first_grids_values_and_on_the_shifted_ones():
    first, shifted = shifted_grid(40, 1e-4, 0.0), shifted_grid(40, 1e-4, 0.5)
    assert first == pytest.approx(np.linspace(1e-4, 1 - 1e-4, 40).tolist(), abs=1e-12)
    assert sorted(first + shifted) == pytest.approx(np.linspace(1e-4, 1 - 1e-4, 79).tolist(), abs=1e-12)
    assert min(abs(v - 0.4) for v in first) > 0.01 > 0.003 > min(abs(v - 0.4) for v in shifted)
    # With shape right, the shifted grid's point in the cusp beats every valley floor; the first grid's does not.
    floor = _leak(0.1, 0.6)
    assert min(_leak(v, 0.6) for v in shifted) < 0.5 * floor <= min(_leak(v, 0.6) for v in first)
    with pytest.raises(ValueError, match="count >= 2"):
        shifted_grid(1, 1e-4, 0.0)
    with pytest.raises(ValueError, match="shift"):
        shifted_grid(40, 1e-4, 1.0)


def test_the_second_search_finds_the_cusp_that_the_scan_and_the_compass_miss(one_torch_thread):
    found, fraction, natural = _fit(True)
    missed, stuck, parked = _fit(False)
    assert found < BUDGET and fraction < 1e-4
    assert natural["rough"] == pytest.approx(0.4, abs=1e-3) and natural["shape"] == pytest.approx(0.6, abs=1e-2)
    # Without it the fit stays at a valley's floor of the unwanted noise, as the closed form says it must.
    assert missed == np.inf and stuck > 0.3
    assert min(abs(parked["rough"] - v) for v in (0.1, 0.3, 0.5, 0.7, 0.9)) < 0.01


def test_the_crawl_makes_the_scan_due_and_progress_does_not():
    watch = RoughWatch(window=30, above=0.3, again_window=140)
    for renders in range(0, 61):  # a tenth off every 30 renders: progress
        watch.note(renders, 0.9 ** (renders / 30))
    assert not watch.crawling(60, 0.81, 1.0)
    for renders in range(61, 92):  # 2 % over the next 31: a crawl
        watch.note(renders, 0.81 * (1 - 0.02 * (renders - 60) / 31))
    assert watch.crawling(91, 0.81 * 0.98, 1.0)
    assert not watch.crawling(91, 0.81 * 0.98, 3.0)  # below 0.3 of the first loss: the fit is past gross errors
    assert not watch.crawling(20, 0.99, 1.0)  # not a window's renders yet


def test_the_rough_control_is_searched_again_after_a_stall_at_most_twice():
    watch = RoughWatch(window=30, above=0.3, again_window=140)
    watch.note(0, 1.0)
    watch.scanned(None, 100)
    watch.note(300, 0.5)
    assert not watch.again(300, 0.5, 1.0)  # no rough control was found: nothing to search again
    watch.scanned(3, 100)
    for renders in range(100, 400, 10):
        watch.note(renders, 0.2)
    assert not watch.again(230, 0.2, 1.0)  # under again_window renders since the scan
    assert watch.again(390, 0.2, 1.0) and watch.shift() == 0.5
    watch.searched(390, 0.2, found=True)
    for renders in range(400, 700, 10):
        watch.note(renders, 0.1)
    assert watch.again(690, 0.1, 1.0) and watch.shift() == 0.0
    watch.searched(690, 0.1, found=False)
    watch.note(1000, 0.01)
    assert not watch.again(1000, 0.01, 1.0)  # two searches are the most


def test_a_held_control_costs_no_render_and_gets_no_column():
    box, graph, plan, sources, loss = _problem()
    latent = LatentParameters({"box": box.raw_parameters(rough=[0.3], shape=[0.5], gain_db=[-1.0])}, {"box": box})
    renders = [0]

    def render(parameters):
        renders[0] += 1
        return plan(parameters, sources)[0][0]

    controls = _Controls([p for p in latent.parameters()])
    x = controls.get()
    with torch.no_grad():
        mix = render(latent.values())
    centre = _Point(mix, float(loss(mix)), loss.residuals(mix))
    run = type("_Run", (), {"latent": latent})()
    renders[0] = 0
    full = _jacobian(run, render, loss, controls, x, centre, 0.005)  # type: ignore[arg-type]
    assert renders[0] == 3
    held = _jacobian(run, render, loss, controls, x, centre, 0.005, held=0)  # type: ignore[arg-type]
    assert renders[0] == 5
    assert torch.equal(held.rows[0], torch.zeros_like(held.rows[0]))
    assert torch.equal(held.rows[1:], full.rows[1:])
    assert float(held.step(1e-2)[0]) == 0.0  # the damped step leaves the held control where it is


def _polish(smallest: float) -> tuple[float, float, float]:
    """``_search_again`` from ``rough`` 3e-5 off the hidden value, inside the cusp and outside its 2e-6 flat
    (the others right): the loss before and after, and how far ``rough`` ends from the hidden value (natural
    units)."""
    box, graph, plan, sources, loss = _problem(flat=2e-6)
    latent = LatentParameters({"box": box.raw_parameters(rough=[0.4 + 3e-5], shape=[0.6], gain_db=[0.0])},
                              {"box": box})
    budget = RenderBudget(graph, {"box": box}, 200)
    with budget:
        run = Run(latent, 10**6, None, None, budget, None, 0.0)
        render = budget.counting(lambda p: plan(p, sources)[0][0])
        controls = _Controls(list(latent.parameters()))
        j = [name for _, name, _ in latent.controls()].index("rough")
        with torch.no_grad():
            mix = render(latent.values())
        centre = _Point(mix, float(loss(mix)), loss.residuals(mix))
        watch = RoughWatch(window=8, above=0.3, again_window=140)
        watch.scanned(j, 0.0)
        previous, gauss_newton._POLISH_MIN = gauss_newton._POLISH_MIN, smallest
        try:
            found = _search_again(run, render, loss, controls, centre, _fresh_state(controls.count), watch)
        finally:
            gauss_newton._POLISH_MIN = previous
    with torch.no_grad():
        natural = float(box.natural_parameters(**latent.values()["box"])["rough"])
    return centre.loss, found.loss, abs(natural - 0.4)


def test_a_search_that_finds_no_other_valley_polishes_the_controls_own_down_to_its_flat(one_torch_thread):
    before, after, off = _polish(1e-7)
    assert off < 2e-6 and after < 0.05 * before  # inside the flat: the noise's 0.02 is gone
    # Stopped at the scan's own smallest step (1e-5), the same search stays outside the flat.
    before, coarse, coarse_off = _polish(1e-5)
    assert coarse_off >= 2e-6 and coarse > 10 * after


def _scan_from(rough: float, crawled: bool) -> tuple[float, float, float]:
    """``_scan`` of the box from ``rough`` with ``shape`` far off (the cusp unseen, every valley's floor equal):
    the loss before, the loss it returns, and where ``rough`` ends (normalised)."""
    box, graph, plan, sources, loss = _problem()
    latent = LatentParameters({"box": box.raw_parameters(rough=[rough], shape=[0.3], gain_db=[0.0])}, {"box": box})
    budget = RenderBudget(graph, {"box": box}, 400)
    with budget:
        run = Run(latent, 10**6, None, None, budget, None, 0.0)
        render = budget.counting(lambda p: plan(p, sources)[0][0])
        controls = _Controls(list(latent.parameters()))
        with torch.no_grad():
            mix = render(latent.values())
        centre = _Point(mix, float(loss(mix)), loss.residuals(mix))
        found, control = _scan(run, render, loss, controls, centre, _fresh_state(controls.count), crawled=crawled)
    j = [name for _, name, _ in latent.controls()].index("rough")
    assert control == j  # the scan measured ``rough`` as the control with several valleys
    return centre.loss, found.loss, float(controls.get()[j])


def test_a_crawl_triggered_scan_keeps_the_fit_unless_another_valley_is_a_tenth_lower(one_torch_thread):
    # Just off a valley's floor, every other valley is a little lower, none a tenth: after a failure the scan
    # moves there; after a crawl (the fit still moving) it keeps the fit's point.
    before, moved, where = _scan_from(0.115, crawled=False)
    assert 0.9 * before <= moved < before and min(abs(where - v) for v in (0.3, 0.5, 0.7, 0.9)) < 0.01
    kept_before, kept, kept_where = _scan_from(0.115, crawled=True)
    assert kept == kept_before == before and kept_where == pytest.approx(0.115, abs=1e-3)


def test_a_switch_given_as_a_string_is_refused_not_read_as_true():
    box, graph, plan, sources, loss = _problem()
    latent = LatentParameters({"box": box.raw_parameters(rough=[0.8], shape=[0.3], gain_db=[-1.0])}, {"box": box})
    with pytest.raises(ValueError, match="option 'rough' must be true or false, got 'false'"):
        optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10, "gauss-newton", seed=0,
                 options={"rough": "false"})
