"""Training under torch DDP: two gloo processes take the same steps as one process with the whole batch."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_predictor.py"


def _run(tmp_path, name, launcher):
    out = tmp_path / f"{name}.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPUs, wherever the suite runs
    done = subprocess.run([sys.executable, *launcher, str(EXAMPLE), "--steps", "3", "--batch", "4",
                           "--samples", "2048", "--dtype", "float64", "--save", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out), done.stdout.strip().splitlines()[-1]


def test_two_gloo_processes_match_one_process_with_the_global_batch(tmp_path):
    pytest.importorskip("grafx_dsp")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo backend")
    two, last = _run(tmp_path, "two", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    one, single = _run(tmp_path, "one", [])
    pattern = r"gradients of all {} rank\(s\) agreed at every step; loss after 3 steps: (\d\.\d+) \(.* s per step\)"
    loss_two = re.fullmatch(pattern.format(2), last)
    loss_one = re.fullmatch(pattern.format(1), single)
    assert loss_two and loss_one and loss_two[1] == loss_one[1]  # the same loss, to the printed digits
    start = _initial_state()
    for key in one:
        moved = float((one[key] - start[key]).abs().max())
        assert moved > 1e-4, key  # training moved every tensor, so agreement is not trivial
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-12)


def _initial_state():
    """The predictor the example starts from (it seeds torch with --seed, 0, before building it)."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import ddp_predictor
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    return ddp_predictor.BandPredictor().to(torch.float64).state_dict()
