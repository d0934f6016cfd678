"""Black-box stages overlapping independent analytic stages, measured on the CPU (issue 26).

A graph with two independent branches, a black box (a numpy effect on the
black-box thread pool, one worker) and a chain of grafx-dsp EQs (torch on one
intra-op thread), is rendered three ways in one run: each branch alone and
both together. When the engine overlaps them, the two-branch render takes
about as long as the longer branch, not their sum; ``both / longer`` is the
figure (aim <= 1.15). Forward only, and forward+backward (where the black
box's finite differences run on the same pool).

Two effects: ``waiting_drive`` waits (its work happens elsewhere: another
process, a Ray worker), so the figure shows the engine's scheduling whatever
the load; ``slow_drive`` computes on this machine's cores, so its overlap
needs a second free core (on a loaded machine the ratio approaches the sum). Run: python bench/overlap.py [--seconds 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import best
from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render, create_empty_parameters, get_processor


PASSES = 700
WAIT_S = 0.15


def slow_drive(audio: np.ndarray, sample_rate: float, drive_db: float) -> np.ndarray:
    """A waveshaper made slow on purpose: numpy over whole arrays releases the GIL, as a plug-in's C code does."""
    out = audio
    for _ in range(PASSES):
        out = np.tanh(out * 10 ** (drive_db / 20) * 0.5)
    return out.astype(np.float32)


def waiting_drive(audio: np.ndarray, sample_rate: float, drive_db: float) -> np.ndarray:
    """A black box whose work happens elsewhere (another process, a Ray worker): it waits, using no core here."""
    time.sleep(WAIT_S)
    return np.tanh(audio * 10 ** (drive_db / 20)).astype(np.float32)


def branch_graph(black_box: bool, analytic: bool, eqs: int) -> Graph:
    graph = Graph()
    out = graph.add("out")
    if black_box:
        node = graph.add("in")
        graph.connect(node, drive := graph.add("drive"))
        graph.connect(drive, out)
    if analytic:
        node = graph.add("in")
        for _ in range(eqs):
            graph.connect(node, eq := graph.add("eq"))
            node = eq
        graph.connect(node, out)
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--eqs", type=int, default=6, help="EQs in the analytic branch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = int(args.seconds * 44100)
    print(f"overlap: {args.seconds:g} s stereo, black box on 1 worker, {args.eqs} EQs on 1 torch thread")
    for effect, backward in ((waiting_drive, False), (waiting_drive, True), (slow_drive, False), (slow_drive, True)):
        processors = {
            "drive": BlackBoxProcessor(effect, [ParameterSpec("drive_db", 0.0, 12.0)], workers=1,
                                       signal_gradient="straight-through", estimator="finite-difference"),
            "eq": get_processor("dsp:parametric_eq"),
        }
        fns = {}
        for name, flags in {"black box": (True, False), "analytic": (False, True), "both": (True, True)}.items():
            graph = branch_graph(*flags, args.eqs)
            params = create_empty_parameters(graph, processors)
            sources = 0.1 * torch.randn(len(graph.nodes_of_type("in")), 2, samples,
                                        generator=torch.Generator().manual_seed(0))
            plan = compile_render(graph, processors, tile_bytes=None)

            def run(plan=plan, params=params, sources=sources) -> None:
                with torch.set_grad_enabled(backward):
                    y, _ = plan(params, sources)
                    if backward:
                        y.square().mean().backward()

            fns[name] = run
        times = best(fns, args.repeats)
        longer = max(times["black box"], times["analytic"])
        print(f"  {effect.__name__:13s} {'forward+backward' if backward else 'forward':17s} black box {times['black box'] * 1e3:7.1f} ms"
              f"  analytic {times['analytic'] * 1e3:7.1f} ms  both {times['both'] * 1e3:7.1f} ms"
              f"  both/longer {times['both'] / longer:5.2f}  both/sum "
              f"{times['both'] / (times['black box'] + times['analytic']):5.2f}", flush=True)


if __name__ == "__main__":
    main()
