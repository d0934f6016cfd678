"""SPSA: unbiased, with the textbook cosine, seeded without touching global RNGs."""

import math

import numpy as np
import pytest
import torch

from grafx_core.errors import EstimatorError
from grafx_core.estimators import SPSA, with_estimator


def per_node_gradients(processor, params, estimator, x, g, signal_gradient="auto"):
    """Exact and estimated VJPs for every node (nodes are independent SPSA problems)."""
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    exact = torch.autograd.grad(processor(x, **leaves), list(leaves.values()), g)
    wrapped = with_estimator(processor, estimator, signal_gradient=signal_gradient)
    estimated = torch.autograd.grad(wrapped(x, **leaves), list(leaves.values()), g)
    return torch.cat([e.flatten(1) for e in exact], 1), torch.cat([e.flatten(1) for e in estimated], 1)


def replicated(params, nodes):
    return {k: v[:1].expand(nodes, *v.shape[1:]).clone() for k, v in params.items()}


def test_mean_over_draws_converges_to_the_true_gradient(analytic):
    # A nonlinear processor (the biquad's poles): the mean over 4000 independent draws of
    # K=1 approaches the exact VJP at the 1/sqrt(draws) rate.
    nodes, gen = 4000, torch.Generator().manual_seed(0)
    params = replicated(analytic.random_biquad(1, gen), nodes)
    x = torch.randn(1, 1, 128, generator=gen).expand(nodes, 1, 128).contiguous()
    g = torch.randn(1, 1, 128, generator=gen).expand(nodes, 1, 128).contiguous()
    exact, est = per_node_gradients(analytic.Biquad(), params, SPSA(samples=1, seed=1), x.double(), g.double())
    truth = exact[0]
    mean = est.mean(0)
    spread = est.std(0).norm() / math.sqrt(nodes)  # standard error of the mean, as a norm
    assert (mean - truth).norm() < 4 * spread
    assert (mean - truth).norm() / truth.norm() < 0.1


@pytest.mark.parametrize("k", [1, 4, 16])
def test_cosine_with_the_truth_follows_sqrt_k_over_k_plus_p_minus_1(analytic, k):
    # For P = 8 FIR taps, E[<g_hat, g>] / sqrt(E|g_hat|^2 |g|^2) = sqrt(K / (K + P - 1)).
    nodes, gen = 1000, torch.Generator().manual_seed(k)
    params = {"taps": 0.3 * torch.randn(nodes, 8, generator=gen)}
    x = torch.randn(nodes, 1, 64, generator=gen)
    g = torch.randn(nodes, 1, 64, generator=gen)
    exact, est = per_node_gradients(analytic.FIR(), params, SPSA(samples=k, seed=k), x, g)
    exact, est = exact.double(), est.double()
    ratio = (est * exact).sum(1).mean() / torch.sqrt((est**2).sum(1).mean() * (exact**2).sum(1).mean())
    assert abs(float(ratio) - math.sqrt(k / (k + 8 - 1))) < 0.04


def test_signal_gradient_is_an_unbiased_vjp(analytic):
    nodes, gen = 2000, torch.Generator().manual_seed(5)
    taps = (0.3 * torch.randn(1, 8, generator=gen)).expand(nodes, 8)
    x0 = torch.randn(1, 1, 16, generator=gen, dtype=torch.float64)
    g = torch.randn(1, 1, 16, generator=gen, dtype=torch.float64).expand(nodes, 1, 16)
    x = x0.expand(nodes, 1, 16).clone().requires_grad_()
    (exact,) = torch.autograd.grad(analytic.FIR()(x, taps=taps.double()), x, g)
    x_est = x0.expand(nodes, 1, 16).clone().requires_grad_()
    wrapped = with_estimator(analytic.FIR(), SPSA(samples=8, seed=3), signal_gradient="spsa")
    (est,) = torch.autograd.grad(wrapped(x_est, taps=taps.double()), x_est, g)
    truth = exact[0].flatten()
    mean = est.flatten(1).mean(0)
    spread = est.flatten(1).std(0).norm() / math.sqrt(nodes)
    assert (mean - truth).norm() < 4 * spread
    # and it multiplies the incoming gradient in: with the same seed, -2 g gives exactly -2 times
    x_again = x0.expand(nodes, 1, 16).clone().requires_grad_()
    again = with_estimator(analytic.FIR(), SPSA(samples=8, seed=3), signal_gradient="spsa")
    (scaled,) = torch.autograd.grad(again(x_again, taps=taps.double()), x_again, -2 * g)
    torch.testing.assert_close(scaled, -2 * est)


def test_seeded_draws_repeat_and_leave_the_global_rngs_alone(analytic):
    params = {"taps": (0.3 * torch.randn(2, 8)).requires_grad_()}
    x, g = torch.randn(2, 1, 32), torch.randn(2, 1, 32)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()

    def gradient(seed):
        wrapped = with_estimator(analytic.FIR(), SPSA(samples=2, seed=seed))
        return torch.autograd.grad(wrapped(x, **params), params["taps"], g)[0]

    first, again, other = gradient(7), gradient(7), gradient(8)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])


def test_successive_calls_draw_fresh_perturbations(analytic):
    estimator = SPSA(samples=1, seed=0)
    wrapped = with_estimator(analytic.FIR(), estimator)
    taps = (0.3 * torch.randn(1, 8)).requires_grad_()
    x, g = torch.randn(1, 1, 32), torch.randn(1, 1, 32)
    a = torch.autograd.grad(wrapped(x, taps=taps), taps, g)[0]
    b = torch.autograd.grad(wrapped(x, taps=taps), taps, g)[0]
    assert not torch.equal(a, b)


def test_2k_renders_per_node_in_one_call(analytic, counting):
    module = counting(analytic.FIR())
    wrapped = with_estimator(module, SPSA(samples=5, seed=0), signal_gradient="none")
    taps = (0.1 * torch.randn(3, 8)).requires_grad_()
    wrapped(torch.randn(3, 1, 64), taps=taps).sum().backward()
    assert module.calls == [3, 3 * 2 * 5]


def test_bad_options_are_rejected():
    with pytest.raises(EstimatorError, match="samples"):
        SPSA(samples=0)
    with pytest.raises(EstimatorError, match="signal_gradient"):
        with_estimator(torch.nn.Identity(), SPSA(), signal_gradient="sideways")
