"""Choose the default estimator: central finite differences or SPSA, by number of controls.

For effects and chains with P = 1 ... 18 differentiable controls, fit hidden
control values from target audio alone (MSE on 0.25 s stereo, Adam on the raw
parameters), once with central finite differences and once with SPSA
(4 perturbations), giving both the same total number of renders. Four seeds
run as four nodes of one batch. For each method the best of three learning
rates is kept; printed per P: the median final error of the normalised
differentiable controls and the median final loss relative to the start.

    .venv/bin/python plugins/grafx-pedalboard/tools/measure_estimators.py [--nodes 4] [problem ...]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pedalboard
import torch

from grafx_core.estimators import SPSA, FiniteDifference
from grafx_pedalboard import pedalboard_chain, pedalboard_processor

SR = 44100
LENGTH = 11025
NODES = 4
FD_STEPS = 40
LEARNING_RATES = (0.03, 0.1, 0.3)


def problems():
    yield "distortion", pedalboard_processor("distortion")
    yield "delay", pedalboard_processor("delay", ranges={"delay_seconds": (0.01, 0.05)})
    yield "peak_filter", pedalboard_processor("peak_filter")
    yield "compressor", pedalboard_processor("compressor")
    yield "reverb", pedalboard_processor("reverb")
    yield "comp+peak", pedalboard_chain(pedalboard.Pedalboard([pedalboard.Compressor(), pedalboard.PeakFilter()]))
    yield "comp+peak+gain+dist", pedalboard_chain(pedalboard.Pedalboard(
        [pedalboard.Compressor(), pedalboard.PeakFilter(), pedalboard.Gain(), pedalboard.Distortion()]))
    yield "comp+peak+reverb", pedalboard_chain(pedalboard.Pedalboard(
        [pedalboard.Compressor(), pedalboard.PeakFilter(), pedalboard.Reverb()]))
    yield "comp+2 eq+dist+reverb", pedalboard_chain(pedalboard.Pedalboard(
        [pedalboard.Compressor(), pedalboard.LowShelfFilter(), pedalboard.PeakFilter(), pedalboard.Distortion(),
         pedalboard.Reverb()]))
    yield "comp+3 eq+reverb", pedalboard_chain(pedalboard.Pedalboard(
        [pedalboard.Compressor(), pedalboard.LowShelfFilter(), pedalboard.PeakFilter(),
         pedalboard.HighShelfFilter(), pedalboard.Reverb()]))


def signal(nodes: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / SR
    envelope = np.where((t // 0.05) % 2 == 0, 1.0, 0.1)
    x = 0.4 * rng.standard_normal((nodes, 2, LENGTH)) * envelope
    return torch.from_numpy(x.astype(np.float32))


def fit(processor, estimator, steps: int, lr: float, x, target, start) -> tuple[float, float, torch.Tensor]:
    proc = processor.with_estimator(estimator)
    raw = {k: v.clone().requires_grad_() for k, v in start.items()}
    opt = torch.optim.Adam(raw.values(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = ((proc(x, **raw) - target) ** 2).mean(dim=(1, 2))
        first = loss.detach() if first is None else first
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        final = ((proc(x, **raw) - target) ** 2).mean(dim=(1, 2))
    return final, first, torch.sigmoid(torch.cat([raw[s.name] for s in proc.specs if s.differentiable], 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES, help="seeds, run as nodes of one batch")
    parser.add_argument("only", nargs="*", help="problem labels to run (default: all)")
    args = parser.parse_args()
    nodes = args.nodes
    x = signal(nodes)
    print(f"{'problem':22s} {'P':>3s} {'method':>8s} {'steps':>6s} {'lr':>5s} {'param err':>10s} "
          f"{'loss ratio':>11s} {'time s':>7s}")
    warnings.simplefilter("ignore")  # non-differentiable controls warn once per processor
    for label, processor in problems():
        if args.only and label not in args.only:
            continue
        specs = processor.specs
        p = sum(s.differentiable for s in specs)
        gen = torch.Generator().manual_seed(1)
        hidden = {s.name: torch.logit(0.2 + 0.6 * torch.rand(nodes, 1, generator=gen)) if s.differentiable
                  else torch.full((nodes, 1), s.default_raw()) for s in specs}
        start = {s.name: torch.logit(0.2 + 0.6 * torch.rand(nodes, 1, generator=gen)) if s.differentiable
                 else hidden[s.name].clone() for s in specs}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target = processor(x, **hidden)
        truth = torch.sigmoid(torch.cat([hidden[s.name] for s in specs if s.differentiable], 1))
        budget = FD_STEPS * (2 * p + 1)
        for method, estimator, per_step in (("fd", FiniteDifference(), 2 * p + 1),
                                            ("spsa", SPSA(samples=4, seed=0), 9)):
            best = None
            for lr in LEARNING_RATES:
                steps = max(1, budget // per_step)
                t0 = time.perf_counter()
                final, first, values = fit(processor, estimator, steps, lr, x, target, start)
                seconds = time.perf_counter() - t0
                err = float((values.detach() - truth).abs().mean(1).median())
                ratio = float((final / first).median())
                if best is None or ratio < best[1]:
                    best = (err, ratio, lr, steps, seconds)
            err, ratio, lr, steps, seconds = best
            print(f"{label:22s} {p:3d} {method:>8s} {steps:6d} {lr:5.2f} {err:10.3e} {ratio:11.3e} "
                  f"{seconds:7.1f}", flush=True)


if __name__ == "__main__":
    main()
