"""Finite differences against autograd on analytic processors."""

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_core.blackbox import MARGIN, BlackBoxProcessor, ParameterSpec
from grafx_core.errors import EstimatorError
from grafx_core.estimators import SPSA, FiniteDifference, with_estimator


def exact_and_estimated(processor, params, estimator, x, g):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    y = processor(x, **leaves)
    exact = torch.autograd.grad(y, list(leaves.values()), g)
    wrapped = with_estimator(processor, estimator)
    y_est = wrapped(x, **leaves)
    estimated = torch.autograd.grad(y_est, list(leaves.values()), g)
    return y, y_est, exact, estimated


def test_biquad_reference_equals_lfilter(analytic):
    g = torch.Generator().manual_seed(1)
    params = analytic.random_biquad(2, g)
    x = torch.randn(2, 1, 512, generator=g, dtype=torch.float64)
    y = analytic.Biquad()(x, **{k: v.double() for k, v in params.items()})
    for n in range(2):
        a = np.concatenate([[1.0], params["a"][n].double().numpy()])
        ref = scipy.signal.lfilter(params["b"][n].double().numpy(), a, x[n, 0].numpy())
        np.testing.assert_allclose(y[n, 0].numpy(), ref, atol=1e-9)


@pytest.mark.parametrize("name", ["gain", "tanh", "fir", "biquad"])
def test_central_differences_match_autograd_within_1e_3_in_float32(cases, name):
    processor, params = next((p, q) for n, p, q in cases if n == name)
    gen = torch.Generator().manual_seed(2)
    x = 0.5 * torch.randn(3, 2, 2048, generator=gen)
    g = torch.randn(3, 2, 2048, generator=gen)  # a random incoming gradient: a true VJP multiplies it in
    y, y_est, exact, estimated = exact_and_estimated(processor, params, FiniteDifference(), x, g)
    assert torch.equal(y_est, y.detach())
    for e, a in zip(estimated, exact):
        rel = ((e - a).abs() / a.abs().clamp(min=1e-3 * a.abs().max())).max()
        assert rel < 1e-3


@pytest.mark.parametrize("name", ["gain", "tanh", "fir"])
def test_forward_differences_match_autograd_to_first_order(cases, name):
    processor, params = next((p, q) for n, p, q in cases if n == name)
    gen = torch.Generator().manual_seed(3)
    x = 0.5 * torch.randn(3, 2, 1024, generator=gen)
    g = torch.randn(3, 2, 1024, generator=gen)
    _, _, exact, estimated = exact_and_estimated(processor, params, FiniteDifference(mode="forward"), x, g)
    for e, a in zip(estimated, exact):
        assert ((e - a).norm() / a.norm()) < 5e-3


@pytest.mark.parametrize("mode, per_param", [("central", 2), ("forward", 1)])
def test_all_perturbed_renders_go_in_one_batched_call(analytic, counting, mode, per_param):
    module = counting(analytic.FIR())
    wrapped = with_estimator(module, FiniteDifference(mode=mode))
    taps = (0.1 * torch.randn(3, 8)).requires_grad_()
    wrapped(torch.randn(3, 1, 64), taps=taps).sum().backward()
    assert module.calls == [3, 3 * 8 * per_param]  # forward, then every perturbed row at once


def test_gradient_scales_with_the_incoming_gradient(analytic):
    wrapped = with_estimator(analytic.TanhDistortion(), FiniteDifference())
    drive = torch.full((2, 1), 6.0, requires_grad=True)
    x = torch.randn(2, 1, 256)
    y = wrapped(x, drive_db=drive)
    g = torch.randn_like(y)
    (g1,) = torch.autograd.grad(y, drive, g, retain_graph=True)
    (g3,) = torch.autograd.grad(y, drive, -3 * g)
    torch.testing.assert_close(g3, -3 * g1)


