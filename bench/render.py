"""Render-engine benchmark: batched stages vs one node per call, in one run.

For N-track mixing graphs (each track: in -> processors -> one of 4 buses ->
master -> out) it prints the time of a forward and of a forward+backward
render three ways: whole stages (one call per stage), CPU tiles of
``CPU_TILE_BYTES`` rendered depth first (the default), and one node per call; with the
ratios one-by-one / whole and one-by-one / tiled. Two processor sets: cheap
ones written here (32-tap FIR, gain, tanh drive, pan: memory-bound) and a
grafx-dsp console (peak EQ, compressor, stereo gain: costly per call), if
grafx-dsp is installed. Then the compile time of a 1,000-node graph and the
peak number of live signals while rendering a 256-node serial chain under
no_grad.

Run: python bench/render.py [--seconds 2.0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import weakref

import torch

from grafx_core import CPU_TILE_BYTES, Graph, compile_render, create_empty_parameters


class Eq(torch.nn.Module):
    """A 32-tap FIR per node (grouped conv1d over nodes x channels)."""

    def forward(self, x, taps):
        nodes, channels, length = x.shape
        kernel = taps.repeat_interleave(channels, dim=0)[:, None, :]
        y = torch.nn.functional.conv1d(
            torch.nn.functional.pad(x.reshape(1, nodes * channels, length), (taps.shape[-1] - 1, 0)),
            kernel.flip(-1), groups=nodes * channels)
        return y.reshape(nodes, channels, length)

    def parameter_size(self):
        return {"taps": 32}


class Gain(torch.nn.Module):
    def forward(self, x, gain_db):
        return x * torch.pow(10.0, gain_db / 20)[..., None]

    def parameter_size(self):
        return {"gain_db": 1}


class Drive(torch.nn.Module):
    def forward(self, x, drive_db):
        return torch.tanh(x * torch.pow(10.0, drive_db / 20)[..., None])

    def parameter_size(self):
        return {"drive_db": 1}


class Pan(torch.nn.Module):
    def forward(self, x, pan):
        angle = torch.sigmoid(pan) * (torch.pi / 2)
        return x * torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)[..., None]

    def parameter_size(self):
        return {"pan": 1}


PROCESSORS = {"eq": Eq(), "gain": Gain(), "drive": Drive(), "pan": Pan()}


def mixing_graph(tracks: int, chain: tuple[str, ...] = ("eq", "gain", "drive", "pan"), buses: int = 4) -> Graph:
    graph = Graph()
    bus_ids = [graph.add("mix") for _ in range(buses)]
    master = graph.add("mix")
    for b in bus_ids:
        graph.connect(b, master)
    for t in range(tracks):
        node = graph.add("in")
        for node_type in chain:
            nxt = graph.add(node_type)
            graph.connect(node, nxt)
            node = nxt
        graph.connect(node, bus_ids[t % buses])
    graph.connect(master, graph.add("out"))
    return graph


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_tracks(processors: dict, tracks: int, samples: int, repeats: int) -> None:
    graph = mixing_graph(tracks, tuple(processors))
    params = create_empty_parameters(graph, processors)
    with torch.no_grad():
        for p in params.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    sources = torch.randn(tracks, 2, samples) * 0.1
    plans = {
        "whole": compile_render(graph, processors, tile_bytes=None),
        "tiled": compile_render(graph, processors, tile_bytes=CPU_TILE_BYTES),
        "single": compile_render(graph, processors, "one-by-one"),
    }

    def forward(plan):
        with torch.no_grad():
            plan(params, sources)

    def backward(plan):
        params.zero_grad()
        y, _ = plan(params, sources)
        y.pow(2).mean().backward()

    row = [f"{tracks:>6}"]
    for fn in (forward, backward):
        t = {name: timed(lambda plan=plan: fn(plan), repeats) for name, plan in plans.items()}
        row += [f"{t['whole'] * 1e3:8.0f} {t['tiled'] * 1e3:8.0f} {t['single'] * 1e3:8.0f}",
                f"{t['single'] / t['whole']:5.2f}x {t['single'] / t['tiled']:5.2f}x"]
    print("  ".join(row), flush=True)


def random_dag(nodes: int, types: int, seed: int = 0) -> Graph:
    """A random DAG of ``types`` processor types, each node fed by two recent nodes."""
    import random

    rng = random.Random(seed)
    graph = Graph()
    for _ in range(types):
        graph.add("in")
    for _ in range(nodes):
        node = graph.add(f"t{rng.randrange(types)}")
        for src in rng.sample(range(max(0, node - 60), node), k=2):
            graph.connect(src, node)
    graph.connect(len(graph) - 1, graph.add("out"))
    return graph


def bench_compile(nodes: int) -> None:
    cases = [("mixing graph", mixing_graph(tracks=(nodes - 6) // 5), PROCESSORS),
             ("random 20-type DAG", random_dag(nodes, 20), None)]
    for title, graph, processors in cases:
        if processors is None:
            processors = {t: Gain() for t in graph.processor_types()}
        for method in ("beam", "greedy"):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                plan = compile_render(graph, processors, method)
                times.append(time.perf_counter() - start)
            print(f"compile {len(graph)}-node {title} ({method}): {statistics.median(times) * 1e3:.1f} ms, "
                  f"{len(plan.stages)} stages")


def bench_chain_memory(length: int, samples: int) -> None:
    alive: list[weakref.ref] = []
    peak = [0]

    class Tracked(torch.nn.Module):
        def forward(self, x):
            peak[0] = max(peak[0], 1 + sum(r() is not None for r in alive))
            y = torch.tanh(x)
            alive.append(weakref.ref(y))
            return y

        def parameter_size(self):
            return {}

    graph = Graph()
    node = graph.add("in")
    for _ in range(length):
        nxt = graph.add("t")
        graph.connect(node, nxt)
        node = nxt
    graph.connect(node, graph.add("out"))
    sources = torch.randn(1, 2, samples)
    with torch.no_grad():
        compile_render(graph, {"t": Tracked()})({}, sources)
    print(f"{length}-node serial chain under no_grad: at most {peak[0]} signal(s) alive at a call "
          f"(input and output included: {peak[0] + 1}), {sources.numel() * 4 / 1e6:.1f} MB each")


def dsp_console() -> dict | None:
    try:
        from grafx_core import get_processor

        return {t: get_processor(t) for t in ("dsp:peak", "dsp:compressor", "dsp:stereo_gain")}
    except Exception as exc:  # grafx-dsp missing or broken: say so, bench the rest
        print(f"(grafx-dsp console skipped: {exc})")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="signal length (s at 44.1 kHz)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tracks", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--dsp-tracks", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    torch.manual_seed(0)
    samples = int(args.seconds * 44100)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, stereo {args.seconds} s; "
          "times in ms (median), ratios = one-by-one / batched")
    header = "tracks     whole    tiled   single  single/whole,tiled"
    sets = [("cheap: FIR eq, gain, drive, pan", PROCESSORS, args.tracks)]
    console = dsp_console()
    if console is not None:
        sets.append(("grafx-dsp: peak, compressor, stereo_gain", console, args.dsp_tracks))
    for title, processors, track_counts in sets:
        print(f"\n{title}\n{'':6}  {'forward':^40}  {'forward+backward':^40}\n{header}  {header[6:]}")
        for tracks in track_counts:
            bench_tracks(processors, tracks, samples, args.repeats)
    print()
    bench_compile(1000)
    bench_chain_memory(256, samples)


if __name__ == "__main__":
    main()
