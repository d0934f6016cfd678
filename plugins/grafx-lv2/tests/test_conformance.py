"""Installed LV2 plug-ins pass grafx-core's conformance kit (each skips where it is not installed)."""

from __future__ import annotations

import pytest

from grafx_core.testing import check_processor
from grafx_lv2 import lv2_processor


@pytest.mark.filterwarnings("ignore::grafx_core.estimators.NonDifferentiableParameterWarning")
@pytest.mark.parametrize("name, options", [
    ("dpf_3_band_eq", {"include": ["low", "high", "master"]}),
    ("calf_saturator", {"include": ["drive", "blend", "lp_pre_freq"]}),
    ("lsp_compressor_stereo", {"include": ["at", "rt", "cr", "scm"]}),
])
def test_the_conformance_kit_passes(require, name, options):
    processor = lv2_processor(require(name), **options)
    checks = check_processor(processor, num_samples=1024)
    assert "estimator-agreement" in checks and "batch-consistency" in checks
