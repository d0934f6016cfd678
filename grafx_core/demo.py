"""Build a small mixing graph, render it and fit its gains (a first look at grafx-core)."""

from __future__ import annotations

import argparse
import time

import torch

from .graph import Graph
from .parameters import create_empty_parameters
from .plan import compile_render


class _Gain(torch.nn.Module):
    """``x * 10**(gain_db / 20)``; ``gain_db`` is ``[nodes, 1]``."""

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return x * torch.pow(10.0, gain_db / 20)[..., None]

    def parameter_size(self) -> dict[str, int]:
        return {"gain_db": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the demo's options."""
    parser.add_argument("--tracks", type=int, default=8, help="number of tracks (default 8)")
    parser.add_argument("--steps", type=int, default=100, help="gradient steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Render a target mix from hidden gains, then recover them by gradient descent."""
    torch.manual_seed(args.seed)
    graph = Graph()
    bus = graph.add("mix", "bus")
    for t in range(args.tracks):
        track, gain = graph.add("in", f"track{t}"), graph.add("gain", f"gain{t}")
        graph.connect(track, gain)
        graph.connect(gain, bus)
    graph.connect(bus, graph.add("out", "master"))
    processors = {"gain": _Gain()}
    plan = compile_render(graph, processors)
    print(f"graph: {graph}; render order: {[(s.type, len(s.nodes)) for s in plan.stages]}")

    sources = torch.randn(args.tracks, 2, 44100) * 0.1
    hidden = torch.empty(args.tracks, 1).uniform_(-12, 6)
    with torch.no_grad():
        target, _ = plan({"gain": {"gain_db": hidden}}, sources)
    params = create_empty_parameters(graph, processors)
    optimiser = torch.optim.Adam(params.parameters(), lr=0.5)
    start = time.perf_counter()
    for step in range(args.steps):
        optimiser.zero_grad()
        mix, _ = plan(params, sources)
        loss = (mix - target).pow(2).mean()
        loss.backward()
        optimiser.step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3e}")
    error = (params["gain"]["gain_db"] - hidden).abs().max().item()
    elapsed = (time.perf_counter() - start) / args.steps
    print(f"largest gain error after {args.steps} steps: {error:.3f} dB ({elapsed * 1e3:.1f} ms per step)")
    return 0
