"""The one map between a control's values and an unconstrained space (grafx_core.unconstrained)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxProcessor, Control, ParameterSpec, describe
from grafx_core.fitting import LatentParameters
from grafx_core.unconstrained import (
    MARGIN,
    START_EDGE,
    from_unconstrained,
    to_unconstrained,
    trainable_start,
)

CONTROLS = [
    Control(low=-24.0, high=12.0, unit="dB"),
    Control(low=20.0, high=20000.0, unit="Hz", scale="log"),
    Control(low=0.0, high=100.0, unit="ms", scale="log"),  # a log range from 0: shifted log
]


@pytest.mark.parametrize("control", CONTROLS, ids=["linear", "log", "shifted-log"])
def test_range_enforcing_map_round_trips_hits_both_bounds_exactly_and_never_leaves_the_range(control):
    inside = torch.linspace(control.low, control.high, 101, dtype=torch.float64)
    back = from_unconstrained(control, to_unconstrained(control, inside))
    torch.testing.assert_close(back, inside, rtol=1e-9, atol=1e-9)
    assert float(back[0]) == control.low and float(back[-1]) == control.high
    wild = torch.tensor([-1e6, -40.0, 0.0, 40.0, 1e6], dtype=torch.float64)
    natural = from_unconstrained(control, wild)
    assert bool((natural >= control.low).all()) and bool((natural <= control.high).all())


def test_open_map_reads_the_declared_scale_and_unit_not_the_name():
    log = Control(low=20.0, high=20000.0, scale="log")
    decibels = Control(low=-24.0, high=24.0, unit="dB")
    value = torch.tensor([440.0, 6.0], dtype=torch.float64)
    assert float(to_unconstrained(log, value[:1], enforce_range=False)) == pytest.approx(math.log(440.0))
    assert float(to_unconstrained(decibels, value[1:], enforce_range=False)) == pytest.approx(1.0)
    for control in (log, decibels):
        raw = to_unconstrained(control, value, enforce_range=False)
        torch.testing.assert_close(from_unconstrained(control, raw, enforce_range=False), value)


def test_a_start_on_a_bound_is_pulled_out_of_the_sigmoids_tail_and_others_are_kept():
    control = Control(low=0.0, high=1.0)
    raw = to_unconstrained(control, torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64))
    assert float(raw[0]) == pytest.approx(math.log(MARGIN / 2 / (1 - MARGIN / 2)))  # ~ -9: a dead tail
    start = trainable_start(control, raw)
    unit = torch.sigmoid(start)
    assert float(unit[0]) == pytest.approx(START_EDGE) and float(unit[2]) == pytest.approx(1 - START_EDGE)
    assert float(start[1]) == float(raw[1])


def _blend(audio, sample_rate, mix):
    return ((1.0 - mix) * audio + mix * np.tanh(4.0 * audio)).astype(np.float32)


def test_a_black_box_control_whose_default_sits_on_its_bound_moves_when_fitted():
    """The integrator's Calf Saturator case: mix and blend started on a bound and never moved in 100 steps."""
    box = BlackBoxProcessor(_blend, [ParameterSpec("mix", 0.0, 1.0, default=1.0)], workers=1)
    assert describe(box).control("mix").default == 1.0
    x = 0.5 * torch.randn(1, 1, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = box(x, mix=box.raw_parameters(mix=0.5)["mix"])
    start = {"box": {"mix": torch.tensor([[box.specs[0].default_raw()]])}}
    latent = LatentParameters(start, {"box": box})
    optimiser = torch.optim.Adam(latent.parameters(), lr=0.1)
    for _ in range(60):
        optimiser.zero_grad()
        loss = (box(x, **latent.values()["box"]) - target).square().mean()
        loss.backward()
        optimiser.step()
    mix = float(box.natural_parameters(**latent.detached()["box"])["mix"].detach())
    assert abs(mix - 0.5) < 0.05, f"mix moved from 1.0 to {mix} only"


def test_a_nodes_control_value_does_not_depend_on_how_many_nodes_share_its_stage():
    received: list[float] = []

    def record(audio, sample_rate, cutoff_hz):
        received.append(cutoff_hz)
        return audio

    box = BlackBoxProcessor(record, [ParameterSpec("cutoff_hz", 20.0, 20000.0, scale="log")], workers=1,
                            check_determinism=False)
    raw = torch.randn(257, 1, generator=torch.Generator().manual_seed(3)) * 3
    alone = []
    for row in raw:
        received.clear()
        box(torch.zeros(1, 1, 8), cutoff_hz=row[None])
        alone.append(received[0])
    for rows in (2, 7, 64, 257):
        received.clear()
        box(torch.zeros(rows, 1, 8), cutoff_hz=raw[:rows])
        assert received == alone[:rows], f"a stage of {rows} nodes gave other values than one node each"
