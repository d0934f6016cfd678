"""Streaming renders against one-shot renders, side by side in one run.

1. Block-wise vs one-shot render of the analytic console (grafx-dsp EQs,
   compressors, gains, width and a 1-s reverb) and of the demo console
   (grafx-dsp with pedalboard compressors and reverb) on synthesised tracks,
   at block sizes 64 to 8,192: the max abs difference (aim <= 1e-6 for
   analytic processors in float32; pedalboard hosts one instance per node and
   is bit-exact on its own) and the time against one render, in CPU time
   (robust on a loaded machine) and wall time (aim <= 1.2x at 4,096), and the
   torch operations a streamed block of 4,096 costs: on small blocks the cost
   over one render is their count (a few microseconds each) more than their size.
2. Moving filters: tracks through a parametric EQ and a peaking biquad with
   every control a curve, streamed (the recursion's memories and its place on
   the 256-sample coefficient grid carried) against one render: max abs
   difference (aim <= 1e-6) and CPU time, blocks of 100 included (not a
   multiple of 256).
3. A console of LV2 plug-ins (x42 EQ, LSP compressor) streamed in one
   instance per node: bit-exact against one render, and its time.
4. ``grafx-core render --block-size 4096`` of the analytic console on 16-bit
   WAV files on disk: peak resident memory (``/usr/bin/time -v``) at two
   input lengths, throughput as a real-time factor (``--cli-threads``, 1 by
   default), and a one-shot render of the shorter length. The issue's figures
   are ``--parts cli --minutes 1 60`` (about 5 GB of input in ``--tmp``).

Everything runs on one torch thread: on a shared machine, several threads on
small blocks measure the contention more than the work. Compare the ratios
printed in one run, not absolute times between runs.

Run: python bench/stream.py [--seconds 2] [--tracks 8] [--minutes 0.1 0.4] [--block-sizes 512 4096 8192]
     [--parts console moving lv2 cli] [--cli-threads 1] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from _timing import best
from torch.overrides import TorchFunctionMode

from grafx_core import compile_render, save_parameters
from grafx_core import processors_for_graph
from grafx_core.demo.draws import demo_console
from grafx_core.demo.multitrack import INSTRUMENTS, synthesise_multitrack
from grafx_core.fitting.console import build_console


def _blocks(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [x[..., s:s + size] for s in range(0, x.shape[-1], size)]


def console_blocks(seconds: float, tracks: int, sizes: list[int], kind: str) -> None:
    """One render against streams of every block size, interleaved (:func:`_timing.best`), CPU and wall time."""
    names, sources = synthesise_multitrack(tracks=tracks, seconds=seconds)
    console = demo_console(names) if kind == "demo" else build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    plan = compile_render(console.graph, processors)
    parameters = console.start_parameters(processors)
    sources = sources.to(torch.float32)
    label = ("demo console (grafx-dsp, pedalboard compressors and reverb)" if kind == "demo"
             else "analytic console (grafx-dsp only, 1-s dsp:reverb)")
    print(f"{label}, {tracks} tracks x {seconds:g} s stereo ({len(console.graph)} nodes), 1 torch thread")
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        peak = float(whole.abs().max())
        streamed = {size: lambda size=size: torch.cat(list(plan.stream(parameters, _blocks(sources, size))), -1)
                    for size in sizes}
        fns = {"one-shot": lambda: plan(parameters, sources), **{str(k): f for k, f in streamed.items()}}
        cpu = best(fns, repeats=3, clock=time.process_time)
        wall = best(fns, repeats=2)
        print(f"  one-shot render: {cpu['one-shot']:.2f} s CPU, {wall['one-shot']:.2f} s wall (best of 3 and 2, "
              "interleaved with the streams)")
        print(f"  {'block':>6} {'max abs diff':>13} {'/ peak':>9} {'CPU':>7} {'x one-shot':>11} {'wall':>7} "
              f"{'x one-shot':>11}")
        for size in sizes:
            diff = float((streamed[size]() - whole).abs().max())
            c, w = cpu[str(size)], wall[str(size)]
            print(f"  {size:>6} {diff:>13.3g} {diff / peak:>9.2g} {c:>6.2f}s {c / cpu['one-shot']:>10.2f}x "
                  f"{w:>6.2f}s {w / wall['one-shot']:>10.2f}x")
        size = 4096 if 4 * 4096 <= sources.shape[-1] else max(1, sources.shape[-1] // 4)
        print(f"  torch operations per streamed block of {size}: "
              f"{_calls_per_block(plan, parameters, sources, size)} (each costs microseconds whatever its size)")


def moving_filters(seconds: float, tracks: int, sizes: list[int]) -> None:
    """Tracks through a parametric EQ and a peaking biquad whose controls all move (curves), one
    render against streams: the moving filters' recursion with its memories and grid place carried."""
    from grafx_core import Graph, create_empty_parameters, curve_frames
    from grafx_dsp.biquad import Biquad
    from grafx_dsp.eq import ParametricEQ

    graph = Graph()
    mix = graph.add("mix")
    for _ in range(tracks):
        source, eq, peak = graph.add("in"), graph.add("eq"), graph.add("peak")
        graph.connect(source, eq)
        graph.connect(eq, peak)
        graph.connect(peak, mix)
    graph.connect(mix, graph.add("out"))
    processors = {"eq": ParametricEQ(n_peaks=4), "peak": Biquad("peak")}
    hop, samples = 512, int(seconds * 44100)
    plan = compile_render(graph, processors, control_hop=hop)
    frames = curve_frames(samples, hop)
    ramp = torch.linspace(0.0, 1.0, frames)
    parameters = create_empty_parameters(graph, processors)
    for name, value in parameters["eq"].items():
        if name.endswith("gain_db"):
            parameters["eq"][name] = 12.0 * torch.sin(6.0 * ramp + torch.rand(*value.shape, 1) * 6.0)
        else:
            parameters["eq"][name] = value.unsqueeze(-1) * (0.5 + ramp)
    parameters["peak"]["cutoff_hz"] = 100.0 * 100.0 ** ramp.expand(tracks, 1, frames).clone()
    parameters["peak"]["gain_db"] = torch.full((tracks, 1), 9.0)
    sources = 0.3 * torch.randn(tracks, 2, samples)
    print(f"moving filters: {tracks} tracks x {seconds:g} s stereo through ParametricEQ(4 peaks) and a peak "
          f"biquad, every control a curve (hop {hop}), redesigned every 256 samples; 1 torch thread")
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        peak = float(whole.abs().max())
        streamed = {size: lambda size=size: torch.cat(list(plan.stream(parameters, _blocks(sources, size))), -1)
                    for size in sizes}
        cpu = best({"one-shot": lambda: plan(parameters, sources), **{str(k): f for k, f in streamed.items()}},
                   repeats=2, clock=time.process_time)
        print(f"  one-shot render: {cpu['one-shot']:.2f} s CPU (best of 2, interleaved with the streams)")
        print(f"  {'block':>6} {'max abs diff':>13} {'/ peak':>9} {'CPU':>7} {'x one-shot':>11}")
        for size in sizes:
            diff = float((streamed[size]() - whole).abs().max())
            c = cpu[str(size)]
            print(f"  {size:>6} {diff:>13.3g} {diff / peak:>9.2g} {c:>6.2f}s {c / cpu['one-shot']:>10.2f}x")


