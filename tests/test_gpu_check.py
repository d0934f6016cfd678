"""The prepared GPU command (bench/gpu_check.py) runs its CPU dry run end to end where CUDA is absent."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dry_run_measures_every_section_and_writes_json_and_png(tmp_path, capsys):
    pytest.importorskip("pedalboard", reason="the black-box section uses pedalboard:compressor")
    gpu_check = load_script()
    assert gpu_check.main(["--dry-run", "--no-tests", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    if not torch.cuda.is_available():
        assert printed.splitlines()[0].startswith("no CUDA device here")
    figures = json.loads((tmp_path / "figures.json").read_text())
    sections = ("demo_console", "large_console", "processors", "blackbox_graph", "overlap", "predictor")
    failed = {name: figures[name] for name in sections if not isinstance(figures[name], dict)}
    assert not failed
    for console in ("demo_console", "large_console"):
        assert figures[console]["batched_s"] > 0 and figures[console]["one_by_one_s"] > 0
    assert figures["large_console"]["nodes"] >= gpu_check.DRY.large_nodes
    assert len(figures["processors"]) >= 20 and all(rate > 0 for rate in figures["processors"].values())
    assert figures["predictor"]["step_s"] > 0
    assert (tmp_path / "figures.png").stat().st_size > 0


def test_console_size_reaches_the_asked_node_count():
    gpu_check = load_script()
    tracks = gpu_check.tracks_for_nodes(100)
    assert len(gpu_check.console(tracks)[0]) >= 100 > len(gpu_check.console(tracks - 1)[0])
