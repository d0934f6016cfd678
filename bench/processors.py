"""grafx-dsp benchmark: each processor on 32 nodes in one batched call vs 32
separate calls, forward and forward+backward, measured side by side.

Signals are stereo (mono where a processor wants mono), 1 s at 44.1 kHz;
parameters are each processor's defaults with a little noise so that nodes
differ. Each timing is the median of ``--repeats`` runs after one warm-up, the
batched and the looped runs alternating.
A ratio above 1 means batching is faster.

Run: python bench/processors.py [--seconds 1.0] [--nodes 32] [--repeats 5] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

import grafx_dsp as dsp
from grafx_dsp.plugin import PROCESSORS

MONO_INLETS = {"mono_to_stereo": ("main",), "mid_side_to_stereo": ("mid", "side"),
               "sidechain_compressor": ("sidechain",)}


def build(name: str) -> torch.nn.Module:
    """A processor for every registered name; containers get typical contents."""
    if name == "dry_wet":
        return dsp.DryWet(dsp.Compressor())
    if name == "chain":
        return dsp.Chain({"eq": dsp.ParametricEQ(), "comp": dsp.Compressor(), "gain": dsp.Gain()})
    return next(spec for spec in PROCESSORS if spec.name == name).factory()


def tree_map(function: Callable[[torch.Tensor], torch.Tensor], tree: Mapping[str, Any]) -> dict[str, Any]:
    return {key: tree_map(function, value) if isinstance(value, Mapping) else function(value)
            for key, value in tree.items()}


def leaves(tree: Mapping[str, Any]) -> list[torch.Tensor]:
    return [leaf for value in tree.values()
            for leaf in (leaves(value) if isinstance(value, Mapping) else [value])]


def inputs(name: str, processor: torch.nn.Module, nodes: int, samples: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    mono = MONO_INLETS.get(name, ())
    signals = [0.3 * torch.randn(nodes, 1 if inlet in mono else 2, samples, generator=generator)
               for inlet in processor.inlets]
    defaults = dsp.default_parameters(processor, nodes)
    params = tree_map(lambda p: p + 0.01 * torch.randn(p.shape, generator=generator), defaults)
    return signals, params


def loss_of(output: Any) -> torch.Tensor:
    outs = output if isinstance(output, tuple) else (output,)
    return sum(o.square().mean() for o in outs if isinstance(o, torch.Tensor))


def run(processor, signals, params, nodes: int, batched: bool, backward: bool) -> None:
    if backward:
        signals = [s.detach().requires_grad_() for s in signals]
        params = tree_map(lambda p: p.detach().requires_grad_(), params)
    with torch.set_grad_enabled(backward):
        if batched:
            loss = loss_of(processor(*signals, **params))
        else:
            loss = sum(loss_of(processor(*[s[n:n + 1] for s in signals],
                                         **tree_map(lambda p, n=n: p[n:n + 1], params)))
                       for n in range(nodes))
        if backward:
            loss.backward()


def paired_medians(first: Callable[[], None], second: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Median seconds of two functions, timed alternately so that a change in
    machine load hits both alike."""
    first(), second()  # warm-up: FFT plans, allocator
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sample-rate", type=float, default=44100.0)
    parser.add_argument("--only", nargs="*", default=None, help="processor names to run")
    args = parser.parse_args()
    samples = int(args.seconds * args.sample_rate)
    names = args.only or [spec.name for spec in PROCESSORS]
    print(f"grafx-dsp processors: {args.nodes} nodes x {args.seconds:g} s at {args.sample_rate:g} Hz, "
          f"median of {args.repeats}, torch threads {torch.get_num_threads()}")
    header = f"{'processor':22s} {'fwd batch':>10s} {'fwd loop':>10s} {'ratio':>6s}   " \
             f"{'f+b batch':>10s} {'f+b loop':>10s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    total = time.perf_counter()
    for name in names:
        processor = build(name)
        signals, params = inputs(name, processor, args.nodes, samples)
        row = []
        for backward in (False, True):
            batched, looped = paired_medians(
                lambda: run(processor, signals, params, args.nodes, True, backward),
                lambda: run(processor, signals, params, args.nodes, False, backward), args.repeats)
            row += [batched * 1e3, looped * 1e3, looped / batched]
        print(f"{name:22s} {row[0]:8.1f}ms {row[1]:8.1f}ms {row[2]:5.2f}x   "
              f"{row[3]:8.1f}ms {row[4]:8.1f}ms {row[5]:5.2f}x", flush=True)
    print(f"total {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
