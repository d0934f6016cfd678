"""Fit a whole mixing console (grafx-dsp and pedalboard effects) to a target mix by gradient descent.

Synthesises a multitrack (drums, bass, keys, pads, lead, ...), builds a
console graph (per-track EQ and fader with pan from grafx-dsp, pedalboard
compressors on drums, bass and lead, a drum bus compressor, a music bus width,
a pedalboard reverb send, a master EQ and compressor), renders a target mix
from hidden parameters, and fits every parameter from a random start:
autograd for the analytic nodes, a gradient estimator for the pedalboard ones.
Writes WAVs, plots, the graph and parameter files, and a JSON report to the
output folder; `grafx-core render` reproduces the fitted mix from them.
Needs the grafx-dsp and grafx-pedalboard plugins (make demo installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import torch

from .._optional import require
from ..commands._processors import build_processors
from ..drawing import draw_graph
from ..errors import UnknownNodeTypeError
from ..parameter_file import load_parameters, save_parameters
from ..plan import compile_render
from ..render import render
from ..wavfile import write_wav
from .console import ESTIMATOR_CHOICES, Console, build_console, draw_parameters
from .fitting import LatentParameters, Progress, SpectralLoss, fit
from .multitrack import synthesise_multitrack
from .report import errors_by_type, format_errors, natural_parameters, node_report, plot_loss, plot_spectrograms

__all__ = ["DemoSettings", "DemoResult", "run_demo", "add_arguments", "run"]

SAMPLE_RATE = 44100


@dataclass(frozen=True)
class DemoSettings:
    """The demo's options (the command line's, with the same defaults).

    ``threads`` is torch's intra-op thread count during the run (``None``:
    leave it). One by default: on an idle 2-core CPU two threads made a step
    1.5x faster (0.26 against 0.39 s), but with other processes on the cores
    they made it 3-8x slower, as OpenMP threads wait for each other.
    """

    steps: int = 100
    tracks: int = 8
    seconds: float = 4.0
    estimator: str = "auto"
    seed: int = 0
    device: str = "auto"
    output: str = "grafx-demo-output"
    learning_rate: float = 0.05
    threads: int | None = 1


@dataclass
class DemoResult:
    """What a run measured (also in ``report.json``).

    Attributes:
        losses: loss before each step, then after the last.
        seconds_per_step: mean time of one fitting step.
        total_seconds: the whole run, synthesis and files included.
        initial_errors, fitted_errors: :func:`~grafx_core.demo.report.errors_by_type` at the start and end.
        files: paths of everything written.
    """

    losses: list[float]
    seconds_per_step: float
    total_seconds: float
    initial_errors: dict[str, Any]
    fitted_errors: dict[str, Any]
    files: dict[str, str]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _processors(console: Console) -> dict[str, Any]:
    try:
        return build_processors(console.graph, console.options, SAMPLE_RATE)
    except UnknownNodeTypeError as exc:
        raise UnknownNodeTypeError(
            f"{exc}\nthe demo needs the grafx-dsp and grafx-pedalboard plugins: "
            "pip install -e plugins/grafx-dsp -e plugins/grafx-pedalboard (make demo installs them)"
        ) from exc


def _save_inputs(folder: str, console: Console, names: list[str], audio: torch.Tensor) -> list[str]:
    """The graph, processor options and sources: what `grafx-core render` needs. Returns the source paths."""
    console.graph.save(os.path.join(folder, "graph.json"))
    with open(os.path.join(folder, "options.json"), "w", encoding="utf-8") as f:
        json.dump(console.options, f, indent=1)
    os.makedirs(os.path.join(folder, "sources"), exist_ok=True)
    paths = [os.path.join(folder, "sources", f"{k:02d}_{name}.wav") for k, name in enumerate(names)]
    for path, track in zip(paths, audio):
        write_wav(path, track, SAMPLE_RATE)
    return paths


def run_demo(settings: DemoSettings, out: TextIO | None = None, progress_stream: TextIO | None = None) -> DemoResult:
    """Run the demo and write its files into ``settings.output``.

    Args:
        settings: sizes, estimator, seed, device and output folder.
        out: where the summary goes (stdout by default).
        progress_stream: where the progress bar goes (stderr by default).

    Raises:
        UnknownNodeTypeError: grafx-dsp or grafx-pedalboard is not installed.
        OptionalDependencyError: matplotlib is not installed.
    """
    default_threads = torch.get_num_threads()
    with _torch_threads(settings.threads):
        return _run(settings, sys.stdout if out is None else out, progress_stream, default_threads)


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run(settings: DemoSettings, out: TextIO, progress_stream: TextIO | None, render_threads: int) -> DemoResult:
    require("matplotlib", "plot", "the demo")  # for its plots: fail before the fit, not after it
    began = time.perf_counter()
    device = _device(settings.device)
    folder = settings.output
    os.makedirs(folder, exist_ok=True)

    names, audio = synthesise_multitrack(settings.tracks, settings.seconds, SAMPLE_RATE, settings.seed)
    console = build_console(names, settings.estimator)
    graph, processors = console.graph, _processors(console)
    plan = compile_render(graph, processors)
    counts = {t: len(graph.nodes_of_type(t)) for t in graph.processor_types()}
    print(f"{len(names)} tracks ({', '.join(names)}), {settings.seconds:g} s stereo at {SAMPLE_RATE} Hz, on {device}",
          file=out)
    print(f"console: {len(graph)} nodes, {len(graph.edges)} edges, {len(plan.stages)} render stages; "
          + ", ".join(f"{t} x{c}" for t, c in counts.items()), file=out)

    generator = torch.Generator().manual_seed(settings.seed)
    hidden = draw_parameters(graph, processors, generator).to(device)
    initial = draw_parameters(graph, processors, generator).to(device)
    sources = audio.to(device)
    with torch.no_grad():
        target = plan(hidden, sources)[0][0]
        initial_mix = plan(initial, sources)[0][0]
    latent = LatentParameters(initial, processors)
    result = fit(lambda params: plan(params, sources)[0][0], latent, SpectralLoss(target), settings.steps,
                 settings.learning_rate, Progress(settings.steps, progress_stream))

    files = {name: os.path.join(folder, name) for name in (
        "graph.json", "options.json", "hidden.params.json", "initial.params.json", "fitted.params.json",
        "target.wav", "initial.wav", "fitted.wav", "loss.png", "spectrograms.png", "graph.png", "report.json")}
    source_files = _save_inputs(folder, console, names, audio)
    for label, params in (("hidden", hidden), ("initial", initial), ("fitted", latent.detached())):
        save_parameters(params, files[f"{label}.params.json"])
    # The fitted mix is rendered from the saved file, as `grafx-core render` will render it: with
    # torch's default thread count too, since FFTs and sums may round differently on other counts.
    fitted = load_parameters(files["fitted.params.json"], device=device)
    with torch.no_grad(), _torch_threads(render_threads):
        fitted_mix = render(graph, processors, fitted, sources)[0][0]
    mixes = {"target": target, "initial": initial_mix, "fitted": fitted_mix}
    for label, mix in mixes.items():
        write_wav(files[f"{label}.wav"], mix, SAMPLE_RATE)
    plot_loss(files["loss.png"], result.losses, result.seconds_per_step)
    plot_spectrograms(files["spectrograms.png"], mixes, SAMPLE_RATE)
    draw_graph(graph, files["graph.png"], processors=processors, stages=plan.stages,
               title="demo console (colour: render stage)")

    values = {label: natural_parameters(processors, p) for label, p in
              (("hidden", hidden), ("initial", initial), ("fitted", fitted))}
    initial_errors = errors_by_type(processors, values["hidden"], values["initial"])
    fitted_errors = errors_by_type(processors, values["hidden"], values["fitted"])
    total = time.perf_counter() - began
    report = {
        "settings": {**asdict(settings), "device": str(device), "sample_rate": SAMPLE_RATE, "tracks": names},
        "loss": {"initial": result.losses[0], "final": result.losses[-1], "curve": result.losses},
        "time": {"seconds_per_step": result.seconds_per_step, "total_seconds": total},
        "errors_by_type": {"initial": initial_errors, "fitted": fitted_errors},
        "nodes": node_report(graph, processors, values),
    }
    with open(files["report.json"], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)

    first, last = result.losses[0], result.losses[-1]
    print(f"\nloss {first:.4f} -> {last:.4f} (x{last / first:.3f}, {100 * (1 - last / first):.0f}% lower) in "
          f"{settings.steps} steps, {result.seconds_per_step:.2f} s per step; {total:.0f} s in all", file=out)
    print("mean parameter error per node type, start -> fitted:", file=out)
    for line in format_errors(initial_errors, fitted_errors, counts):
        print(line, file=out)
    print(f"\nwrote {folder}/: target.wav initial.wav fitted.wav, loss.png spectrograms.png graph.png, report.json, "
          "graph.json options.json *.params.json, sources/*.wav", file=out)
    print("reproduce the fitted mix:\n  grafx-core render " + files["graph.json"] + " "
          + " ".join(f"-s {p}" for p in source_files)
          + f" -p {files['fitted.params.json']} --options {files['options.json']} -o fitted_again.wav", file=out)
    return DemoResult(result.losses, result.seconds_per_step, total, initial_errors, fitted_errors,
                      {**files, "sources": os.path.join(folder, "sources")})


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text}")
    return value


def _device_name(text: str) -> str:
    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected auto or a torch device such as cpu or cuda:0, got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here (use cpu, or auto to take CUDA "
                                         "when present)")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the demo's options."""
    defaults = DemoSettings()
    parser.add_argument("--steps", type=_at_least(1), default=defaults.steps,
                        help=f"fitting steps (default {defaults.steps})")
    parser.add_argument("--tracks", type=_at_least(1), default=defaults.tracks,
                        help=f"number of synthesised tracks (default {defaults.tracks})")
    parser.add_argument("--seconds", type=_seconds, default=defaults.seconds,
                        help=f"length of the multitrack (default {defaults.seconds:g})")
    parser.add_argument("--estimator", choices=ESTIMATOR_CHOICES, default=defaults.estimator,
                        help="gradient estimator of the pedalboard nodes (default: each effect's measured choice)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the music and the parameters")
    parser.add_argument("--device", type=_device_name, default=defaults.device,
                        help="torch device of the analytic nodes: auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--output", "-o", default=defaults.output, help=f"output folder (default {defaults.output})")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help=f"Adam's initial learning rate (default {defaults.learning_rate:g})")
    parser.add_argument("--threads", type=_at_least(1), default=defaults.threads,
                        help=f"torch threads (default {defaults.threads}: more are faster only on otherwise idle cores)")


def run(args: argparse.Namespace) -> int:
    """Run the demo with the parsed options."""
    run_demo(DemoSettings(steps=args.steps, tracks=args.tracks, seconds=args.seconds, estimator=args.estimator,
                          seed=args.seed, device=args.device, output=args.output, learning_rate=args.learning_rate,
                          threads=args.threads))
    return 0
