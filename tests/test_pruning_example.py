"""The over-complete console example prunes nodes without changing its loss."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pruning_console.py"


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("grafx_dsp")
    spec = importlib.util.spec_from_file_location("pruning_console", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pruned_console_keeps_the_fitted_loss(example):
    report = example.run(tracks=2, steps=60, seconds=0.25, seed=1, log_every=0)
    assert report["nodes_after"] < report["nodes_before"]
    assert report["loss_gated"] < 0.5 * report["loss_start"]
    # Training ends on 0/1 gates, so the pruned console renders what was fitted.
    assert report["loss_pruned"] == pytest.approx(report["loss_gated"], rel=1e-4, abs=1e-6)
