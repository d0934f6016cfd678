"""Gradients across a black box in the middle of a graph (issue 17).

Run: ``python bench/seam.py`` (0.25 s tracks, 3 operating points, 20-step fits) or
``python bench/seam.py --full`` (every estimator fitted, more operating points,
longer signals). Graph: 8 music-like stereo tracks, each
``in -> dsp:parametric_eq -> dsp:gain -> BLACK BOX``, summed by one ``mix``
node into ``out``; loss: the demo's multi-resolution STFT loss against a mix
rendered from hidden parameters. The black box is a grafx-dsp processor run
through ``with_estimator(proc, "finite-difference", signal_gradient=...)``,
so that the exact gradient is autograd through the same processor.

Printed per black box and signal gradient, measured in this run:

- ``cos``: cosine between the estimated and exact gradients of the upstream
  EQ and gain parameters (median over operating points; the black box's own
  parameters are held fixed, so only the signal gradient is measured);
- ``norm``: the estimate's norm over the exact one (median);
- ``renders``: extra black-box renders per node in one backward, counted;
- ``fit``: a short fit of every parameter from a random start (Adam, same
  start and steps), final loss over the exact processor's final loss.

Operating points: the demo's musical ranges for the EQ and gain; the middle
half of the black box's declared ranges (log-aware) for its own controls.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grafx_core import Graph, compile_render, describe, get_processor
from grafx_core.demo.draws import draw_parameters
from grafx_core.fitting import LatentParameters, SpectralLoss, fit
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.estimators import with_estimator

SR = 44100
TRACKS = 8
EFFECTS = ("compressor", "delay", "distortion", "noise_gate", "parametric_eq", "reverb")
SIGNALS = ("auto", "straight-through", "spectral-ratio", "fft-ratio", "smooth-gain", "diagonal", "spsa")
EQ, GAIN = "dsp:parametric_eq", "dsp:gain"
UPSTREAM = (EQ, GAIN)


class Counting(nn.Module):
    """A processor that counts the rows it renders (what an estimator asks of a black box)."""

    def __init__(self, processor: nn.Module) -> None:
        super().__init__()
        self.processor, self.rows = processor, 0

    def forward(self, *signals: torch.Tensor, **params: Any) -> Any:
        self.rows += signals[0].shape[0]
        return self.processor(*signals, **params)

    def controls(self) -> Any:
        return describe(self.processor).control_tree()


def build_graph() -> Graph:
    graph = Graph()
    mix = graph.add("mix")
    for _ in range(TRACKS):
        source = graph.add("in")
        eq, gain, box = graph.add(EQ), graph.add(GAIN), graph.add("box")
        graph.connect(source, eq)
        graph.connect(eq, gain)
        graph.connect(gain, box)
        graph.connect(box, mix)
    graph.connect(mix, graph.add("out"))
    return graph


def draw(graph: Graph, processors: Mapping[str, Any], seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """The demo's musical ranges upstream; the black box's declared ranges (middle half, log-aware)."""
    gen = torch.Generator().manual_seed(seed)
    drawn = draw_parameters(graph, processors, gen)
    out = {t: {k: v.detach().clone() for k, v in p.items()} for t, p in drawn.items()}
    for (name, *_), spec in describe(processors["box"]).controls.items():
        if spec.bounded and not spec.unconstrained and name in out["box"]:
            log = spec.scale == "log"
            low, high = (math.log(spec.low), math.log(spec.high)) if log else (spec.low, spec.high)
            u = low + (0.25 + 0.5 * torch.rand(out["box"][name].shape, generator=gen)) * (high - low)
            out["box"][name] = torch.exp(u) if log else u
    return out


def upstream_gradient(render: Any, processors: dict[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]],
                      sources: torch.Tensor, loss: SpectralLoss) -> torch.Tensor:
    leaves = {t: {k: v.clone().requires_grad_(t in UPSTREAM) for k, v in p.items()} for t, p in params.items()}
    y, _ = render(leaves, sources)
    loss(y[0]).backward()
    return torch.cat([leaves[t][k].grad.flatten() for t in UPSTREAM for k in sorted(leaves[t])]).double()


def measure(effect: str, sources: torch.Tensor, signals: tuple[str, ...], points: int, fit_signals: tuple[str, ...],
            steps: int) -> dict[str, dict[str, float]]:
    graph = build_graph()
    exact = get_processor(f"dsp:{effect}")
    base = {EQ: get_processor(EQ), GAIN: get_processor(GAIN)}
    draws = {**base, "box": exact}
    render_exact = compile_render(graph, {**base, "box": exact})
    counters = {name: Counting(exact) for name in signals}
    boxes = {name: with_estimator(counters[name], "finite-difference", signal_gradient=name,
                                  **({"signal_samples": 4, "seed": 0} if name == "spsa" else {"seed": 0}))
             for name in signals}
    renders = {name: compile_render(graph, {**base, "box": box}) for name, box in boxes.items()}
    cos: dict[str, list[float]] = {n: [] for n in signals}
    norm: dict[str, list[float]] = {n: [] for n in signals}
    extra: dict[str, list[float]] = {n: [] for n in signals}
    warm = draw(graph, draws, 999)
    with torch.no_grad():
        warm_loss = SpectralLoss(render_exact(warm, sources)[0][0])
    for name in signals:  # settles "auto" (its probe renders are not a backward's)
        upstream_gradient(renders[name], draws, warm, sources, warm_loss)
    for point in range(points):
        hidden = draw(graph, draws, 1000 + point)
        params = draw(graph, draws, 2000 + point)
        with torch.no_grad():
            loss = SpectralLoss(render_exact(hidden, sources)[0][0])
        g_exact = upstream_gradient(render_exact, draws, params, sources, loss)
        for name in signals:
            before = counters[name].rows
            g = upstream_gradient(renders[name], draws, params, sources, loss)
            extra[name].append((counters[name].rows - before) / TRACKS - 1)
            cos[name].append(float(g @ g_exact / (g.norm() * g_exact.norm()).clamp(min=1e-300)))
            norm[name].append(float(g.norm() / g_exact.norm().clamp(min=1e-300)))
    result = {n: {"cos": statistics.median(cos[n]), "norm": statistics.median(norm[n]),
                  "renders": statistics.median(extra[n]), "choice": boxes[n].signal_gradient} for n in signals}
    if fit_signals:
        hidden = draw(graph, draws, 1000)
        start = draw(graph, draws, 3000)
        with torch.no_grad():
            loss = SpectralLoss(render_exact(hidden, sources)[0][0])
        finals = {}
        for name, render in [("exact", render_exact)] + [(n, renders[n]) for n in fit_signals]:
            latent = LatentParameters(start, draws)
            finals[name] = fit(lambda values, render=render: render(values, sources)[0][0], latent, loss, steps).losses[-1]
        for name in fit_signals:
            result[name]["fit"] = finals[name] / finals["exact"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every estimator fitted, 5 points, 2 s, 150 steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds, points, steps = (2.0, 5, 150) if args.full else (0.25, 3, 20)
    fit_signals = SIGNALS if args.full else ("auto",)
    _, sources = synthesise_multitrack(TRACKS, seconds, SR, seed=0)
    sources = sources.float()
    print(f"{TRACKS} tracks x {seconds:g} s stereo, {points} operating points, fits of {steps} steps")
    header = f"{'black box':<14}{'signal gradient':<18}{'chose':<16}{'cos':>7}{'norm':>9}{'renders':>9}{'fit':>7}"
    print(header)
    summary = []
    start = time.perf_counter()
    for effect in EFFECTS:
        rows = measure(effect, sources, SIGNALS, points, fit_signals, steps)
        for name, row in rows.items():
            fitted = f"{row['fit']:.2f}" if "fit" in row else ""
            choice = row["choice"] if name == "auto" else ""
            print(f"{effect:<14}{name:<18}{choice:<16}{row['cos']:>7.3f}{row['norm']:>9.3g}{row['renders']:>9.1f}"
                  f"{fitted:>7}")
        summary.append(rows["auto"])
    cosines = [r["cos"] for r in summary]
    norms = [r["norm"] for r in summary]
    fits = [r["fit"] for r in summary]
    print(f"default ('auto') over the six: median cosine {statistics.median(cosines):.3f} (goal >= 0.95), "
          f"worst {min(cosines):.3f} (goal >= 0.8), median norm ratio {statistics.median(norms):.3g} "
          f"(goal 0.5-2), fits {min(fits):.2f}-{max(fits):.2f}x the exact processor (goal <= 1.2)")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
