"""Parameter specs: sigmoid into the range, log scales, defaults, validation."""

import math

import numpy as np
import pytest
import torch

from grafx_core.blackbox import MARGIN, BlackBoxProcessor, ParameterSpec
from grafx_core.errors import ParameterError

INNER = torch.linspace(MARGIN, 1 - MARGIN, 11, dtype=torch.float64)


def test_linear_and_log_maps_hit_the_range_ends_and_middle():
    lin = ParameterSpec("gain_db", -24.0, 12.0)
    log = ParameterSpec("cutoff_hz", 20.0, 20000.0, scale="log")
    n = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(lin.to_natural(n), torch.tensor([-24.0, -6.0, 12.0], dtype=torch.float64))
    torch.testing.assert_close(log.to_natural(n), torch.tensor([20.0, math.sqrt(20 * 20000), 20000.0],
                                                               dtype=torch.float64))
    assert lin.default == -6.0 and log.default == pytest.approx(math.sqrt(20 * 20000))
    for spec in (lin, log):
        torch.testing.assert_close(spec.to_normalised(spec.to_natural(INNER)), INNER)


def test_no_raw_value_leaves_the_range():
    spec = ParameterSpec("ratio", 1.0, 20.0, scale="log")
    raw = torch.tensor([-1e6, -50.0, 0.0, 50.0, 1e6])
    natural = spec.to_natural(torch.sigmoid(raw))
    assert bool((natural >= 1.0).all()) and bool((natural <= 20.0).all())


def test_default_raw_maps_back_to_the_default():
    spec = ParameterSpec("attack_ms", 0.1, 100.0, default=10.0, scale="log")
    raw = torch.tensor(spec.default_raw(), dtype=torch.float64)
    assert float(spec.to_natural(torch.sigmoid(raw))) == pytest.approx(10.0, rel=1e-12)


@pytest.mark.parametrize("scale, minimum, maximum", [("linear", 0.0, 1.0), ("log", 0.5, 8.0), ("log", 0.0, 100.0)])
def test_a_default_on_a_bound_is_reached_exactly_from_a_finite_raw_value(scale, minimum, maximum):
    for bound in (minimum, maximum):
        spec = ParameterSpec("mix", minimum, maximum, default=bound, scale=scale)
        raw = spec.default_raw()
        assert np.isfinite(raw) and abs(raw) < 10.0  # logit(MARGIN / 2) = -9.0
        assert float(spec.to_natural(torch.sigmoid(torch.tensor(raw, dtype=torch.float64)))) == bound
    edge = spec.to_natural(torch.tensor([0.0, MARGIN / 2, 1 - MARGIN / 2, 1.0], dtype=torch.float64))
    assert edge.tolist() == [minimum, minimum, maximum, maximum]


def test_finite_differences_see_the_inner_slope_at_a_bound_default():
    spec = ParameterSpec("mix", 0.0, 1.0, default=0.0)
    box = BlackBoxProcessor(lambda audio, sample_rate, mix: audio * np.float32(mix), [spec], workers=1)
    x = torch.linspace(-1.0, 1.0, 64).reshape(1, 1, 64)
    raw = torch.full((1, 1), spec.default_raw(), requires_grad=True)
    y = box(x, mix=raw)
    assert bool((y == 0).all())  # a dry level of exactly 0 at the default
    g = torch.linspace(0.0, 2.0, 64).reshape(1, 1, 64)
    (grad,) = torch.autograd.grad(y, raw, g)
    n = torch.sigmoid(raw.detach().double())
    exact = (x.double() * g.double()).sum() / (1 - 2 * MARGIN) * n * (1 - n)  # d natural / d raw on the inner side
    torch.testing.assert_close(grad.double(), exact.reshape(1, 1), rtol=2e-3, atol=0)


def test_a_log_range_from_zero_is_a_shifted_log_scale():
    spec = ParameterSpec("attack_ms", 0.0, 1000.0, scale="log")
    u = np.linspace(0.0, 1.0, 11)
    reference = 1.0 * (1001.0 ** u - 1.0)  # shift f = 1000 / 1000 = 1 ms: log over [1, 1001] ms, minus 1 ms
    natural = spec.to_natural(torch.tensor(MARGIN + (1 - 2 * MARGIN) * u, dtype=torch.float64))
    np.testing.assert_allclose(natural.numpy(), reference, rtol=1e-12, atol=1e-12)
    assert spec.default == pytest.approx(math.sqrt(1001.0) - 1.0)
    torch.testing.assert_close(spec.to_normalised(spec.to_natural(INNER)), INNER)


def test_discrete_controls_take_exactly_their_values_in_equal_bins():
    spec = ParameterSpec("mode", 0.0, 10.0, default=2.0, values=(0, 1, 2, 10))
    assert not spec.differentiable and spec.discrete
    n = torch.tensor([0.0, 0.2499, 0.25, 0.6, 0.74, 0.75, 1.0], dtype=torch.float64)
    assert spec.to_natural(n).tolist() == [0.0, 0.0, 1.0, 2.0, 2.0, 10.0, 10.0]
    assert spec.to_normalised(torch.tensor([2.0, 9.0], dtype=torch.float64)).tolist() == [0.625, 0.875]
    assert float(spec.to_natural(torch.sigmoid(torch.tensor(spec.default_raw(), dtype=torch.float64)))) == 2.0
    assert spec.describe() == "mode in {0, 1, 2, 10}"


def test_step_floor_is_64_float32_ulps_of_the_natural_value():
    eps = float(np.finfo(np.float32).eps)
    lin = ParameterSpec("freq", 1000.0, 2000.0)
    floor = lin.step_floor(torch.tensor([0.5], dtype=torch.float64))
    stretch = 1 - 2 * MARGIN  # d natural / d normalised is the range over the stretched inner part
    assert float(floor) == pytest.approx(64 * eps * 1500.0 / 1000.0 * stretch)
    log = ParameterSpec("freq_hz", 20.0, 20000.0, scale="log")
    assert float(log.step_floor(torch.tensor([0.3]))) == pytest.approx(64 * eps / math.log(1000.0) * stretch)
    shifted = ParameterSpec("time_ms", 0.0, 1000.0, scale="log")
    n = torch.tensor([0.7], dtype=torch.float64)
    h = float(shifted.step_floor(n))
    moved = float(shifted.to_natural(n + h) - shifted.to_natural(n))
    assert moved == pytest.approx(64 * eps * float(shifted.to_natural(n)), rel=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="gain db", minimum=0.0, maximum=1.0), "identifier"),
    (dict(name="gain_db", minimum=1.0, maximum=1.0), "minimum < maximum"),
    (dict(name="gain_db", minimum=0.0, maximum=float("inf")), "finite"),
    (dict(name="mode", minimum=0.0, maximum=2.0, values=(0, 2, 1)), "increasing"),
    (dict(name="mode", minimum=0.0, maximum=2.0, values=(0, 1)), "from minimum 0 to maximum 2"),
    (dict(name="mode", minimum=0.0, maximum=2.0, values=(0, 1, 2), default=0.5), "not one of its values"),
    (dict(name="mode", minimum=0.0, maximum=2.0, values=(0, 1, 2), differentiable=True), "cannot be differentiable"),
    (dict(name="gain_db", minimum=0.0, maximum=1.0, scale="exp"), "scale"),
    (dict(name="gain_db", minimum=0.0, maximum=1.0, default=2.0), "outside"),
    (dict(name="self", minimum=0.0, maximum=1.0), "reserved by torch's Module call"),
])
def test_bad_specs_name_the_parameter(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        ParameterSpec(**kwargs)
