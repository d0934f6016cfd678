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
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import torch

from .._optional import require
from .._threads import torch_threads
from ..commands._arguments import (at_least, device_name, positive_number, seconds_between, seed_number,
                                   threads_count, whole_number_between)
from ..commands._processors import build_processors
from ..errors import UnknownNodeTypeError
from ..fitting.console import Console
from ..fitting.session import FitJob, fit_console
from .draws import ESTIMATOR_CHOICES, demo_console, draw_parameters
from .multitrack import synthesise_multitrack
from ..render import render

__all__ = ["DemoSettings", "DemoResult", "run_demo", "add_arguments", "run"]

SAMPLE_RATE = 44100
MIN_SECONDS = 0.1
"""The shortest multitrack: the loss's longest STFT frame (4,096 samples) needs about this much."""


@dataclass(frozen=True)
class DemoSettings:
    """The demo's options (the command line's, with the same defaults).

    ``threads`` is torch's intra-op thread count during the run (``None``:
    leave it). One by default: on an idle 2-core CPU two threads made a step
    1.5x faster (0.26 against 0.39 s), but with other processes on the cores
    they made it 3-8x slower, as OpenMP threads wait for each other.
    ``force`` replaces the results of an earlier run in ``output``.
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
    force: bool = False


@dataclass
class DemoResult:
    """What a run measured (also in ``report.json``).

    Attributes:
        losses: loss before each step, then after the last.
        seconds_per_step: mean time of one fitting step.
        total_seconds: the whole run, synthesis and files included.
        initial_errors, fitted_errors: :func:`~grafx_core.fitting.report.errors_by_type` at the start and end
            (empty after Ctrl-C).
        files: paths of everything written.
        exit_status: 0, or 130 after Ctrl-C.
    """

    losses: list[float]
    seconds_per_step: float
    total_seconds: float
    initial_errors: dict[str, Any]
    fitted_errors: dict[str, Any]
    files: dict[str, str]
    exit_status: int = 0


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


def run_demo(settings: DemoSettings, out: TextIO | None = None, progress_stream: TextIO | None = None) -> DemoResult:
    """Run the demo and write its files into ``settings.output``.

    Args:
        settings: sizes, estimator, seed, device and output folder.
        out: where the summary goes (stdout by default).
        progress_stream: where the progress bar goes (stderr by default).

    Raises:
        UnknownNodeTypeError: grafx-dsp or grafx-pedalboard is not installed.
        OptionalDependencyError: matplotlib is not installed.
        OutputFolderError: the output folder holds earlier results and ``settings.force`` is false.
    """
    require("matplotlib", "plot", "the demo")  # for its plots: fail before the fit, not after it
    began = time.perf_counter()
    device = _device(settings.device)
    names, audio = synthesise_multitrack(settings.tracks, settings.seconds, SAMPLE_RATE, settings.seed)
    console = demo_console(names, settings.estimator)
    processors = _processors(console)
    generator = torch.Generator().manual_seed(settings.seed)
    hidden = draw_parameters(console.graph, processors, generator).to(device)
    initial = draw_parameters(console.graph, processors, generator).to(device)
    with torch.no_grad(), torch_threads(settings.threads):
        target = render(console.graph, processors, hidden, audio.to(device))[0][0]
    job = FitJob(names, audio, target.cpu(), SAMPLE_RATE, console.graph, processors, console.options,
                 settings.output, start=initial, hidden=hidden, force=settings.force, steps=settings.steps,
                 learning_rate=settings.learning_rate, device=str(device), threads=settings.threads, title="demo",
                 settings={**asdict(settings), "device": str(device)})
    outcome = fit_console(job, sys.stdout if out is None else out, progress_stream)
    errors = outcome.report.get("errors_by_type", {"initial": {}, "fitted": {}})
    return DemoResult(outcome.fit.losses, outcome.fit.seconds_per_step, time.perf_counter() - began,
                      errors["initial"], errors["fitted"], outcome.files, outcome.exit_status)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the demo's options."""
    defaults = DemoSettings()
    parser.add_argument("--steps", type=at_least(1), default=defaults.steps,
                        help=f"fitting steps (default {defaults.steps})")
    parser.add_argument("--tracks", type=whole_number_between(1, 64), default=defaults.tracks,
                        help=f"number of synthesised tracks (default {defaults.tracks})")
    parser.add_argument("--seconds", type=seconds_between(MIN_SECONDS, 600.0, ": the loss's longest frame needs the least"),
                        default=defaults.seconds,
                        help=f"length of the multitrack (default {defaults.seconds:g}, at least {MIN_SECONDS:g})")
    parser.add_argument("--estimator", choices=ESTIMATOR_CHOICES, default=defaults.estimator,
                        help="gradient estimator of the pedalboard nodes (default: each effect's measured choice)")
    parser.add_argument("--seed", type=seed_number, default=defaults.seed, help="seeds the music and the parameters")
    parser.add_argument("--device", type=device_name, default=defaults.device,
                        help="torch device of the analytic nodes: auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--output", "-o", default=defaults.output, help=f"output folder (default {defaults.output})")
    parser.add_argument("--learning-rate", type=positive_number, default=defaults.learning_rate,
                        help=f"Adam's initial learning rate (default {defaults.learning_rate:g})")
    parser.add_argument("--threads", type=threads_count, default=defaults.threads,
                        help=f"torch threads (default {defaults.threads}: more are faster only on otherwise idle cores)")
    parser.add_argument("--force", action="store_true", help="replace the results of an earlier run in the output folder")


def run(args: argparse.Namespace) -> int:
    """Run the demo with the parsed options."""
    result = run_demo(DemoSettings(steps=args.steps, tracks=args.tracks, seconds=args.seconds, estimator=args.estimator,
                          seed=args.seed, device=args.device, output=args.output, learning_rate=args.learning_rate,
                          threads=args.threads, force=args.force))
    return result.exit_status
