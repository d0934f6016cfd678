"""Black-box processors: thread-pool speed-up, wrapper overhead, estimator backward cost, isolation cost.

Run: ``python bench/blackbox.py``. Everything is measured side by side in one
run on 16 stereo 2 s items (44.1 kHz) through a numpy/scipy effect that
releases the GIL (4th-order lowpass by ``sosfilt``, tanh drive, output
gain: about 1.5 ms per item). Times are the minimum over repeats,
interleaved, so that other load on the machine inflates them least.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial

import numpy as np
import scipy.signal
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.estimators import SPSA, FiniteDifference

from _timing import best as interleaved_best  # bench/ is the script's folder, on sys.path

SR = 44100
ITEMS, CHANNELS, SAMPLES = 16, 2, 2 * SR
REPEATS = 7
best = partial(interleaved_best, repeats=REPEATS)
SPECS = [
    ParameterSpec("cutoff_hz", 200.0, 16000.0, default=2000.0, scale="log"),
    ParameterSpec("drive_db", 0.0, 24.0, default=6.0),
    ParameterSpec("gain_db", -24.0, 6.0, default=-3.0),
]


def effect(audio: np.ndarray, sample_rate: float, cutoff_hz: float, drive_db: float, gain_db: float) -> np.ndarray:
    # Two RBJ lowpass biquads (Q = 1/sqrt 2): coefficients by formula, since scipy's filter design
    # costs ~0.2 ms of GIL-holding Python per call.
    w = 2 * math.pi * cutoff_hz / sample_rate
    alpha, cos_w = math.sin(w) / math.sqrt(2), math.cos(w)
    a0 = 1 + alpha
    section = [(1 - cos_w) / 2 / a0, (1 - cos_w) / a0, (1 - cos_w) / 2 / a0, 1.0, -2 * cos_w / a0, (1 - alpha) / a0]
    y = scipy.signal.sosfilt(np.array([section, section]), audio, axis=-1)
    np.tanh(y * 10 ** (drive_db / 20), out=y)
    y *= 10 ** (gain_db / 20)
    return y



def main() -> None:
    torch.set_num_threads(1)  # the work is in the effect; keep torch from competing for cores
    gen = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(ITEMS, CHANNELS, SAMPLES, generator=gen)
    raw = {s.name: (s.default_raw() + 0.5 * torch.randn(ITEMS, 1, generator=gen)) for s in SPECS}
    one = BlackBoxProcessor(effect, SPECS, sample_rate=SR, workers=1)
    cores = os.cpu_count() or 1
    pool = BlackBoxProcessor(effect, SPECS, sample_rate=SR)  # default: min(items, cpu_count) threads
    natural = {k: v.detach().numpy() for k, v in one.natural_parameters(**raw).items()}
    audio = x.numpy()

    def bare() -> None:
        out = np.empty_like(audio)
        for i in range(ITEMS):
            out[i] = effect(audio[i], SR, **{k: float(np.float32(v[i])) for k, v in natural.items()})
        torch.from_numpy(out)

    def passthrough(audio: np.ndarray, sample_rate: float, **natural: float) -> np.ndarray:
        return audio

    noop = BlackBoxProcessor(passthrough, SPECS, sample_rate=SR, workers=1)

    def bare_noop() -> None:
        out = np.empty_like(audio)
        for i in range(ITEMS):
            out[i] = passthrough(audio[i], SR, **{k: float(np.float32(v[i])) for k, v in natural.items()})
        torch.from_numpy(out)

    with torch.no_grad():
        t = best({"bare": bare, "one": lambda: one(x, **raw), "pool": lambda: pool(x, **raw),
                  "bare-noop": bare_noop, "noop": lambda: noop(x, **raw)})
    per_item_ms = 1e3 * t["bare"] / ITEMS
    print(f"effect: {per_item_ms:.2f} ms per stereo 2 s item; {cores} cores; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"thread pool ({min(cores, ITEMS)} workers) over one worker: {t['one'] / t['pool']:.2f}x")

    def waiting(audio: np.ndarray, sample_rate: float, **natural: float) -> np.ndarray:
        time.sleep(0.002)  # releases the GIL and needs no CPU: isolates the pool from other load
        return audio

    waits = {w: BlackBoxProcessor(waiting, SPECS, sample_rate=SR, workers=w) for w in (1, max(2, cores))}
    with torch.no_grad():
        tw = best({w: (lambda box=box: box(x, **raw)) for w, box in waits.items()})
    print(f"  the pool itself, on an effect that waits 2 ms without computing: "
          f"{tw[1] / tw[max(2, cores)]:.2f}x with {max(2, cores)} workers")
    print(f"wrapper (one worker) over a bare numpy loop: {100 * (t['one'] / t['bare'] - 1):+.1f}% time")
    extra = t["noop"] - t["bare-noop"]
    print(f"  the wrapper's own work, from a pass-through effect: {1e6 * extra / ITEMS:.0f} us per item, "
          f"{100 * extra / t['bare']:+.1f}% of the effect's time (less sensitive to other load)")

    p = len(SPECS)
    leaves = {k: v.clone().requires_grad_() for k, v in raw.items()}

    def backward_with(estimator) -> callable:
        box = pool.with_estimator(estimator)

        def run() -> None:
            y = box(x, **leaves)
            y.backward(torch.ones_like(y))
        return run

    k = 4
    runs = {
        "forward": lambda: pool(x, **raw),
        "central": backward_with(FiniteDifference()),
        "forward-fd": backward_with(FiniteDifference(mode="forward")),
        "spsa": backward_with(SPSA(samples=k, seed=0, signal_samples=1)),
    }
    # CPU time of the whole process (all threads) is far less sensitive to other load than wall
    # time, whose minimum favours the short forward run on a busy machine.
    for clock, label in ((time.perf_counter, "wall time"), (time.process_time, "CPU time")):
        fb = best(runs, clock=clock)
        f = fb["forward"]
        print(f"backward cost, in forward passes of {label} (ideal: 2 per central parameter, 1 per forward "
              f"parameter, 2 per SPSA sample):")
        print(f"  central differences: {(fb['central'] - f) / (p * f):.2f} per parameter ({p} parameters)")
        print(f"  forward differences: {(fb['forward-fd'] - f) / (p * f):.2f} per parameter")
        print(f"  SPSA:                {(fb['spsa'] - f) / (k * f):.2f} per sample (K={k})")

    isolation_cost(x, raw)


def isolation_cost(x: torch.Tensor, raw: dict[str, torch.Tensor]) -> None:
    """runner="isolated" (worker processes under a watchdog) against in-process threads, same worker count."""
    import blackbox as this  # the effect pickles by module name; as __main__ the workers could not find it

    workers = min(os.cpu_count() or 1, ITEMS)
    boxes = {runner: BlackBoxProcessor(this.effect, SPECS, sample_rate=SR, workers=workers, runner=runner)
             for runner in ("threads", "isolated")}
    began = time.perf_counter()
    with torch.no_grad():
        boxes["isolated"](x[:1], **{k: v[:1] for k, v in raw.items()})
    start = time.perf_counter() - began
    leaves = {k: v.clone().requires_grad_() for k, v in raw.items()}

    def backward(box: BlackBoxProcessor) -> None:
        box(x, **leaves).square().sum().backward()

    with torch.no_grad():
        forward = best({r: (lambda box=box: box(x, **raw)) for r, box in boxes.items()})
    both = best({r: (lambda box=box: backward(box)) for r, box in boxes.items()})
    boxes["isolated"].runner.close()
    print(f"isolated worker processes ({workers}) over in-process threads ({workers}), {ITEMS} items: "
          f"forward x{forward['isolated'] / forward['threads']:.2f}, forward+central backward "
          f"x{both['isolated'] / both['threads']:.2f} (time); starting the workers {start:.1f} s once")


if __name__ == "__main__":
    main()
