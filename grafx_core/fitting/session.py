"""One console fit from start to files: what ``grafx-core fit`` and ``grafx-core demo`` both run.

:func:`fit_console` fits a console's parameters to a target mix, writes the
graph, options, sources and parameter files, the WAVs, plots, a loss log
and ``report.json`` into a :class:`~grafx_core.fitting.outputs.ResultsFolder`,
and prints the ``grafx-core render`` command that reproduces ``fitted.wav``
bit for bit. Ctrl-C during the fit saves the parameters fitted so far and
returns exit status 130.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

from .._optional import require
from .._threads import torch_threads
from ..drawing import draw_graph
from ..graph import Graph
from ..parameter_file import load_parameters, save_parameters
from ..parameters import create_empty_parameters
from ..plan import compile_render
from ..render import render
from ..wavfile import write_wav
from .latent import LatentParameters
from .loop import FitResult, fit
from .loss import SpectralLoss
from .metrics import audio_metrics, integrated_loudness, peak_dbfs
from .outputs import ResultsFolder, render_command
from .progress import LossLog, Progress
from .pruning import PruneResult, prune_console
from .report import errors_by_type, format_errors, natural_parameters, node_report, plot_loss, plot_spectrograms

__all__ = ["FitJob", "FitOutcome", "fit_console", "INTERRUPTED"]

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


@dataclass
class FitJob:
    """Everything one fit needs.

    Attributes:
        names: one name per stem.
        stems: ``[stems, channels, samples]``, one per ``"in"`` node in id order.
        target: ``[channels, samples]``.
        sample_rate: in Hz.
        graph: the console; one ``"out"`` node.
        processors: its processors by node type.
        options: the factory options they were built with (saved for ``render --options``).
        start: start parameters in processor units (``None``: each processor's defaults).
        hidden: the parameters that made the target, when known (reported next to the fit).
        output: the results folder.
        force: replace earlier results there.
        inputs: files the run reads (never overwritten).
        steps, learning_rate: Adam's budget and initial rate.
        patience: early stopping (see :func:`~grafx_core.fitting.fit`); ``None`` never stops early.
        prune: gate every node and prune after the fit.
        prune_steps: steps of the gated fit (``None``: half of ``steps``).
        device: torch device of the fit.
        threads: torch threads during the fit (``None``: leave them).
        title: names the console in plots.
        notes: lines about how the inputs were conformed (printed and reported).
        settings: JSON-ready options for the report.
    """

    names: list[str]
    stems: torch.Tensor
    target: torch.Tensor
    sample_rate: int
    graph: Graph
    processors: dict[str, Any]
    options: dict[str, dict[str, Any]]
    output: str
    start: Mapping[str, Any] | None = None
    hidden: Mapping[str, Any] | None = None
    force: bool = False
    inputs: Sequence[str] = ()
    steps: int = 200
    learning_rate: float = 0.05
    patience: int | None = None
    prune: bool = False
    prune_steps: int | None = None
    device: str = "cpu"
    threads: int | None = 1
    title: str = "console"
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitOutcome:
    """What :func:`fit_console` did.

    Attributes:
        exit_status: 0, or :data:`INTERRUPTED` after Ctrl-C.
        fit: the fit's losses and timing.
        report: what ``report.json`` holds.
        files: result name -> path.
        render_command: the command that reproduces ``fitted.wav``.
        prune: the pruning, when asked for.
    """

    exit_status: int
    fit: FitResult
    report: dict[str, Any]
    files: dict[str, str]
    render_command: str
    prune: PruneResult | None = None


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # JSON has no inf; "-inf" LUFS is silence


def _clean(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _clean(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_clean(v) for v in tree]
    return _json_number(tree) if isinstance(tree, float) else tree


def fit_console(job: FitJob, out: TextIO, progress_stream: TextIO | None = None) -> FitOutcome:
    """Fit ``job``'s console to its target and write the results (see the module's description).

    Raises:
        OutputFolderError: the output folder holds earlier results (without ``force``) or other files.
        OptionalDependencyError: matplotlib is missing (checked before the fit).
        FloatingPointError: the loss became NaN or infinite.
    """
    require("matplotlib", "plot", "a console fit")  # for the plots: fail before the fit, not after
    default_threads = torch.get_num_threads()
    folder = ResultsFolder(job.output, job.force, job.inputs)
    with folder, torch_threads(job.threads):
        return _fit(job, folder, out, progress_stream, default_threads)


def _fit(job: FitJob, folder: ResultsFolder, out: TextIO, progress_stream: TextIO | None,
         render_threads: int) -> FitOutcome:
    began = time.perf_counter()
    device = torch.device(job.device)
    graph, processors = job.graph, job.processors
    plan = compile_render(graph, processors)
    counts = {t: len(graph.nodes_of_type(t)) for t in graph.processor_types()}
    seconds = job.target.shape[-1] / job.sample_rate
    print(f"{len(job.names)} stems ({', '.join(job.names)}), {seconds:.2f} s at {job.sample_rate} Hz, on {device}",
          file=out)
    for note in job.notes:
        print(f"  {note}", file=out)
    print(f"console: {len(graph)} nodes, {len(graph.edges)} edges, {len(plan.stages)} render stages; "
          + ", ".join(f"{t} x{c}" for t, c in counts.items()), file=out)

    files: dict[str, str] = {}

    def path(name: str) -> str:
        files[name] = folder.file(name)
        return files[name]

    graph.save(path("graph.json"))
    with open(path("options.json"), "w", encoding="utf-8") as f:
        json.dump(job.options, f, indent=1)
    source_files = [path(f"sources/{k:02d}_{name}.wav") for k, name in enumerate(job.names)]
    for source, track in zip(source_files, job.stems):
        write_wav(source, track, job.sample_rate)
    write_wav(path("target.wav"), job.target, job.sample_rate)

    start = job.start if job.start is not None else create_empty_parameters(graph, processors)
    start = {t: {k: v.detach().to(device) for k, v in p.items()} for t, p in start.items()}
    save_parameters(start, path("initial.params.json"))
    if job.hidden is not None:
        save_parameters(job.hidden, path("hidden.params.json"))
    sources, target = job.stems.to(device), job.target.to(device)
    with torch.no_grad():
        initial_mix = plan(start, sources)[0][0]
    loss = SpectralLoss(target)
    latent = LatentParameters(start, processors)
    log = LossLog(path("loss.csv"))
    try:
        result = fit(lambda p: plan(p, sources)[0][0], latent, loss, job.steps, job.learning_rate,
                     Progress(job.steps, progress_stream), patience=job.patience, log=log)
    finally:
        log.close()
    fitted_params = latent.detached()
    save_parameters(fitted_params, path("fitted.params.json"))
    if result.stopped == "interrupted":
        return _interrupted(job, result, files, path, out, began)

    pruned = None
    if job.prune:
        print("pruning: every node gated, fitting gates and parameters together", file=out)
        steps = job.prune_steps or max(job.steps // 2, 1)
        pruned = prune_console(graph, processors, fitted_params, sources, loss, result.final_loss, steps,
                               job.learning_rate, progress=Progress(steps, progress_stream))
        if pruned.fit.stopped == "interrupted":
            return _interrupted(job, result, files, path, out, began)

    # The fitted mix is rendered from the saved file, as `grafx-core render` will render it: with the
    # thread count its printed command names, since FFTs and sums may round differently on other counts.
    fitted = load_parameters(files["fitted.params.json"], device=device)
    with torch.no_grad(), torch_threads(render_threads):
        fitted_mix = render(graph, processors, fitted, sources)[0][0]
    mixes = {"target": target, "initial": initial_mix, "fitted": fitted_mix}
    write_wav(path("initial.wav"), initial_mix, job.sample_rate)
    write_wav(path("fitted.wav"), fitted_mix, job.sample_rate)
    warnings = [f"{label}.wav peaks at {peak_dbfs(mix):+.1f} dBFS: written as 32-bit float, so nothing is "
                "clipped, but lower its level before a fixed-point export" for label, mix in mixes.items()
                if peak_dbfs(mix) > 0]
    plot_loss(path("loss.png"), result.losses, result.seconds_per_step)
    plot_spectrograms(path("spectrograms.png"), mixes, job.sample_rate)
    draw_graph(graph, path("graph.png"), processors=processors, stages=plan.stages,
               title=f"{job.title} console (colour: render stage)")

    command = render_command(files["graph.json"], source_files, files["fitted.params.json"],
                             files["options.json"], os.path.join(job.output, "fitted_again.wav"), render_threads)
    with open(path("render_command.txt"), "w", encoding="utf-8") as f:
        f.write(command + "\n")

    labelled = {"initial": start, "fitted": fitted}
    if job.hidden is not None:
        labelled = {"hidden": job.hidden, **labelled}
    values = {label: natural_parameters(processors, p) for label, p in labelled.items()}
    report: dict[str, Any] = {
        "settings": {**job.settings, "device": str(device), "sample_rate": job.sample_rate, "stems": job.names},
        "initial_loss": result.initial_loss,
        "final_loss": result.final_loss,
        "stopped": result.stopped,
        "steps_taken": result.steps,
        "best_step": result.best_step,
        "loss_curve": result.losses,
        "metrics": {"target_loudness_lufs": integrated_loudness(target, job.sample_rate),
                    **{label: audio_metrics(mixes[label], target, job.sample_rate) for label in ("initial", "fitted")}},
        "time": {"seconds_per_step": result.seconds_per_step},
        "nodes": node_report(graph, processors, values),
        "render_command": command,
        "notes": job.notes,
        "warnings": warnings,
    }
    if job.hidden is not None:
        report["errors_by_type"] = {"initial": errors_by_type(processors, values["hidden"], values["initial"]),
                                    "fitted": errors_by_type(processors, values["hidden"], values["fitted"])}
    if pruned is not None:
        report["prune"] = _save_pruned(pruned, job, path)
    report["time"]["total_seconds"] = time.perf_counter() - began
    with open(path("report.json"), "w", encoding="utf-8") as f:
        json.dump(_clean(report), f, indent=1)
    _summary(job, result, report, counts, pruned, warnings, command, out)
    return FitOutcome(0, result, report, files, command, pruned)


def _save_pruned(pruned: PruneResult, job: FitJob, path: Any) -> dict[str, Any]:
    pruned.graph.save(path("pruned.graph.json"))
    save_parameters(pruned.parameters, path("pruned.params.json"))
    present = set(pruned.graph.processor_types())
    with open(path("pruned.options.json"), "w", encoding="utf-8") as f:
        json.dump({t: o for t, o in job.options.items() if t in present}, f, indent=1)
    return {"processors_before": pruned.processors_before, "processors_after": pruned.processors_after,
            "loss_before": pruned.loss_before, "loss_after": pruned.loss_after, "removed": pruned.removed}


def _interrupted(job: FitJob, result: FitResult, files: dict[str, str], path: Any, out: TextIO,
                 began: float) -> FitOutcome:
    report = {"settings": job.settings, "stopped": "interrupted", "steps_taken": result.steps,
              "initial_loss": result.losses[0] if result.losses else None,
              "final_loss": result.losses[-1] if result.losses else None, "loss_curve": result.losses,
              "time": {"total_seconds": time.perf_counter() - began}}
    with open(path("report.json"), "w", encoding="utf-8") as f:
        json.dump(_clean(report), f, indent=1)
    print(f"interrupted after {result.steps} of {job.steps} steps: the parameters fitted so far are in "
          f"{files['fitted.params.json']}", file=out)
    return FitOutcome(INTERRUPTED, result, report, files, "")


def _summary(job: FitJob, result: FitResult, report: dict[str, Any], counts: dict[str, int],
             pruned: PruneResult | None, warnings: list[str], command: str, out: TextIO) -> None:
    first, last = result.initial_loss, result.final_loss
    how = {"completed": "", "converged": " (stopped early: the loss stopped falling)"}[result.stopped]
    print(f"\nloss {first:.4f} -> {last:.4f} (x{last / first:.3f}, {100 * (1 - last / first):.0f}% lower) in "
          f"{result.steps} steps{how}, {result.seconds_per_step:.2f} s per step; "
          f"{report['time']['total_seconds']:.0f} s in all", file=out)
    fitted = report["metrics"]["fitted"]
    print(f"fitted mix: SNR {fitted['snr_db']:.1f} dB, log-spectral distance {fitted['log_spectral_distance_db']:.1f} dB, "
          f"{fitted['loudness_lufs']:.1f} LUFS (target {report['metrics']['target_loudness_lufs']:.1f} LUFS), "
          f"peak {fitted['peak_dbfs']:+.1f} dBFS", file=out)
    if "errors_by_type" in report:
        print("mean parameter error per node type, start -> fitted:", file=out)
        for line in format_errors(report["errors_by_type"]["initial"], report["errors_by_type"]["fitted"], counts):
            print(line, file=out)
    if pruned is not None:
        print(f"pruned: {pruned.processors_after} of {pruned.processors_before} processors kept, loss "
              f"{pruned.loss_before:.4f} -> {pruned.loss_after:.4f} (pruned.graph.json, pruned.params.json)", file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    print(f"\nwrote {job.output}/: target.wav initial.wav fitted.wav, loss.png spectrograms.png graph.png, "
          "report.json loss.csv, graph.json options.json *.params.json, sources/*.wav", file=out)
    print(f"reproduce the fitted mix:\n  {command}", file=out)
