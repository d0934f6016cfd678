"""The compressor at the edges of its ranges: ratio 1 (no compression) and infinite times."""

import pytest
import torch
from grafx_core import ParameterError

import grafx_dsp as dsp


def _loud_signal_and_parameters(ratio: float):
    gen = torch.Generator().manual_seed(0)
    x = 0.8 * torch.randn(2, 1, 3000, generator=gen, dtype=torch.float64)
    params = {k: v.to(torch.float64) for k, v in dsp.Compressor().default_parameters(2).items()}
    params["ratio"] = torch.full((2, 1), ratio, dtype=torch.float64, requires_grad=True)
    return x, params


def test_the_ratio_gradient_at_ratio_1_is_non_zero_and_matches_finite_differences():
    compressor = dsp.Compressor()
    x, params = _loud_signal_and_parameters(1.0)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(ratio: torch.Tensor) -> torch.Tensor:
        return (compressor(x, **{**params, "ratio": ratio}) * weights).sum()

    (grad,) = torch.autograd.grad(loss(params["ratio"]), params["ratio"])
    assert bool((grad.abs() > 1.0).all())  # the signal is far above the -20 dB threshold
    step = 1e-6
    for row in range(2):
        bump = torch.zeros(2, 1, dtype=torch.float64)
        bump[row] = step
        with torch.no_grad():
            central = (loss(params["ratio"] + bump) - loss(params["ratio"] - bump)) / (2 * step)
        assert float(grad[row, 0]) == pytest.approx(float(central), rel=1e-6)
    # Ratio 1 means no compression: unity gain (makeup 0 dB) to rounding.
    with torch.no_grad():
        torch.testing.assert_close(compressor(x, **params), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, value", [("attack_ms", float("inf")), ("release_ms", float("-inf")),
                                         ("threshold_db", float("nan"))])
def test_a_non_finite_parameter_is_a_named_error(name, value):
    x, params = _loud_signal_and_parameters(4.0)
    params[name] = params[name].clone()
    params[name][1] = value
    with pytest.raises(ParameterError, match=rf"Compressor: parameter '{name}' is {value} at node row 1"):
        dsp.Compressor()(x, **params)
