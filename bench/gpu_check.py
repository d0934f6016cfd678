"""The prepared command for a CUDA machine: GPU-batched graphs, measured (issue 26).

On a machine with CUDA it runs the suite's device-parametrised tests on CUDA,
then measures, each figure side by side in one run:

- batched vs one-by-one forward+backward for the demo's analytic console and
  for a console of 100+ nodes at 10 s stereo (the GRAFX paper's comparison);
- forward+backward samples per second per grafx-dsp processor type
  (``nodes x channels x samples`` over the wall time, 32 nodes);
- the peak GPU memory of the large console;
- a graph whose pedalboard black boxes run on CPU threads while analytic
  nodes run on CUDA, and the overlap of a slow black-box stage with an
  independent slow analytic stage (wall time over the longer of the two);
- one training step of a :class:`~grafx_core.ParameterPredictor` through the
  demo console.

It writes ``figures.json`` and ``figures.png`` into ``--out`` and prints a
summary. On a machine without CUDA it says so in one line and runs the same
code paths on the CPU at small sizes (a dry run, tested by the suite), then
exits 0.

Run: python bench/gpu_check.py [--out gpu-check-output] [--dry-run] [--no-tests] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from grafx_core import Graph, compile_render, processors_for_graph  # noqa: E402
from grafx_core.fitting.console import build_console  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is: full on CUDA, tiny for the CPU dry run."""

    seconds: float
    sample_rate: int
    demo_tracks: int
    large_nodes: int
    processor_nodes: int
    repeats: int
    blackbox_items: int


FULL = Sizes(seconds=10.0, sample_rate=44100, demo_tracks=8, large_nodes=100, processor_nodes=32, repeats=5,
             blackbox_items=8)
DRY = Sizes(seconds=0.05, sample_rate=8000, demo_tracks=3, large_nodes=12, processor_nodes=2, repeats=1,
            blackbox_items=2)
DEMO_TRACKS = ("kick", "snare", "hats", "bass", "keys", "pad", "lead", "vocal")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """The median wall time of ``fn`` over ``repeats`` runs after one warm-up, device work included."""
    fn()
    synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def leaves(tree: Mapping[str, Any]) -> list[torch.Tensor]:
    return [leaf for value in tree.values()
            for leaf in (leaves(value) if isinstance(value, Mapping) else [value])]


