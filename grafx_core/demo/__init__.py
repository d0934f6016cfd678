"""The demo's pieces: the synthesised multitrack, the console and its parameter draws, and ``run_demo``.

The ``grafx-core demo`` command (:mod:`grafx_core.commands.demo`) says what the demo does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import torch

from .._optional import require
from .._threads import torch_threads
from ..errors import UnknownNodeTypeError
from ..fitting.console import Console
from ..fitting.session import FitJob, fit_console
from ..fitting.automation import Automation, select_controls
from ..registry import processors_for_graph
from .draws import demo_console, draw_parameters
from .ride import hide_fader_ride
from .multitrack import synthesise_multitrack
from ..render import render

__all__ = ["DemoSettings", "DemoResult", "run_demo", "MIN_SECONDS"]

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
    ``hide_ride`` puts a fader ride in the target (:mod:`grafx_core.demo.ride`)
    and fits the faders as curves.
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
    hide_ride: bool = False


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
        return processors_for_graph(console.graph, console.options, sample_rate=SAMPLE_RATE)
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
    automation = None
    if settings.hide_ride:
        automation = Automation(select_controls(console.graph, processors, ["fader"]))
        hidden = hide_fader_ride(console.graph, hidden, names, audio.shape[-1], automation.hop)
    with torch.no_grad(), torch_threads(settings.threads):
        target = render(console.graph, processors, hidden, audio.to(device),
                        control_hop=None if automation is None else automation.hop)[0][0]
    job = FitJob(names, audio, target.cpu(), SAMPLE_RATE, console.graph, processors, console.options,
                 settings.output, start=initial, hidden=hidden, force=settings.force, steps=settings.steps,
                 learning_rate=settings.learning_rate, device=str(device), threads=settings.threads, title="demo",
                 settings={**asdict(settings), "device": str(device)}, automation=automation)
    outcome = fit_console(job, sys.stdout if out is None else out, progress_stream)
    errors = outcome.report.get("errors_by_type", {"initial": {}, "fitted": {}})
    return DemoResult(outcome.fit.losses, outcome.fit.seconds_per_step, time.perf_counter() - began,
                      errors["initial"], errors["fitted"], outcome.files, outcome.exit_status)
