"""Every pedalboard processor passes grafx-core's conformance kit.

For processors with estimated gradients the kit compares the estimate with
its own central finite differences in raw parameter units (cosine >= 0.99 and
norms within 10% for finite differences; cosine >= 0.7 averaged over repeats
for SPSA).
"""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import torch

from grafx_core.testing import check_processor
from grafx_pedalboard import EFFECTS, pedalboard_chain, pedalboard_processor

pytestmark = pytest.mark.filterwarnings("ignore::grafx_core.estimators.NonDifferentiableParameterWarning")

IMPULSE = np.exp(-np.arange(500) / 80.0) * np.random.default_rng(5).standard_normal(500) * 0.2


def conform(processor) -> list[str]:
    # The kit exempts the controls the processor declares non-differentiable by itself. Its reference
    # differences step raw values by 3e-3 rather than 1e-3: pedalboard holds parameters as float32, and at
    # 1e-3 the shelf filters' reference moved by 10% when the raw-to-natural map changed by one float32 ulp
    # (seeds 0-3 all agree at 3e-3). Its streaming check starts with a 1-sample block, which JUCE effects
    # (pedalboard) do not render as one call renders them (per-call smoothing and preparation);
    # test_stream.py checks blocks of 37 and more.
    return check_processor(processor, fd_step=3e-3, skip=["streaming"])


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_every_effect_conforms(name):
    processor = pedalboard_processor(name, **({"impulse_response": IMPULSE} if name == "convolution" else {}))
    ran = conform(processor)
    if any(s.differentiable for s in processor.specs):
        assert "estimator-agreement" in ran


def test_a_whole_board_conforms_with_spsa():
    board = pedalboard.Pedalboard([pedalboard.Compressor(-20, 3), pedalboard.PeakFilter(1500, 4, 1),
                                   pedalboard.Distortion(6), pedalboard.Reverb(), pedalboard.Gain(-2)])
    processor = pedalboard_chain(board)
    assert processor.gradient_kind == "spsa"
    assert "estimator-agreement" in conform(processor)


def test_codecs_and_quantisers_pass_the_signal_gradient_straight_through():
    processor = pedalboard_processor("bitcrush")
    x = torch.randn(2, 2, 512, requires_grad=True)
    raw = {"bit_depth": torch.zeros(2, 1)}
    weights = torch.randn(2, 2, 512)
    (processor(x, **raw) * weights).sum().backward()
    torch.testing.assert_close(x.grad, weights)
    assert pedalboard_processor("pitch_shift").gradient_kind == "none"
