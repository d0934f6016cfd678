"""with_estimator: nested parameters, frozen parameters, black boxes, protocol."""

import pytest
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import EstimatorError, ParameterError
from grafx_core.estimators import (
    SPSA,
    FiniteDifference,
    NonDifferentiableParameterWarning,
    StoppedSignalGradientWarning,
    WeakSignalGradientWarning,
    with_estimator,
)


class Tone(torch.nn.Module):
    """Nested parameters: y[t] = a x[t] + b x[t-1] with taps = {"a": [N, 1], "b": {"value": [N, 1]}}."""

    def parameter_size(self):
        return {"taps": {"a": 1, "b": {"value": 1}}}

    def forward(self, x, taps):
        shifted = torch.nn.functional.pad(x, (1, 0))[..., :-1]
        return taps["a"][:, :, None] * x + taps["b"]["value"][:, :, None] * shifted


def test_nested_parameters_get_their_own_gradients():
    a = torch.tensor([[0.5], [1.5]], requires_grad=True)
    b = torch.tensor([[-0.2], [0.7]], requires_grad=True)
    x, g = torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    exact = torch.autograd.grad(Tone()(x, taps={"a": a, "b": {"value": b}}), (a, b), g)
    wrapped = with_estimator(Tone(), FiniteDifference())
    assert wrapped.parameter_size() == Tone().parameter_size() and wrapped.gradient_kind == "finite-difference"
    estimated = torch.autograd.grad(wrapped(x, taps={"a": a, "b": {"value": b}}), (a, b), g)
    for e, t in zip(estimated, exact):
        torch.testing.assert_close(e, t, rtol=1e-3, atol=1e-5)


def test_nested_float64_parameters_render_in_float64():
    # The dtype comes from the nested leaves: a float32 cast would move the output by ~1e-8.
    a = torch.tensor([[0.1], [0.3]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.7], [-0.2]], dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = torch.randn(2, 1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = Tone()(x, taps={"a": a, "b": {"value": b}})
    y_est = with_estimator(Tone(), FiniteDifference())(x, taps={"a": a, "b": {"value": b}})
    assert torch.equal(y_est, y.detach())
    exact = torch.autograd.grad(y, (a, b), g)
    estimated = torch.autograd.grad(y_est, (a, b), g)
    for e, t in zip(estimated, exact):
        torch.testing.assert_close(e, t, rtol=1e-9, atol=1e-12)


def test_frozen_parameters_get_zero_and_a_warning():
    a = torch.tensor([[0.5]], requires_grad=True)
    b = torch.tensor([[0.3]], requires_grad=True)
    wrapped = with_estimator(Tone(), FiniteDifference(), frozen=["taps.b"])
    with pytest.warns(NonDifferentiableParameterWarning, match="'taps.b.value' is not differentiable"):
        y = wrapped(torch.randn(1, 1, 32), taps={"a": a, "b": {"value": b}})
    y.sum().backward()
    assert b.grad.item() == 0.0 and a.grad.item() != 0.0
    with pytest.raises(EstimatorError, match="frozen names"):
        with_estimator(Tone(), FiniteDifference(), frozen=["taps.c"])


def test_misshapen_parameters_are_named():
    wrapped = with_estimator(Tone(), FiniteDifference())
    with pytest.raises(ParameterError, match=r"'taps.a' has shape \(3, 1\); expected \[2, \*\(1,\)\]"):
        wrapped(torch.randn(2, 1, 8), taps={"a": torch.zeros(3, 1), "b": {"value": torch.zeros(2, 1)}})


def test_a_black_box_gets_a_copy_with_the_new_estimator():
    def gain(audio, sample_rate, gain_db):
        return audio * 10 ** (gain_db / 20)

    box = BlackBoxProcessor(gain, [ParameterSpec("gain_db", -6.0, 6.0)], workers=1)
    spsa = with_estimator(box, SPSA(samples=2, seed=0))
    assert isinstance(spsa, BlackBoxProcessor) and spsa.gradient_kind == "spsa" and box.gradient_kind == "finite-difference"
    x = torch.randn(1, 1, 16)
    raw = {"gain_db": torch.tensor([[0.3]])}
    assert torch.equal(spsa(x, **raw), box(x, **raw))


def test_wrapped_modules_settle_auto_or_take_their_declaration():
    wrapped = with_estimator(Tone(), FiniteDifference(seed=0))
    x = torch.randn(1, 1, 512, requires_grad=True, generator=torch.Generator().manual_seed(0))
    taps = {"a": torch.ones(1, 1), "b": {"value": 0.5 * torch.ones(1, 1)}}
    g = torch.randn(1, 1, 512, generator=torch.Generator().manual_seed(1))
    (estimate,) = torch.autograd.grad(wrapped(x, taps=taps), x, g)
    (exact,) = torch.autograd.grad(Tone()(x, taps=taps), x, g)
    assert wrapped.signal_gradient in ("spectral-ratio", "fft-ratio")
    assert torch.nn.functional.cosine_similarity(estimate.flatten(), exact.flatten(), dim=0) > 0.99

    class Declared(Tone):
        signal_gradient = "fft-ratio"

    assert with_estimator(Declared(), FiniteDifference()).signal_gradient == "fft-ratio"
    # reversed drums (reversed white noise keeps its spectrum, and a ratio passes its gradient on well)
    from grafx_core.demo.multitrack import synthesise_multitrack

    drums = synthesise_multitrack(3, 0.25, 44100, seed=0)[1].float()[[0, 2], :1, :8192]
    with pytest.warns((StoppedSignalGradientWarning, WeakSignalGradientWarning), match="measured"):
        reverse = with_estimator(Reverse(), FiniteDifference(seed=0))
        reverse(drums.clone().requires_grad_(), gain=torch.ones(2, 1))


class Reverse(torch.nn.Module):
    def parameter_size(self):
        return {"gain": 1}

    def forward(self, x, gain):
        return torch.flip(x, [-1]) * gain[:, :, None]


def test_several_outlets_are_refused():
    class Split(torch.nn.Module):
        outlets = ("low", "high")

        def parameter_size(self):
            return {}

        def forward(self, x):
            return x, x

    with pytest.raises(EstimatorError, match="one outlet"):
        with_estimator(Split(), FiniteDifference())
