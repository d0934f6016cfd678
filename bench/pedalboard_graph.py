"""pedalboard effects in a graph: thread speed-up, wrapper overhead, cost of an optimisation step.

Run: ``python bench/pedalboard_graph.py`` (needs the grafx-pedalboard plugin). A
16-track graph, every track stereo 2 s at 44.1 kHz through
``pedalboard:compressor`` -> ``pedalboard:peak_filter`` -> ``pedalboard:reverb``
into one output, is measured side by side in one run:

- the graph rendered with the thread pool (one worker per core) against one worker;
- one worker against pedalboard called in a plain Python loop over the same
  tracks, effects and values (the wrapper's overhead);
- one optimisation step (forward, backward, Adam) with the default estimators
  (central finite differences) and with SPSA (4 perturbations), relative to a
  forward pass. Signal gradients pass straight through every effect, so that
  every node trains.

Times are minima over interleaved repeats, so that other load on the machine
inflates them least.
"""

from __future__ import annotations

import os
import sys

# This script is named like the package it measures: keep its own folder off the
# import path, or "import pedalboard" would import this file.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pedalboard  # noqa: E402
import torch  # noqa: E402

from grafx_core import Graph, compile_render, create_empty_parameters  # noqa: E402
from grafx_pedalboard import pedalboard_processor  # noqa: E402

SR = 44100
TRACKS, CHANNELS, SAMPLES = 16, 2, 2 * SR
REPEATS = 7
EFFECTS = ("compressor", "peak_filter", "reverb")
CLASSES = {"compressor": pedalboard.Compressor, "peak_filter": pedalboard.PeakFilter, "reverb": pedalboard.Reverb}


def best(fns: dict[str, Callable[[], object]], repeats: int = REPEATS) -> dict[str, float]:
    """Minimum wall time of each function over interleaved repeats (one warm-up each)."""
    for fn in fns.values():
        fn()
    times = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - start)
    return times


def track_graph() -> Graph:
    graph = Graph()
    out = graph.add("out")
    for i in range(TRACKS):
        node = graph.add("in", f"track{i}")
        for effect in EFFECTS:
            nxt = graph.add(f"pedalboard:{effect}", f"{effect}{i}")
            graph.connect(node, nxt)
            node = nxt
        graph.connect(node, out)
    return graph


def processors(workers: int | None, estimator: str | None = None) -> dict[str, torch.nn.Module]:
    options = {"estimator": estimator, "estimator_options": {"samples": 4, "seed": 0}} if estimator else {}
    return {f"pedalboard:{e}": pedalboard_processor(e, workers=workers, signal_gradient="straight-through",
                                                    **options) for e in EFFECTS}


def main() -> None:
    torch.set_num_threads(1)  # the work is in pedalboard; keep torch's OpenMP threads off the cores
    cores = os.cpu_count() or 1
    graph = track_graph()
    gen = torch.Generator().manual_seed(0)
    sources = 0.3 * torch.randn(TRACKS, CHANNELS, SAMPLES, generator=gen)
    pool, one = processors(None), processors(1)
    params = create_empty_parameters(graph, pool)
    with torch.no_grad():
        for group in params.values():
            for value in group.values():
                value.add_(0.5 * torch.randn(value.shape, generator=gen))
    plan_pool, plan_one = compile_render(graph, pool), compile_render(graph, one)

    # the same values pedalboard receives through the wrapper, for the plain loop
    natural = {}
    for effect in EFFECTS:
        raw = params[f"pedalboard:{effect}"]
        values = {s.name: s.to_natural(torch.sigmoid(raw[s.name].detach()).double()).float().reshape(-1)
                  for s in pool[f"pedalboard:{effect}"].specs}
        natural[effect] = [{k: float(v[i]) for k, v in values.items()} for i in range(TRACKS)]
    audio = sources.numpy()

    def plain_loop() -> torch.Tensor:
        total = np.zeros((CHANNELS, SAMPLES), dtype=np.float32)
        for i in range(TRACKS):
            y = audio[i]
            for effect in EFFECTS:
                y = CLASSES[effect](**natural[effect][i]).process(y, SR, reset=True)
            total += y
        return torch.from_numpy(total)

    with torch.no_grad():
        reference = plan_one(params, sources)[0]
        assert torch.allclose(reference[0], plain_loop(), atol=1e-5), "the plain loop must render the same mix"
        t = best({"pool": lambda: plan_pool(params, sources), "one": lambda: plan_one(params, sources),
                  "plain": plain_loop})
    print(f"{TRACKS} tracks x {' -> '.join(EFFECTS)}, stereo {SAMPLES / SR:g} s; {cores} cores; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"forward pass: {t['pool'] * 1e3:.0f} ms with the pool, {t['one'] * 1e3:.0f} ms with one worker, "
          f"{t['plain'] * 1e3:.0f} ms as a plain pedalboard loop")
    print(f"thread pool ({min(cores, TRACKS)} workers) over one worker: {t['one'] / t['pool']:.2f}x")
    print(f"wrapper (one worker) over a plain pedalboard loop: {100 * (t['one'] / t['plain'] - 1):+.1f}% time")

    target = plan_pool(params, sources)[0].detach() * 0.5

    def step_with(estimator: str | None) -> Callable[[], None]:
        procs = processors(None, estimator)
        plan = compile_render(graph, procs)
        trained = create_empty_parameters(graph, procs)
        trained.load_state_dict(params.state_dict())
        optimiser = torch.optim.Adam(trained.parameters(), lr=1e-3)

        def step() -> None:
            optimiser.zero_grad()
            y, _ = plan(trained, sources)
            ((y - target) ** 2).mean().backward()
            optimiser.step()
        return step

    def forward() -> None:
        with torch.no_grad():
            plan_pool(params, sources)

    s = best({"forward": forward, "fd": step_with(None), "spsa": step_with("spsa")}, repeats=3)
    renders = {e: 2 * sum(spec.differentiable for spec in pool[f"pedalboard:{e}"].specs) for e in EFFECTS}
    print(f"one optimisation step, in forward passes (pool workers; ideal: 1 + the extra renders per node, "
          f"{'/'.join(str(renders[e]) for e in EFFECTS)} for central differences, 8 for SPSA):")
    print(f"  central finite differences (default): {s['fd'] / s['forward']:.1f}x")
    print(f"  SPSA, 4 perturbations:                {s['spsa'] / s['forward']:.1f}x")


if __name__ == "__main__":
    main()