class _CountCalls(TorchFunctionMode):
    """Counts torch operations (the per-operation overhead a stream pays per block), not reads of a
    tensor's metadata (shape, dtype: no kernel runs)."""

    METADATA = frozenset({"__get__", "dim", "size", "numel", "__len__", "is_floating_point", "is_complex",
                          "data_ptr", "stride", "element_size", "__hash__", "__eq__"})

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if getattr(func, "__name__", "") not in self.METADATA:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def _calls_per_block(plan, parameters, sources: torch.Tensor, size: int) -> int:  # type: ignore[no-untyped-def]
    """Torch function calls the stream makes for one block in steady state (the third)."""
    counter = _CountCalls()
    calls = []

    def blocks():  # type: ignore[no-untyped-def]
        for k in range(4):
            calls.append(counter.calls)
            yield sources[..., k * size:(k + 1) * size]
        calls.append(counter.calls)

    with counter:
        list(plan.stream(parameters, blocks()))
    return calls[3] - calls[2]


def lv2_console(seconds: float, tracks: int, sizes: list[int]) -> None:
    """Tracks through an x42 EQ or an LSP compressor (alternately), summed, and the same tracks through both
    in series: streamed in one instance per node, against an untiled one-shot render (a tiled one sums the
    bus in another order)."""
    try:
        from grafx_lv2 import lv2_processor

        processors = {"eq": lv2_processor("http://gareus.org/oss/lv2/fil4#stereo"),
                      "comp": lv2_processor("http://lsp-plug.in/plugins/lv2/compressor_stereo")}
    except Exception as exc:  # no liblilv or plug-ins here: say so and go on
        print(f"\nLV2 console skipped: {type(exc).__name__}: {exc}")
        return
    from grafx_core import Graph

    sources = 0.3 * torch.randn(tracks, 2, int(seconds * 44100), generator=torch.Generator().manual_seed(0))
    for label, chains in (("one plug-in per track", [["eq"], ["comp"]]), ("EQ -> compressor per track",
                                                                          [["eq", "comp"]])):
        graph = Graph()
        out = graph.add("out")
        for k in range(tracks):
            previous = graph.add("in")
            for node_type in chains[k % len(chains)]:
                node = graph.add(node_type)
                graph.connect(previous, node)
                previous = node
            graph.connect(previous, out)
        plan = compile_render(graph, processors, tile_bytes=None)
        params = {t: {k: torch.full((len(graph.nodes_of_type(t)), 1), float(v))
                      for k, v in p.default_parameters().items()}
                  for t, p in processors.items() if graph.nodes_of_type(t)}
        print(f"\nLV2 console, {tracks} tracks x {seconds:g} s stereo, {label} (x42 fil4, LSP compressor)")
        with torch.no_grad():
            start = time.perf_counter()
            whole, _ = plan(params, sources)
            one_shot = time.perf_counter() - start
            print(f"  one-shot render: {one_shot:.2f} s")
            for size in sizes:
                start = time.perf_counter()
                streamed = torch.cat(list(plan.stream(params, _blocks(sources, size))), dim=-1)
                took = time.perf_counter() - start
                print(f"  {size:>6} bit-exact: {str(torch.equal(streamed, whole)):>5}  max abs diff "
                      f"{float((streamed - whole).abs().max()):.3g}  {took / one_shot:.2f}x one-shot")


