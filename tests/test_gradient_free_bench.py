"""bench/gradient_free.py reads saved runs as they are: a stopped run is starred, a run saved twice refused."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gradient_free.py"


def _bench():
    spec = importlib.util.spec_from_file_location("gradient_free_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(seed: int, losses: list[float], step: int, budget: int, stopped: str, contender: str = "gauss-newton") -> dict:
    """A saved run whose loss (start 1.0) is ``losses[i]`` after ``(i + 1) * step`` renders."""
    trace = [[step * (i + 1), loss, float(i), 0.1] for i, loss in enumerate(losses)]
    return {"problem": "console", "contender": contender, "seed": seed, "budget": budget, "initial": 1.0,
            "final": min(losses), "renders": trace[-1][0], "stopped": stopped, "seconds": float(len(losses)),
            "error": 0.1, "floor": 1e-5, "trace": trace}


def test_a_stopped_run_is_starred_where_it_fell_short_and_named_with_its_renders():
    bench = _bench()
    whole = _run(0, [0.8, 0.5, 0.3, 0.2, 0.1], 100, 500, "completed")
    stopped = _run(1, [0.9, 0.6, 0.4], 100, 500, "interrupted")  # reached 300 of 500 renders
    free = _run(0, [0.7, 0.6, 0.5, 0.45, 0.45], 100, 500, "completed", "cma-es")
    lines = bench.table([whole, stopped, free], [200, 500])
    row = next(line for line in lines if line.startswith("gauss-newton"))
    cells = row[34:].split("s")
    # At 200 renders both runs got there: median of 0.5 and 0.6, not starred.
    assert cells[0].split()[0] == "0.55000" and "*" not in cells[1][:2]
    # At 500 the stopped run counts with its best within 300 renders (0.4), never extrapolated, and is starred.
    assert cells[1].split()[0] == "0.25000" and row.endswith("*")
    note = next(line for line in lines if line.lstrip().startswith("*"))
    assert "seed 1" in note and "300 of 500 renders" in note and "0.40000" in note
    verdict = next(line for line in lines if line.lstrip().startswith("gauss-newton: reaches"))
    assert "reaches it at 300 renders" in verdict and "300 (seed 1, stopped)" in verdict


def test_runs_saved_before_runs_recorded_how_they_stopped_read_as_whole():
    bench = _bench()
    old = _run(0, [0.8, 0.5], 100, 200, "completed")
    del old["stopped"]
    lines = bench.table([old], [200])
    assert not any("*" in line for line in lines)


def test_loading_two_runs_of_one_seed_and_budget_names_both_files(tmp_path):
    bench = _bench()
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([_run(0, [0.8, 0.5], 100, 200, "completed")]))
    second.write_text(json.dumps([_run(0, [0.7, 0.4], 100, 200, "completed"), _run(1, [0.7], 100, 200, "completed")]))
    with pytest.raises(SystemExit, match=r"b\.json and .*a\.json both hold gauss-newton on console, seed 0, budget 200"):
        bench.load_runs([str(first), str(second)])
    assert [r["seed"] for r in bench.load_runs([str(second)])] == [0, 1]
