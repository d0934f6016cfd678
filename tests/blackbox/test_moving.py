"""Automated black-box controls: per-block values for the effect, a constant curve as the static render,
and gradients by knots against the analytic twin's."""

import numpy as np
import pytest
import torch

from grafx_core import Graph, ParameterError, curve_frames, curve_to_samples, describe, render
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.blackbox.moving import hat_functions

BLOCK = 64


def block_gain(audio, sample_rate, gain_db):
    """A gain that applies an automated value per block of BLOCK samples."""
    gains = 10.0 ** (np.asarray(gain_db, dtype=np.float64) / 20.0)
    if gains.ndim:
        gains = np.repeat(gains, BLOCK)[: audio.shape[-1]]
    return (audio * gains).astype(np.float32)


def processor(**options):
    return BlackBoxProcessor(block_gain, [ParameterSpec("gain_db", -24.0, 24.0, time_varying=True)],
                             control_block=BLOCK, workers=1, **options)


def test_a_time_varying_spec_is_described_as_moving_and_a_constant_curve_renders_the_static_value():
    bb = processor()
    assert describe(bb).time_varying() == (("gain_db",),)
    x = torch.randn(3, 2, 1000, generator=torch.Generator().manual_seed(0))
    raw = bb.raw_parameters(gain_db=torch.tensor([3.0, -6.0, 0.5]))["gain_db"]
    assert torch.equal(bb(x, gain_db=raw), bb(x, gain_db=raw.unsqueeze(-1).expand(3, 1, 1000)))


def test_the_effect_receives_the_curve_at_each_block_start_through_a_render():
    g = Graph()
    g.connect(g.add("in"), g.add("bb", "ride"))
    g.connect(g.nodes_of_type("bb")[0], g.add("out"))
    bb = processor()
    x = torch.randn(1, 1, 700, generator=torch.Generator().manual_seed(1))
    frames = curve_frames(700, 100)
    natural = torch.linspace(-12.0, 6.0, frames, dtype=torch.float64)
    curve = bb.specs[0].to_raw(natural).reshape(1, 1, frames).float()
    y, _ = render(g, {"bb": bb}, {"bb": {"gain_db": curve}}, x, control_hop=100)
    per_sample = curve_to_samples(curve, 700, 100)[0, 0, ::BLOCK]
    db = bb.specs[0].to_natural(torch.sigmoid(per_sample).double()).float()
    expected = x[0] * torch.repeat_interleave(10.0 ** (db.double() / 20.0), BLOCK)[:700].float()
    torch.testing.assert_close(y[0], expected, rtol=1e-5, atol=1e-6)


def test_knot_gradients_match_the_analytic_twin_along_every_knot_at_two_renders_per_knot():
    renders = []

    def counted(audio, sample_rate, gain_db):
        renders.append(1)
        return block_gain(audio, sample_rate, gain_db)

    knots = 6
    bb = BlackBoxProcessor(counted, [ParameterSpec("gain_db", -24.0, 24.0, time_varying=True)], control_block=BLOCK,
                           workers=1, knots=knots, signal_gradient="none", check_determinism=False)
    samples = 1000
    x = torch.randn(2, 1, samples, generator=torch.Generator().manual_seed(2))
    weights = torch.randn(2, 1, samples, generator=torch.Generator().manual_seed(3))
    raw = bb.raw_parameters(gain_db=torch.tensor([2.0, -5.0]))["gain_db"]
    curve = (raw.unsqueeze(-1) + 0.3 * torch.sin(torch.linspace(0.0, 3.0, samples))).detach().requires_grad_()
    (bb(x, gain_db=curve) * weights).sum().backward()
    assert len(renders) == 2 * (1 + 2 * knots)  # two nodes: one forward, two renders per knot
    twin = curve.detach().clone().requires_grad_()
    natural = bb.specs[0].to_natural(torch.sigmoid(twin[:, 0, ::BLOCK]).double())
    gains = torch.repeat_interleave(10.0 ** (natural / 20.0), BLOCK, dim=-1)[:, :samples].unsqueeze(1)
    (x.double() * gains * weights.double()).sum().backward()
    hats = hat_functions(curve.grad[:, 0, ::BLOCK].shape[-1], knots)
    estimate = curve.grad[:, 0, ::BLOCK].double() @ hats.T
    exact = twin.grad[:, 0, ::BLOCK].double() @ hats.T
    cosine = float((estimate * exact).sum() / (estimate.norm() * exact.norm()))
    assert cosine > 0.999
    torch.testing.assert_close(estimate, exact, rtol=2e-2, atol=1e-3 * float(exact.abs().max()))


def test_a_misshapen_automated_control_is_named():
    bb = processor()
    with pytest.raises(ParameterError, match=r"automated parameter 'gain_db' has shape \(2, 1, 5\); expected "
                                             r"\[2, 1, 9\]"):
        bb(torch.zeros(2, 1, 9), gain_db=torch.zeros(2, 1, 5))
