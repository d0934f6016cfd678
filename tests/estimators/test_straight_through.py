"""Straight-through: the true forward, exactly the surrogate's VJP backward."""

import numpy as np
import pytest
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import EstimatorError
from grafx_core.estimators import StraightThrough, with_estimator


class Quantiser(torch.nn.Module):
    """A gain followed by 4-bit rounding: zero gradient almost everywhere."""

    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return torch.round(x * 10 ** (gain_db[:, :, None] / 20) * 8) / 8


def smooth_gain(x, gain_db):
    return x * 10 ** (gain_db[:, :, None] / 20)


def test_forward_is_the_effect_backward_is_the_surrogates_vjp():
    x = torch.randn(3, 2, 100, requires_grad=True)
    gain = torch.randn(3, 1, requires_grad=True)
    g = torch.randn(3, 2, 100)
    y = with_estimator(Quantiser(), StraightThrough(smooth_gain))(x, gain_db=gain)
    assert torch.equal(y, Quantiser()(x, gain_db=gain).detach())
    grad_x, grad_gain = torch.autograd.grad(y, (x, gain), g)
    (expected_gain,) = torch.autograd.grad(smooth_gain(x, gain), gain, g)
    assert torch.equal(grad_gain, expected_gain)
    assert torch.equal(grad_x, g)  # identity for the signal by default


def test_signal_surrogate_gives_the_surrogates_signal_vjp_too():
    x = torch.randn(2, 1, 50, requires_grad=True)
    gain = torch.full((2, 1), 6.0, requires_grad=True)
    g = torch.randn(2, 1, 50)
    wrapped = with_estimator(Quantiser(), StraightThrough(smooth_gain, signal_surrogate=True))
    got = torch.autograd.grad(wrapped(x, gain_db=gain), (x, gain), g)
    expected = torch.autograd.grad(smooth_gain(x, gain), (x, gain), g)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_black_box_surrogate_receives_natural_units_and_the_chain_reaches_raw_values():
    def crush(audio, sample_rate, gain_db):
        return np.round(audio * 10 ** (gain_db / 20) * 8) / 8

    def surrogate(x, gain_db):
        return x * 10 ** (gain_db[:, None, None] / 20)

    box = BlackBoxProcessor(crush, [ParameterSpec("gain_db", -12.0, 12.0, 0.0)], estimator=StraightThrough(surrogate))
    raw = box.raw_parameters(gain_db=[3.0, -4.0])["gain_db"].requires_grad_()
    x = torch.randn(2, 1, 64)
    g = torch.randn(2, 1, 64)
    y = box(x, gain_db=raw)
    (got,) = torch.autograd.grad(y, raw, g)
    (expected,) = torch.autograd.grad(surrogate(x, **box.natural_parameters(gain_db=raw)), raw, g)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_no_surrogate_is_an_error_when_parameters_want_a_gradient():
    wrapped = with_estimator(Quantiser(), StraightThrough())
    with pytest.raises(EstimatorError, match="no surrogate for the parameters"):
        wrapped(torch.randn(1, 1, 8), gain_db=torch.zeros(1, 1, requires_grad=True))
    # without parameter gradients it is the identity for the signal
    x = torch.randn(1, 1, 8, requires_grad=True)
    y = wrapped(x, gain_db=torch.zeros(1, 1))
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.equal(grad, torch.ones_like(x))


def test_surrogate_of_the_wrong_shape_is_named():
    wrapped = with_estimator(Quantiser(), StraightThrough(lambda x, gain_db: x[:, :, :4] * gain_db[:, :, None]))
    gain = torch.zeros(1, 1, requires_grad=True)
    y = wrapped(torch.randn(1, 1, 8), gain_db=gain)
    with pytest.raises(EstimatorError, match="surrogate returned"):
        y.sum().backward()


def test_identity_signal_gradient_needs_matching_shapes():
    class Mono(torch.nn.Module):
        def parameter_size(self):
            return {}

        def forward(self, x):
            return x.mean(1, keepdim=True)

    wrapped = with_estimator(Mono(), StraightThrough())
    with pytest.raises(EstimatorError, match="output shape"):
        wrapped(torch.randn(1, 2, 8, requires_grad=True))
