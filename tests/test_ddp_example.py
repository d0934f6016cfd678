"""Training under torch DDP: two gloo processes take the same steps as one process with the whole batch."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_predictor.py"
ARGS = ["--batch", "4", "--samples", "2048", "--dtype", "float64"]
LAST_LINE = r"gradients of all {} rank\(s\) agreed at every step; loss after {} steps: (\d\.\d+) \(.* s per step\)"


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("grafx_dsp")
    spec = importlib.util.spec_from_file_location("ddp_predictor", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _in_process(example, tmp_path, steps, capsys):
    """One process, no DDP, in this interpreter (its seed and thread count restored afterwards)."""
    out = tmp_path / f"one-{steps}.pt"
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        assert example.main(["--steps", str(steps), *ARGS, "--save", str(out)]) == 0
    torch.set_num_threads(threads)
    return torch.load(out), capsys.readouterr().out.strip().splitlines()[-1]


def test_two_gloo_processes_match_one_process_with_the_global_batch(example, tmp_path, capsys):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo backend")
    out = tmp_path / "two.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPUs, wherever the suite runs
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(EXAMPLE), "--steps", "3", *ARGS, "--save", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(out)
    start, _ = _in_process(example, tmp_path, 0, capsys)
    one, single = _in_process(example, tmp_path, 3, capsys)
    loss_two = re.fullmatch(LAST_LINE.format(2, 3), done.stdout.strip().splitlines()[-1])
    loss_one = re.fullmatch(LAST_LINE.format(1, 3), single)
    assert loss_two and loss_one and loss_two[1] == loss_one[1]  # the same loss, to the printed digits
    assert two.keys() == one.keys()
    for key in one:
        if one[key].is_floating_point() and one[key].numel() > 1:
            assert float((one[key] - start[key]).abs().max()) > 1e-5, key  # trained, so agreement means something
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-12)