def _linear_box(minimum, maximum, seen):
    def effect(audio, sample_rate, value):
        seen.append(value)
        return audio * np.float32(value)

    # No first-use check: the tests count the estimator's own renders.
    return BlackBoxProcessor(effect, [ParameterSpec("value", minimum, maximum)], workers=1, check_determinism=False)


@pytest.mark.parametrize("at", [0.0, 1.0])
def test_one_sided_at_a_range_bound_and_never_outside_it(at):
    seen = []
    box = _linear_box(2.0, 4.0, seen)
    x = torch.linspace(-1, 1, 100).reshape(1, 1, 100)
    p = torch.full((1, 1), at, requires_grad=True)
    y = FiniteDifference().apply(box.render_target(), (x,), p)
    (grad,) = torch.autograd.grad(y, p, torch.ones_like(y))
    assert min(seen) >= 2.0 and max(seen) <= 4.0
    assert len(seen) == 2  # the forward render and one perturbed render: one-sided
    # The value is 2 + 2 (p - MARGIN) / (1 - 2 MARGIN) inside the margins: d/dp of x * value summed over x.
    expected = 2.0 * x.sum() / (1 - 2 * MARGIN)
    torch.testing.assert_close(grad, expected.reshape(1, 1).to(torch.float32), rtol=1e-5, atol=1e-5)


def test_divides_by_the_step_the_float32_effect_really_saw():
    # Around 1000 a float32 value moves in steps of 6.1e-5: a nominal step of 1e-3 of the range
    # [1000, 1001] is rounded by up to 3%; dividing by the realised step keeps the slope exact.
    seen = []
    box = _linear_box(1000.0, 1001.0, seen)
    x = torch.ones(1, 1, 8)
    p = torch.tensor([[0.37]], requires_grad=True)
    y = FiniteDifference().apply(box.render_target(), (x,), p)
    (grad,) = torch.autograd.grad(y, p, torch.ones_like(y))
    assert all(np.float32(v) == v for v in seen)
    torch.testing.assert_close(grad, torch.tensor([[8.0 / (1 - 2 * MARGIN)]]), rtol=1e-6, atol=0)


def test_step_floor_keeps_a_coarse_float32_parameter_changing():
    # At 1e5 float32 steps are 7.8e-3: a 1e-3 normalised step (0.01) would be one ulp; the floor enlarges it.
    seen = []
    box = _linear_box(1e5, 1e5 + 10, seen)
    x = torch.ones(1, 1, 4)
    p = torch.tensor([[0.5]], requires_grad=True)
    y = FiniteDifference().apply(box.render_target(), (x,), p)
    (grad,) = torch.autograd.grad(y, p, torch.ones_like(y))
    assert max(seen) - min(seen) > 0.4  # 64 ulps either side, not 1
    torch.testing.assert_close(grad, torch.tensor([[40.0 / (1 - 2 * MARGIN)]]), rtol=1e-6, atol=0)


def test_bad_options_are_rejected():
    with pytest.raises(EstimatorError, match="mode"):
        FiniteDifference(mode="backward")
    with pytest.raises(EstimatorError, match="step"):
        FiniteDifference(step=-1.0)
    with pytest.raises(EstimatorError, match="step"):
        FiniteDifference(step=0.5)


@pytest.mark.parametrize("estimator", [FiniteDifference(), SPSA(seed=0)])
def test_a_step_rounded_away_names_the_node_parameter_and_value(analytic, estimator):
    # bfloat16 moves in steps of 1.6e-2 around 3: a 1e-3 step leaves the parameter where it was.
    wrapped = with_estimator(analytic.Gain(), estimator)
    gain = torch.tensor([[0.5], [3.0]], dtype=torch.bfloat16, requires_grad=True)
    y = wrapped(torch.randn(2, 1, 8), gain_db=gain)
    with pytest.raises(EstimatorError, match=r"Gain, node row 1: .* parameter 'gain_db' at 3 is rounded away"):
        y.sum().backward()
