"""Scaling out: the Ray runner against the thread pool, and DDP with 2 processes against 1.

Run: ``python bench/scale.py``. All in one run, side by side:

1. Ray runner vs thread pool on a local Ray cluster (2 workers, 2 threads),
   one forward call of ``ITEMS`` items: the per-item overhead for a cheap
   effect (a gain, microseconds per item) and the ratio for a costly one
   (IIR filtering of 2 s stereo, which releases the GIL), then a sweep of an
   effect that holds the GIL (a Python loop of adjustable cost), for which
   threads run one item at a time and Ray's processes do not: the item cost
   at which Ray starts to win is the break-even.
2. ``examples/ddp_predictor.py`` with 2 gloo processes vs 1 on the same
   global batch: seconds per training step.

Times are minima over interleaved repeats. Without ``ray`` installed part 1
says so and part 2 still runs.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec

from _timing import best as interleaved_best  # bench/ is the script's folder, on sys.path

ITEMS = 32
REPEATS = 5
best = partial(interleaved_best, repeats=REPEATS)
GAIN = [ParameterSpec("gain_db", -12.0, 12.0)]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_predictor.py"


def gain(audio: np.ndarray, sample_rate: float, gain_db: float) -> np.ndarray:
    return audio * np.float32(10 ** (gain_db / 20))


def filtered(audio: np.ndarray, sample_rate: float, gain_db: float) -> np.ndarray:
    """Eight cascaded lowpass biquads over the item (scipy releases the GIL)."""
    sos = scipy.signal.butter(16, 2000.0, fs=sample_rate, output="sos")
    return scipy.signal.sosfilt(sos, audio, axis=-1) * 10 ** (gain_db / 20)


def python_loop(cost_ms: float) -> Callable[..., np.ndarray]:
    """An effect that holds the GIL for about ``cost_ms`` per item (a Python loop)."""
    rounds = max(1, int(cost_ms * _ROUNDS_PER_MS))

    def effect(audio: np.ndarray, sample_rate: float, gain_db: float) -> np.ndarray:
        acc = 0.0
        for k in range(rounds):
            acc += k * 1e-12
        return audio * np.float32(10 ** (gain_db / 20) + acc * 0.0)

    return effect


def _calibrate() -> float:
    start = time.perf_counter()
    acc = 0.0
    for k in range(200_000):
        acc += k * 1e-12
    return 200_000 / ((time.perf_counter() - start) * 1e3)


_ROUNDS_PER_MS = _calibrate()



def side_by_side(effect: Callable[..., np.ndarray], x: torch.Tensor) -> dict[str, float]:
    raw = {"gain_db": torch.linspace(-1, 1, x.shape[0])[:, None]}
    boxes = {"threads": BlackBoxProcessor(effect, GAIN, workers=2, check_determinism=False),
             "ray": BlackBoxProcessor(effect, GAIN, runner="ray", workers=2, check_determinism=False)}
    return best({name: (lambda box=box: box(x, **raw)) for name, box in boxes.items()})


def ray_part() -> None:
    try:
        import ray
    except ImportError:
        print("ray is not installed (pip install grafx-core[ray]): Ray runner not measured")
        return
    # Ray runs its workers at niceness 15: on a machine shared with other work they would get the CPU
    # last and the comparison with the (niceness 0) thread pool would measure the other work.
    os.environ.setdefault("RAY_worker_niceness", "0")
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"local Ray cluster (2 CPUs) started in {time.perf_counter() - start:.1f} s")
    gen = torch.Generator().manual_seed(0)
    short = torch.randn(ITEMS, 1, 4096, generator=gen)
    cheap = side_by_side(gain, short)
    overhead = (cheap["ray"] - cheap["threads"]) / ITEMS
    print(f"cheap effect (gain, {ITEMS} x 4096 samples): threads {cheap['threads'] * 1e3:.1f} ms, "
          f"ray {cheap['ray'] * 1e3:.1f} ms; Ray overhead {overhead * 1e3:.2f} ms per item")
    long = torch.randn(ITEMS, 2, 2 * 44100, generator=gen)
    costly = side_by_side(filtered, long)
    print(f"costly effect (16th-order IIR, {ITEMS} x 2 s stereo, releases the GIL): "
          f"threads {costly['threads'] * 1e3:.0f} ms, ray {costly['ray'] * 1e3:.0f} ms, "
          f"ray / threads {costly['ray'] / costly['threads']:.2f}")
    print("effect holding the GIL (Python loop), by item cost (threads' time / items: they run one at a time):")
    crossing, previous = None, None
    for nominal_ms in (0.1, 0.3, 1.0, 3.0, 10.0):
        t = side_by_side(python_loop(nominal_ms), short)
        ratio, cost_ms = t["ray"] / t["threads"], t["threads"] / ITEMS * 1e3
        print(f"  {cost_ms:6.2f} ms per item: threads {t['threads'] * 1e3:7.1f} ms, ray {t['ray'] * 1e3:7.1f} ms, "
              f"ray / threads {ratio:.2f}")
        if crossing is None and previous is not None and previous[1] >= 1 > ratio:
            (c0, r0), (c1, r1) = previous, (cost_ms, ratio)
            crossing = math.exp(math.log(c0) + (math.log(c1) - math.log(c0)) * (r0 - 1) / (r0 - r1))
        previous = (cost_ms, ratio)
    if crossing is not None:
        print(f"break-even item cost (GIL-holding effect, 2 workers): about {crossing:.2f} ms")
    elif previous is not None and previous[1] < 1:
        print("break-even item cost: below 0.1 ms (Ray won at every cost)")
    else:
        print(f"break-even item cost: above {previous[0]:.1f} ms (threads won at every cost)")
    print(f"GIL-releasing effects gain nothing from Ray on one machine; across machines Ray pays when an item "
          f"costs well above the {overhead * 1e3:.2f} ms overhead")
    ray.shutdown()


def ddp_steps(processes: int, steps: int) -> float:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run([sys.executable, *launcher, str(EXAMPLE), "--steps", str(steps), "--batch", "8"],
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    found = re.search(r"\(([\d.]+) s per step\)", done.stdout.strip().splitlines()[-1])
    assert found, done.stdout
    return float(found[1])


def ddp_part() -> None:
    if not torch.distributed.is_available():
        print("this torch has no torch.distributed: DDP not measured")
        return
    one, two = ddp_steps(1, 12), ddp_steps(2, 12)
    print(f"DDP predictor, global batch 8 (4096 samples): 1 process {one:.3f} s per step, "
          f"2 gloo processes {two:.3f} s per step, speed-up {one / two:.2f}x")


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.1f}; minimum of {REPEATS} interleaved repeats")
    ray_part()
    ddp_part()


if __name__ == "__main__":
    main()
