"""gauss-newton's joint band scan (:mod:`grafx_core.fitting._valley`) on a bell that one-control moves cannot place.

The reference is independent of any optimiser: the target is rendered from hidden settings of a textbook
peaking biquad (RBJ's cookbook, filtered by ``scipy.signal.lfilter``), so the optimum and its settings are known.
"""

from __future__ import annotations

import pytest
import torch

from grafx_core import Control, ParameterSpec
from grafx_core.fitting import LatentParameters, RenderBudget, optimise
from grafx_core.fitting._valley import Band, StallWatch, bands

HIDDEN = {"frequency_hz": 1500.0, "gain_db": -6.0, "q": 2.0}
PARKED = {"frequency_hz": 60.0, "gain_db": 1.0, "q": 8.0}  # narrow, low and nearly flat: a wrong valley


def _render(plan, sources, processors, loss, level_db: float, **bell: float) -> float:
    settings = {"level": processors["level"].raw_parameters(level_db=[level_db]),
                "bell": processors["bell"].raw_parameters(**{k: [v] for k, v in bell.items()})}
    with torch.no_grad():
        return float(loss(plan(settings, sources)[0][0]))


def _start(processors):
    return {"level": processors["level"].raw_parameters(level_db=[-8.0]),
            "bell": processors["bell"].raw_parameters(**{k: [v] for k, v in PARKED.items()})}


def test_the_parked_bell_is_a_valley_that_no_single_control_leaves(bell_after_level):
    # The premise of the joint scan, measured on the reference itself: from the parked bell (level right), setting
    # any one control to its hidden value raises the loss, and frequency and gain together lower it.
    _, processors, plan, sources, loss = bell_after_level(HIDDEN)
    parked = _render(plan, sources, processors, loss, 0.0, **PARKED)
    for name, value in HIDDEN.items():
        assert _render(plan, sources, processors, loss, 0.0, **{**PARKED, name: value}) > parked, name
    both = {**PARKED, "frequency_hz": HIDDEN["frequency_hz"], "gain_db": HIDDEN["gain_db"]}
    assert _render(plan, sources, processors, loss, 0.0, **both) < 0.8 * parked


def test_the_joint_band_scan_places_a_bell_that_gauss_newton_alone_leaves_parked(one_torch_thread, bell_after_level):
    graph, processors, plan, sources, loss = bell_after_level(HIDDEN)
    fitted = {}
    for scan in (False, True):
        latent = LatentParameters(_start(processors), processors)
        budget = RenderBudget(graph, processors, 300)
        # The node search (tests/test_node_search.py) also finds this bell: off, to test the band scan alone.
        result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget,
                          seed=0, options={"starts": 1, "bands": scan, "nodes": False})
        assert budget.renders <= 300
        with torch.no_grad():
            fitted[scan] = result, processors["bell"].natural_parameters(**latent.values()["bell"])
    stuck, natural = fitted[False]
    # Levenberg-Marquardt and the compass search set the level and leave the bell narrow and low.
    assert stuck.final_loss > 0.05 * stuck.initial_loss and float(natural["frequency_hz"]) < 200.0
    result, natural = fitted[True]
    assert result.final_loss < 1e-4 * result.initial_loss
    assert float(natural["frequency_hz"]) == pytest.approx(HIDDEN["frequency_hz"], rel=1e-3)
    assert float(natural["gain_db"]) == pytest.approx(HIDDEN["gain_db"], abs=0.02)
    assert float(natural["q"]) == pytest.approx(HIDDEN["q"], rel=1e-3)


def test_bands_pair_each_frequency_with_its_own_nodes_other_continuous_controls():
    hz = Control(low=20.0, high=20000.0, unit="Hz", scale="log", unconstrained=True)
    gain = Control(low=-12.0, high=12.0, default=0.0, unit="dB", unconstrained=True)
    q = Control(low=0.1, high=10.0, scale="log", unconstrained=True)  # no default: the middle of its log range
    mode = Control(low=0.0, high=2.0, values=(0.0, 1.0, 2.0), differentiable=False, unconstrained=True)
    # Two EQ nodes (one tensor per control, [nodes, 1]) and a low-pass whose frequency has no partner.
    sizes = [(2, 2), (2, 2), (2, 2), (2, 2), (1, 1)]
    described = [("eq", hz), ("eq", gain), ("eq", mode), ("eq", q), ("lowpass", hz)]
    assert bands(sizes, described) == [Band(0, (2, 6), (0.5, 0.5)), Band(1, (3, 7), (0.5, 0.5))]
    assert bands([(1, 1), (1, 1)], [("eq", hz), ("eq", None)]) == []  # an undeclared control is not a partner


def test_a_stall_is_a_window_without_a_tenth_off_the_loss_between_floor_and_gross_errors():
    watch = StallWatch(window=50)
    for renders, best in ((0, 1.0), (40, 0.25), (60, 0.2), (100, 0.19), (120, 0.185)):
        watch.note(renders, best)
    assert not watch.stalled(40, 0.25, 1.0)  # nothing 50 renders before yet
    assert not watch.stalled(100, 0.19, 1.0)  # 0.25 at render 40 -> 0.19: progress
    assert watch.stalled(120, 0.185, 1.0)  # 0.2 at render 60 -> 0.185: under a tenth off
    assert not watch.stalled(120, 0.185, 0.5)  # above 0.3 of the first: gross errors, not a valley
    assert not watch.stalled(120, 1e-3, 1.0)  # at the floor
    watch.scanned(120, 0.185, found=False)
    for renders in (180, 240):
        watch.note(renders, 0.12)
    assert not watch.stalled(240, 0.12, 1.0)  # a barren scan is not repeated until the loss has halved
    for renders in (300, 360):
        watch.note(renders, 0.09)
    assert watch.stalled(360, 0.09, 1.0)


def test_a_control_named_in_hertz_is_declared_in_hertz_unless_told_otherwise():
    assert ParameterSpec("cutoff_frequency_hz", 20.0, 20000.0).control().unit == "Hz"
    assert ParameterSpec("gain_dB", -12.0, 12.0).control().unit == "dB"
    assert ParameterSpec("f1", 20.0, 14000.0, unit="Hz").control().unit == "Hz"
    assert ParameterSpec("ratio", 1.0, 20.0).control().unit == ""
