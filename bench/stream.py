"""Streaming renders against one-shot renders, side by side in one run.

1. Block-wise vs one-shot render of the demo console (grafx-dsp EQs, pans,
   compressors, width; pedalboard compressors and reverb) on synthesised
   tracks, at block sizes 64 to 8,192: the max abs difference (aim <= 1e-6 of
   the peak for analytic processors in float32; pedalboard hosts one instance
   per node and is bit-exact on its own) and the time against one render.
2. A console of LV2 plug-ins (x42 EQ, LSP compressor) streamed in one
   instance per node: bit-exact against one render, and its time.
3. ``grafx-core render --block-size 4096`` of the analytic console on WAV
   files on disk: peak resident memory (``/usr/bin/time``) at two input
   lengths, throughput as a real-time factor, and a one-shot render of the
   shorter length for the cost ratio.

Everything runs on one torch thread: on a shared machine, several threads on
small blocks measure the contention more than the work. Compare the ratios
printed in one run, not absolute times between runs.

Run: python bench/stream.py [--seconds 1] [--tracks 8] [--minutes 0.25 1] [--block-sizes 64 512 4096 8192]
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

from grafx_core import compile_render, save_parameters
from grafx_core import processors_for_graph
from grafx_core.demo.draws import demo_console
from grafx_core.demo.multitrack import INSTRUMENTS, synthesise_multitrack
from grafx_core.fitting.console import build_console


def _blocks(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [x[..., s:s + size] for s in range(0, x.shape[-1], size)]


def console_blocks(seconds: float, tracks: int, sizes: list[int]) -> None:
    names, sources = synthesise_multitrack(tracks=tracks, seconds=seconds)
    console = demo_console(names)
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    plan = compile_render(console.graph, processors)
    parameters = console.start_parameters(processors)
    sources = sources.to(torch.float32)
    print(f"demo console, {tracks} tracks x {seconds:g} s stereo ({len(console.graph)} nodes)")
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        peak = float(whole.abs().max())
        streamed = {size: lambda size=size: torch.cat(list(plan.stream(parameters, _blocks(sources, size))), -1)
                    for size in sizes}
        times = best({"one-shot": lambda: plan(parameters, sources), **{str(k): f for k, f in streamed.items()}},
                     repeats=2)
        print(f"  one-shot render: {times['one-shot']:.2f} s (best of 2, interleaved with the streams)")
        print(f"  {'block':>6} {'max abs diff':>13} {'/ peak':>9} {'time':>8} {'x one-shot':>11}")
        for size in sizes:
            diff = float((streamed[size]() - whole).abs().max())
            took = times[str(size)]
            print(f"  {size:>6} {diff:>13.3g} {diff / peak:>9.2g} {took:>7.2f}s {took / times['one-shot']:>10.2f}x")


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
    from grafx_core.wavblocks import WavBlockWriter

    rng = np.random.default_rng(0)
    paths, block = [], 44100 * 10
    for k in range(tracks):
        path = os.path.join(folder, f"t{k}_{minutes:g}.wav")
        with WavBlockWriter(path, 2, 44100) as writer:
            for start in range(0, int(minutes * 60 * 44100), block):
                n = min(block, int(minutes * 60 * 44100) - start)
                writer.write(torch.from_numpy((0.2 * rng.standard_normal((2, n))).astype(np.float32)))
        paths.append(path)
    return paths


def _timed_render(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI run."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "grafx_core", *args],
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return took, int(done.stderr.strip().splitlines()[-1]) / 1024


def cli_memory(tracks: int, minutes: list[float], block: int) -> None:
    names = [name for name, _ in INSTRUMENTS][:tracks]
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    with tempfile.TemporaryDirectory() as folder:
        graph_path, options_path = os.path.join(folder, "g.json"), os.path.join(folder, "o.json")
        params_path = os.path.join(folder, "p.json")
        console.graph.save(graph_path)
        with open(options_path, "w") as f:
            json.dump(console.options, f)
        save_parameters(console.start_parameters(processors), params_path)
        print(f"\ngrafx-core render of the analytic console, {tracks} tracks stereo 44.1 kHz float32 WAV "
              f"({len(console.graph)} nodes)")
        print(f"  {'input':>8} {'mode':>16} {'peak RSS':>9} {'wall':>8} {'real time':>10}")
        for length in minutes:
            sources = _write_sources(folder, tracks, length)
            common = ["render", graph_path, "--options", options_path, "-p", params_path, "--threads", "1",
                      *sum((["-s", p] for p in sources), []), "--force", "-o", os.path.join(folder, "mix.wav")]
            modes = [(f"--block-size {block}", ["--block-size", str(block)])]
            if length == minutes[0]:
                modes.append(("one-shot", []))
            for label, extra in modes:
                took, rss = _timed_render([*common, *extra])
                print(f"  {length:>6g} m {label:>16} {rss:>7.0f}MB {took:>7.1f}s {length * 60 / took:>9.2f}x")
            for path in sources:
                os.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of the demo console's tracks")
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--minutes", type=float, nargs="+", default=[0.25, 1.0],
                        help="input lengths of the CLI memory runs")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[256, 4096, 8192])
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # on a shared machine, more threads on small blocks measure the contention
    console_blocks(args.seconds, args.tracks, args.block_sizes)
    lv2_console(args.seconds, 4, args.block_sizes)
    cli_memory(args.tracks, args.minutes, 4096)


if __name__ == "__main__":
    main()
