"""The style-transfer example: its black-box chain renders what its autograd chain does, and it trains."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "style_transfer.py"


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("grafx_dsp")
    spec = importlib.util.spec_from_file_location("style_transfer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["style_transfer"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["style_transfer"]


@pytest.mark.usefixtures("one_torch_thread")
def test_black_box_and_autograd_predictors_start_alike_and_render_alike(example):
    task = example.make_task(seconds=0.25, batch_size=2, audio_seconds=2.0)
    autograd = example.dsp_processors()
    boxes = example.black_box_processors(lambda node_type: "finite-difference", "straight-through")
    test = task.test_set(count=3)
    a = task.evaluate(example.make_predictor(task, autograd), autograd, test)
    b = task.evaluate(example.make_predictor(task, boxes), boxes, test)
    assert a == pytest.approx(b, rel=1e-4)
    assert task.untreated_loss(test) > 0


@pytest.mark.usefixtures("one_torch_thread")
def test_the_example_lowers_the_test_loss(example):
    report = example.run(steps=12, seconds=0.25, batch_size=4, learning_rate=3e-3, progress=False)
    assert report["after"] < 0.7 * report["before"], report