def _write_sources(folder: str, tracks: int, minutes: float) -> list[str]:
    """Stereo 16-bit WAV noise tracks in ``folder``, written a block at a time."""
    from grafx_core.audiofile import AudioBlockWriter

    rng = np.random.default_rng(0)
    total, block = int(minutes * 60 * 44100), 44100 * 10
    paths = []
    for k in range(tracks):
        path = os.path.join(folder, f"t{k}_{minutes:g}.wav")
        with AudioBlockWriter(path, 2, 44100, "int16") as writer:
            for start in range(0, total, block):
                n = min(block, total - start)
                writer.write(torch.from_numpy((0.2 * rng.standard_normal((2, n), dtype=np.float32))))
        paths.append(path)
    return paths


def _timed_render(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI run (``/usr/bin/time -v``)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "grafx_core", *args],
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    line = next(x for x in done.stderr.splitlines() if "Maximum resident set size" in x)
    return took, int(line.split(":")[-1]) / 1024


def cli_memory(tracks: int, minutes: list[float], block: int, threads: int, folder: str | None) -> None:
    names = [name for name, _ in INSTRUMENTS][:tracks]
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    with tempfile.TemporaryDirectory(dir=folder) as folder:
        graph_path, options_path = os.path.join(folder, "g.json"), os.path.join(folder, "o.json")
        params_path = os.path.join(folder, "p.json")
        console.graph.save(graph_path)
        with open(options_path, "w") as f:
            json.dump(console.options, f)
        save_parameters(console.start_parameters(processors), params_path)
        print(f"\ngrafx-core render of the analytic console, {tracks} tracks stereo 44.1 kHz 16-bit WAV "
              f"({len(console.graph)} nodes), --threads {threads}, float32 output")
        print(f"  {'input':>8} {'mode':>16} {'peak RSS':>9} {'wall':>8} {'real time':>10}")
        for length in minutes:
            start = time.perf_counter()
            sources = _write_sources(folder, tracks, length)
            print(f"  (wrote {tracks} x {length:g} min of input in {time.perf_counter() - start:.0f} s)")
            common = ["render", graph_path, "--options", options_path, "-p", params_path, "--threads", str(threads),
                      *sum((["-s", p] for p in sources), []), "--force", "-o", os.path.join(folder, "mix.wav")]
            modes = [(f"--block-size {block}", ["--block-size", str(block)])]
            if length == minutes[0]:
                modes.append(("one-shot", []))
            for label, extra in modes:
                took, rss = _timed_render([*common, *extra])
                print(f"  {length:>6g} m {label:>16} {rss:>7.0f}MB {took:>7.1f}s {length * 60 / took:>9.2f}x",
                      flush=True)
            for path in sources:
                os.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the consoles' tracks")
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--minutes", type=float, nargs="+", default=[0.1, 0.4],
                        help="input lengths of the CLI memory runs (the issue's figures: --minutes 1 60, about "
                             "5 GB of WAV in the temporary folder)")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[512, 4096, 8192],
                        help="the issue's figures: 64 512 4096 8192 (64 takes minutes on a loaded machine)")
    parser.add_argument("--cli-threads", type=int, default=1,
                        help="torch threads of the CLI renders (2 threads on a loaded 2-core machine measured the "
                        "contention: 8x slower)")
    parser.add_argument("--tmp", help="folder for the CLI runs' WAV files (default: the system's)")
    parser.add_argument("--parts", nargs="+", choices=("console", "moving", "lv2", "cli"),
                        default=["console", "moving", "lv2", "cli"])
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # on a shared machine, more threads on small blocks measure the contention
    if "console" in args.parts:
        console_blocks(args.seconds, args.tracks, args.block_sizes, "analytic")
        console_blocks(args.seconds, args.tracks, args.block_sizes, "demo")
    if "moving" in args.parts:
        moving_filters(args.seconds, min(args.tracks, 4), [100, *args.block_sizes])
    if "lv2" in args.parts:
        lv2_console(1.0, 4, args.block_sizes)
    if "cli" in args.parts:
        cli_memory(args.tracks, args.minutes, 4096, args.cli_threads, args.tmp)


if __name__ == "__main__":
    main()