def console(tracks: int) -> tuple[Graph, dict[str, Any]]:
    """The demo's analytic console (grafx-dsp EQs, compressors, faders, buses, reverb send) for ``tracks``."""
    names = [DEMO_TRACKS[t % len(DEMO_TRACKS)] + (str(t // len(DEMO_TRACKS)) if t >= len(DEMO_TRACKS) else "")
             for t in range(tracks)]
    built = build_console(names, "analytic")
    return built.graph, processors_for_graph(built.graph, built.options)


def tracks_for_nodes(nodes: int) -> int:
    """The fewest tracks whose analytic console has at least ``nodes`` nodes."""
    tracks = 1
    while len(console(tracks)[0]) < nodes:
        tracks += 1
    return tracks


def forward_backward(plan: Any, params: Mapping[str, Any], sources: torch.Tensor) -> Callable[[], None]:
    tensors = leaves(params)

    def run() -> None:
        for tensor in tensors:
            tensor.grad = None
        y, _ = plan(params, sources)
        y.square().mean().backward()

    return run


def parameters_on(graph: Graph, processors: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    from grafx_core import create_empty_parameters

    params = create_empty_parameters(graph, processors)

    def move(tree: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v.detach().to(device).requires_grad_(v.is_floating_point()) if isinstance(v, torch.Tensor)
                else move(v) for k, v in tree.items()}

    return move(params)


def batched_vs_one_by_one(tracks: int, sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Forward+backward of a console, whole stages against one node per call."""
    graph, processors = console(tracks)
    processors = {t: p.to(device) for t, p in processors.items()}
    params = parameters_on(graph, processors, device)
    samples = int(sizes.seconds * sizes.sample_rate)
    sources = 0.1 * torch.randn(len(graph.nodes_of_type("in")), 2, samples, device=device,
                                generator=torch.Generator(device).manual_seed(0))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tile = None if device.type == "cuda" else compile_render.__defaults__[1]  # type: ignore[index]
    batched = compile_render(graph, processors, "beam", tile_bytes=tile)
    one_by_one = compile_render(graph, processors, "one-by-one", tile_bytes=None)
    batched_s = timed(forward_backward(batched, params, sources), device, sizes.repeats)
    one_s = timed(forward_backward(one_by_one, params, sources), device, sizes.repeats)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"nodes": len(graph), "tracks": tracks, "seconds": sizes.seconds, "batched_s": batched_s,
            "one_by_one_s": one_s, "speedup": one_s / batched_s, "peak_gpu_bytes": peak}


def processor_throughput(sizes: Sizes, device: torch.device) -> dict[str, float]:
    """Forward+backward samples per second (nodes x channels x samples / s) per grafx-dsp type."""
    from processors import build, inputs, loss_of  # bench/processors.py
    from grafx_dsp.plugin import PROCESSORS

    samples = int(sizes.seconds * sizes.sample_rate)
    rates: dict[str, float] = {}
    for spec in PROCESSORS:
        try:
            processor = build(spec.name).to(device)
        except TypeError:  # a container that needs its contents (parallel_mix): not a type of its own to time
            continue
        signals, params = inputs(spec.name, processor, sizes.processor_nodes, samples)
        signals = [x.to(device).requires_grad_() for x in signals]
        params = {k: v for k, v in parameters_tree_to(params, device).items()}

        def run() -> None:
            loss_of(processor(*signals, **params)).backward()

        seconds = timed(run, device, sizes.repeats)
        rates[spec.name] = sum(x.numel() for x in signals) / seconds
    return rates


def parameters_tree_to(tree: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.detach().to(device).requires_grad_(v.is_floating_point()) if isinstance(v, torch.Tensor)
            else parameters_tree_to(v, device) for k, v in tree.items()}


def blackbox_overlap(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """A slow black-box stage beside an independent slow analytic stage: alone and together."""
    import numpy as np

    from grafx_core import BlackBoxProcessor, ParameterSpec

    def slow_drive(audio: np.ndarray, sample_rate: float, drive_db: float) -> np.ndarray:
        out = audio
        for _ in range(40):  # numpy releases the GIL over whole arrays, as a plug-in's C code does
            out = np.tanh(out * 10 ** (drive_db / 20) * 0.5)
        return out.astype(np.float32)

    black_box = BlackBoxProcessor(slow_drive, [ParameterSpec("drive_db", 0.0, 12.0)], workers=1,
                                  signal_gradient="straight-through")
    _, analytic = console(1)
    eq = analytic["dsp:parametric_eq"].to(device)
    samples = int(sizes.seconds * sizes.sample_rate)

    def graph(with_blackbox: bool, with_analytic: bool) -> tuple[Graph, dict[str, Any]]:
        g, processors = Graph(), {}
        out = g.add("out")
        if with_blackbox:
            processors["drive"] = black_box
            for _ in range(sizes.blackbox_items):
                g.connect(_chain(g, "drive"), out)
        if with_analytic:
            processors["eq"] = eq
            for _ in range(sizes.blackbox_items):
                g.connect(_chain(g, "eq", "eq", "eq", "eq"), out)
        return g, processors

    times = {}
    for name, flags in {"black_box": (True, False), "analytic": (False, True), "both": (True, True)}.items():
        g, processors = graph(*flags)
        params = parameters_on(g, processors, device)
        sources = 0.1 * torch.randn(len(g.nodes_of_type("in")), 2, samples, device=device,
                                    generator=torch.Generator(device).manual_seed(1))
        plan = compile_render(g, processors, tile_bytes=None)

        def forward() -> None:
            with torch.no_grad():
                plan(params, sources)

        times[name] = timed(forward, device, max(2, sizes.repeats))
    longer = max(times["black_box"], times["analytic"])
    return {**{f"{k}_s": v for k, v in times.items()}, "both_over_longer": times["both"] / longer,
            "both_over_sum": times["both"] / (times["black_box"] + times["analytic"])}


def _chain(graph: Graph, *types: str) -> int:
    node = graph.add("in")
    for node_type in types:
        nxt = graph.add(node_type)
        graph.connect(node, nxt)
        node = nxt
    return node


def blackbox_graph(sizes: Sizes, device: torch.device) -> dict[str, Any] | str:
    """pedalboard compressors on CPU threads feeding grafx-dsp EQs and faders on ``device``: forward+backward."""
    try:
        from grafx_core import get_processor

        compressor = get_processor("pedalboard:compressor", sample_rate=sizes.sample_rate)
    except Exception as exc:  # the pedalboard plugin is optional on a GPU machine
        return f"skipped: pedalboard:compressor unavailable ({type(exc).__name__}: {exc})"
    _, analytic = console(1)
    processors = {"comp": compressor, "eq": analytic["dsp:parametric_eq"].to(device),
                  "fader": analytic["dsp:stereo_gain"].to(device)}
    g = Graph()
    out = g.add("out")
    for _ in range(sizes.blackbox_items):
        g.connect(_chain(g, "comp", "eq", "fader"), out)
    params = parameters_on(g, processors, device)
    samples = int(sizes.seconds * sizes.sample_rate)
    sources = 0.1 * torch.randn(sizes.blackbox_items, 2, samples, device=device,
                                generator=torch.Generator(device).manual_seed(2))
    plan = compile_render(g, processors, tile_bytes=None)
    seconds = timed(forward_backward(plan, params, sources), device, max(1, sizes.repeats // 2))
    return {"tracks": sizes.blackbox_items, "forward_backward_s": seconds,
            "real_time_factor": sizes.blackbox_items * sizes.seconds / seconds}


def predictor_step(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """One Adam step of a ParameterPredictor through the demo's analytic console."""
    from grafx_core import ParameterPredictor, multi_resolution_stft_loss

    graph, processors = console(sizes.demo_tracks)
    processors = {t: p.to(device) for t, p in processors.items()}
    tracks = len(graph.nodes_of_type("in"))
    predictor = ParameterPredictor(graph, processors, inputs=tracks + 1, channels=2,
                                   sample_rate=sizes.sample_rate).to(device)
    optimiser = torch.optim.Adam(predictor.parameters(), lr=1e-4)
    plan = compile_render(graph, processors, tile_bytes=None if device.type == "cuda" else 8 * 2**20)
    batch, samples = 4, max(4096, min(int(sizes.seconds * sizes.sample_rate), 4 * sizes.sample_rate))
    generator = torch.Generator(device).manual_seed(3)
    stems = 0.1 * torch.randn(batch, tracks, 2, samples, device=device, generator=generator)
    target = stems.sum(1)

    def step() -> None:
        optimiser.zero_grad()
        inputs = [stems[:, t] for t in range(tracks)] + [target]
        y, _ = plan(predictor(*inputs), stems)
        multi_resolution_stft_loss(y[:, 0], target).backward()
        optimiser.step()

    return {"batch": batch, "tracks": tracks, "samples": samples, "step_s": timed(step, device, sizes.repeats)}


def device_tests(device: torch.device, dry_run: bool) -> dict[str, Any]:
    """The suite's device-parametrised tests on CUDA (collected only in a dry run)."""
    command = [sys.executable, "-m", "pytest", "-q", "-k", "cuda", "-p", "no:cacheprovider",
               "tests", "plugins/grafx-dsp/tests"]
    if dry_run:
        command.append("--collect-only")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=480)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return {"command": " ".join(command[1:]), "returncode": result.returncode, "summary": lines[-1] if lines else ""}


def plot(figures: Mapping[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    consoles = [c for c in ("demo_console", "large_console") if isinstance(figures.get(c), Mapping)]
    left.bar([f"{c}\n{figures[c]['nodes']} nodes" for c in consoles], [figures[c]["speedup"] for c in consoles])
    left.set_ylabel("one-by-one / batched (forward+backward)")
    left.set_title(f"batching on {figures['device']}")
    rates = figures.get("processors") if isinstance(figures.get("processors"), Mapping) else {}
    names = sorted(rates, key=rates.get)
    right.barh(names, [rates[n] / 1e9 for n in names])
    right.set_xlabel("G samples/s forward+backward")
    right.set_title("grafx-dsp processors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run(out: Path, dry_run: bool, tests: bool, seconds: float | None) -> dict[str, Any]:
    """Every measurement, at full size on CUDA or at dry-run size on the CPU; returns the figures."""
    cuda = torch.cuda.is_available() and not dry_run
    device = torch.device("cuda" if cuda else "cpu")
    sizes = FULL if cuda else DRY
    if seconds is not None:
        sizes = Sizes(**{**sizes.__dict__, "seconds": seconds})
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if cuda else "cpu (dry run)",
                               "torch": torch.__version__, "sizes": sizes.__dict__}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("demo_console", lambda: batched_vs_one_by_one(sizes.demo_tracks, sizes, device)),
        ("large_console", lambda: batched_vs_one_by_one(tracks_for_nodes(sizes.large_nodes), sizes, device)),
        ("processors", lambda: processor_throughput(sizes, device)),
        ("blackbox_graph", lambda: blackbox_graph(sizes, device)),
        ("overlap", lambda: blackbox_overlap(sizes, device)),
        ("predictor", lambda: predictor_step(sizes, device)),
    ]
    if tests:
        steps.insert(0, ("device_tests", lambda: device_tests(device, not cuda)))
    for name, step in steps:
        start = time.perf_counter()
        try:
            figures[name] = step()
        except Exception as exc:  # one failing measurement must not hide the others
            figures[name] = f"failed: {type(exc).__name__}: {exc}"
        print(f"{name}: {summary(figures[name])} ({time.perf_counter() - start:.1f} s)", flush=True)
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    figures["plot"] = plot(figures, out / "figures.png")
    return figures


def summary(value: Any) -> str:
    if isinstance(value, Mapping):
        shown = {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in list(value.items())[:8]}
        return ", ".join(f"{k}={v}" for k, v in shown.items())
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check-output", help="folder for figures.json/.png")
    parser.add_argument("--dry-run", action="store_true", help="the CPU dry run even where CUDA is present")
    parser.add_argument("--no-tests", action="store_true", help="skip the device-parametrised tests")
    parser.add_argument("--seconds", type=float, default=None, help="signal length (default: 10 on CUDA)")
    args = parser.parse_args(argv)
    if args.seconds is not None and not 0 < args.seconds <= 600:
        parser.error(f"--seconds must be in (0, 600], got {args.seconds}")
    if not torch.cuda.is_available():
        print("no CUDA device here: running a CPU dry run of the same code paths at small sizes", flush=True)
    torch.manual_seed(0)
    figures = run(args.out, args.dry_run or not torch.cuda.is_available(), not args.no_tests, args.seconds)
    print(f"figures written to {args.out / 'figures.json'}" + (" and figures.png" if figures["plot"] else ""))
    failed = [name for name, value in figures.items() if isinstance(value, str) and value.startswith("failed")]
    return 1 if failed and torch.cuda.is_available() and not args.dry_run else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
