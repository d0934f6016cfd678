"""Parameter specs: sigmoid into the range, log scales, defaults, validation."""

import math

import numpy as np
import pytest
import torch

from grafx_core.blackbox import ParameterSpec
from grafx_core.errors import ParameterError


def test_linear_and_log_maps_hit_the_range_ends_and_middle():
    lin = ParameterSpec("gain_db", -24.0, 12.0)
    log = ParameterSpec("cutoff_hz", 20.0, 20000.0, scale="log")
    n = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(lin.to_natural(n), torch.tensor([-24.0, -6.0, 12.0], dtype=torch.float64))
    torch.testing.assert_close(log.to_natural(n), torch.tensor([20.0, math.sqrt(20 * 20000), 20000.0],
                                                               dtype=torch.float64))
    assert lin.default == -6.0 and log.default == pytest.approx(math.sqrt(20 * 20000))
    for spec in (lin, log):
        back = spec.to_normalised(spec.to_natural(torch.linspace(0, 1, 11, dtype=torch.float64)))
        torch.testing.assert_close(back, torch.linspace(0, 1, 11, dtype=torch.float64))


def test_no_raw_value_leaves_the_range():
    spec = ParameterSpec("ratio", 1.0, 20.0, scale="log")
    raw = torch.tensor([-1e6, -50.0, 0.0, 50.0, 1e6])
    natural = spec.to_natural(torch.sigmoid(raw))
    assert bool((natural >= 1.0).all()) and bool((natural <= 20.0).all())


def test_default_raw_maps_back_to_the_default():
    spec = ParameterSpec("attack_ms", 0.1, 100.0, default=10.0, scale="log")
    raw = torch.tensor(spec.default_raw(), dtype=torch.float64)
    assert float(spec.to_natural(torch.sigmoid(raw))) == pytest.approx(10.0, rel=1e-12)
    at_bound = ParameterSpec("mix", 0.0, 1.0, default=0.0)
    assert np.isfinite(at_bound.default_raw())  # pulled 1e-3 inside the range


def test_step_floor_is_64_float32_ulps_of_the_natural_value():
    eps = float(np.finfo(np.float32).eps)
    lin = ParameterSpec("freq", 1000.0, 2000.0)
    floor = lin.step_floor(torch.tensor([0.5], dtype=torch.float64))
    assert float(floor) == pytest.approx(64 * eps * 1500.0 / 1000.0)
    log = ParameterSpec("freq_hz", 20.0, 20000.0, scale="log")
    assert float(log.step_floor(torch.tensor([0.3]))) == pytest.approx(64 * eps / math.log(1000.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="gain db", minimum=0.0, maximum=1.0), "identifier"),
    (dict(name="gain_db", minimum=1.0, maximum=1.0), "minimum < maximum"),
    (dict(name="gain_db", minimum=0.0, maximum=float("inf")), "finite"),
    (dict(name="cutoff_hz", minimum=0.0, maximum=10.0, scale="log"), "log scale needs minimum > 0"),
    (dict(name="gain_db", minimum=0.0, maximum=1.0, scale="exp"), "scale"),
    (dict(name="gain_db", minimum=0.0, maximum=1.0, default=2.0), "outside"),
])
def test_bad_specs_name_the_parameter(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        ParameterSpec(**kwargs)
