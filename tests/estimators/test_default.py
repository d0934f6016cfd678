"""The one default estimator rule for black boxes: straight-through, finite differences up to 12 controls, SPSA."""

from __future__ import annotations

import numpy as np
import pytest

from grafx_core import BlackBoxProcessor, ParameterSpec
from grafx_core.estimators import SPSA, FiniteDifference, StraightThrough
from grafx_core.estimators.default import FD_MAX_PARAMETERS, default_estimator, default_estimator_name


def _specs(count: int, fixed: int = 0) -> list[ParameterSpec]:
    return ([ParameterSpec(f"c{k}", 0.0, 1.0) for k in range(count)]
            + [ParameterSpec(f"f{k}", 0.0, 1.0, differentiable=False) for k in range(fixed)])


def _identity(audio: np.ndarray, sample_rate: float, **controls: float) -> np.ndarray:
    return audio


@pytest.mark.parametrize("count, fixed, kind", [(0, 0, StraightThrough), (0, 3, StraightThrough),
                                                (1, 2, FiniteDifference), (FD_MAX_PARAMETERS, 0, FiniteDifference),
                                                (FD_MAX_PARAMETERS + 1, 0, SPSA)])
def test_black_boxes_and_the_rule_agree_on_the_default(count, fixed, kind):
    specs = _specs(count, fixed)
    box = BlackBoxProcessor(_identity, specs, workers=1)
    assert isinstance(box.estimator, kind) and isinstance(default_estimator(specs), kind)
    assert box.gradient_kind == default_estimator_name(specs) == default_estimator_name(count)
    assert box.signal_gradient == "auto"  # the probe decides the input's gradient whatever the rule chose


def test_the_plugins_use_the_cores_rule():
    pedalboard = pytest.importorskip("grafx_pedalboard.estimator")
    lv2 = pytest.importorskip("grafx_lv2.processor")
    assert pedalboard.FD_MAX_PARAMETERS is FD_MAX_PARAMETERS and lv2.FD_MAX_PARAMETERS is FD_MAX_PARAMETERS
    assert pedalboard.default_estimator_name is default_estimator_name
    assert isinstance(default_estimator(_specs(FD_MAX_PARAMETERS + 1)), SPSA)
    assert default_estimator(_specs(FD_MAX_PARAMETERS + 1)).samples == 4
