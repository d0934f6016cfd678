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


def test_the_quantiser_runs_the_probe_and_passes_on_what_it_measured():
    import warnings

    from grafx_core.demo.multitrack import synthesise_multitrack
    from grafx_core.estimators import WeakSignalGradientWarning

    processor = pedalboard_processor("bitcrush")
    assert processor.signal_gradient == "auto"
    _, sources = synthesise_multitrack(2, 0.1, 44100, seed=0)
    x = sources.float().clone().requires_grad_()
    raw = {"bit_depth": torch.zeros(2, 1)}  # the middle of 1-16 bits
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (processor(x, **raw) * weights).sum().backward()
    probe = processor.signal_probe
    assert processor.signal_gradient == probe.choice != "none"
    weak = [w for w in seen if issubclass(w.category, WeakSignalGradientWarning)]
    assert bool(weak) != probe.trusted
    # bitcrush is the identity plus quantisation noise: a trusted choice passes on nearly the identity's gradient
    if probe.trusted:
        cosine = torch.nn.functional.cosine_similarity(x.grad.flatten(), weights.flatten(), dim=0)
        assert float(cosine) > 0.9
    assert pedalboard_processor("gsm_full_rate_compressor").signal_gradient == "straight-through"
    assert pedalboard_processor("pitch_shift").gradient_kind == "none"
