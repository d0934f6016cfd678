"""One console fit from start to files: what ``grafx-core fit`` and ``grafx-core demo`` both run.

:func:`fit_console` fits a console's parameters to a target mix, writes the
graph, options, sources and parameter files, the WAVs, plots, a loss log
and ``report.json`` into a :class:`~grafx_core.fitting.outputs.ResultsFolder`,
and prints the ``grafx-core render`` command that reproduces ``fitted.wav``
bit for bit. Ctrl-C during the fit saves the parameters fitted so far and
returns exit status 130.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

from .._optional import require
from .._threads import torch_threads
from ..drawing import draw_graph
from ..estimators._warnings import NonDifferentiableParameterWarning
from ..graph import Graph
from ..parameter_file import load_parameters, save_parameters
from ..parameters import create_empty_parameters
from ..plan import compile_render
from ..render import render
from ..wavfile import write_wav
from .engineer import describe_stems, residual_report
from .excerpts import warmed_excerpts
from .initial import initialise, loudest_excerpt, polish_returns
from .automation import Automation, SmoothCurves, automation_lines, automation_report, plot_curves, to_curves
from .latent import LatentParameters
from .loop import FitResult
from .loss import SpectralLoss
from .metrics import audio_metrics, integrated_loudness, peak_dbfs
from .optimizers import optimise
from .outputs import ResultsFolder, render_command
from .progress import LossLog, Progress
from .pruning import PruneResult, prune_console
from .renders import RenderBudget
from .report import (errors_by_type, format_errors, natural_parameters, node_report, outside_range, plot_loss,
                     plot_spectrograms)

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
        steps, learning_rate: the most steps (see :data:`~grafx_core.fitting.OPTIMIZERS` for what a
            step is) and Adam's initial rate.
        optimizer: the fit backend, a key of :data:`~grafx_core.fitting.OPTIMIZERS`.
        renders: stop once the fit has rendered the graph this many times (``None``: no limit; see
            :class:`~grafx_core.fitting.RenderBudget`).
        seed: seeds the stochastic optimisers.
        patience: early stopping (see :func:`~grafx_core.fitting.fit`); ``None`` never stops early.
        prune: gate every node and prune after the fit.
        prune_steps: steps of the gated fit (``None``: half of ``steps``).
        device: torch device of the fit.
        threads: torch threads during the fit (``None``: leave them).
        title: names the console in plots.
        notes: lines about how the inputs were conformed (printed and reported).
        settings: JSON-ready options for the report.
        seconds: a wall-clock budget for the fit's steps (``None``: only ``steps`` bounds it).
        fixed: parameters left at their start values, ``{node_type: (name, ...)}``.
        alignment: how the target was lined up with the stems (JSON-ready, for the report).
        excerpt_seconds: the steps fit the loudest this many seconds (``None``: all of it).
        initialise: start from least-squares faders and pans and band-ratio EQs where that scores
            better than ``start`` (:func:`~grafx_core.fitting.initial.initialise`).
        automation: controls to fit as smooth curves (``None``: every control is one value).
        warmup_seconds: with ``excerpt_seconds``, render each excerpt after this many seconds of the
            material before it, states carried (``None``: excerpts start from silence); see
            :class:`~grafx_core.fitting.excerpts.ExcerptObjective`.
        excerpts: how many excerpts the steps fit with a warm-up (1: the loudest; more: spread evenly).
        warmup_gradient: follow the gradient through the warm-up too (memory of the warm-up's graph).
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
    optimizer: str = "adam"
    renders: int | None = None
    seed: int = 0
    patience: int | None = None
    prune: bool = False
    prune_steps: int | None = None
    device: str = "cpu"
    threads: int | None = 1
    title: str = "console"
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    fixed: Mapping[str, Sequence[str]] = field(default_factory=dict)
    alignment: Mapping[str, Any] | None = None
    initialise: bool = False
    excerpt_seconds: float | None = None
    automation: Automation | None = None
    warmup_seconds: float | None = None
    excerpts: int = 1
    warmup_gradient: bool = False


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
        NonFiniteLossError: the loss became NaN or infinite.
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
    automation, samples = job.automation, job.target.shape[-1]
    hop = automation.hop if automation is not None else None
    plan = compile_render(graph, processors, control_hop=hop)
    counts = {t: len(graph.nodes_of_type(t)) for t in graph.processor_types()}
    seconds = job.target.shape[-1] / job.sample_rate
    print(f"{len(job.names)} stems ({', '.join(job.names)}), {seconds:.2f} s at {job.sample_rate} Hz, on {device}",
          file=out)
    for note in job.notes:
        print(f"  {note}", file=out)
    print(f"console: {len(graph)} nodes, {len(graph.edges)} edges, {len(plan.stages)} render stages; "
          + ", ".join(f"{t} x{c}" for t, c in counts.items()), file=out)
    for line in _fixed_controls(processors):
        print(f"  {line}", file=out)

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
    sources, target = job.stems.to(device), job.target.to(device)
    initialisation = None
    if job.initialise:
        began_init = time.perf_counter()
        initialisation = initialise(graph, job.names, processors, start, sources, target, job.sample_rate,
                                    lambda p, s: plan(p, s)[0][0], fixed=job.fixed)
        start = initialisation.parameters
        for note in initialisation.notes:
            print(f"  {note} in {time.perf_counter() - began_init:.0f} s", file=out)
    if automation is not None:
        start = to_curves(start, processors, automation.controls, samples, automation.hop)
    save_parameters(start, path("initial.params.json"), control_hop=hop)
    if job.hidden is not None:
        save_parameters(job.hidden, path("hidden.params.json"), control_hop=hop)
    with torch.no_grad():
        initial_mix = plan(start, sources)[0][0]
    # The steps fit the loudest excerpt: a console's parameters do not change over time, and a step costs
    # what its audio lasts. The mixes and metrics below are of the whole.
    fit_sources, fit_target = sources, target
    windows = None
    if job.warmup_seconds is not None:  # long material: excerpts after a warm-up with their real state
        windows = warmed_excerpts(plan, sources, target, job.sample_rate, job.excerpt_seconds, job.warmup_seconds,
                                  job.excerpts, job.warmup_gradient, out)
    # Curves span the whole clip, frame for frame: an automated fit steps on all of it.
    elif job.excerpt_seconds is not None and automation is None:
        fit_sources, fit_target = loudest_excerpt(sources, target, job.sample_rate, job.excerpt_seconds)
        if fit_target.shape[-1] < target.shape[-1]:
            print(f"  steps fit the loudest {fit_target.shape[-1] / job.sample_rate:.1f} s of "
                  f"{seconds:.1f} s (--excerpt); the mix and metrics are of all of it", file=out)
    loss: Any = windows if windows is not None else SpectralLoss(fit_target)
    render_fit = windows.render if windows is not None else lambda p: plan(p, fit_sources)[0][0]
    latent = LatentParameters(start, processors)
    frozen = latent.freeze(job.fixed)
    if frozen:
        print(f"  kept at their start values (another control does what they do): {', '.join(frozen)}", file=out)
    objective = loss if automation is None else SmoothCurves(loss, latent, automation.controls, automation.smoothness)
    log = LossLog(path("loss.csv"))
    budget = RenderBudget(graph, processors, job.renders)
    try:
        with _quiet_fixed_controls():
            result = optimise(render_fit, latent, objective, job.steps, job.optimizer,
                              learning_rate=job.learning_rate, progress=Progress(job.steps, progress_stream),
                              patience=job.patience, log=log, budget=budget, seed=job.seed, seconds=job.seconds)
    finally:
        log.close()
    fitted_params = latent.detached()
    polished_loss = result.final_loss  # the loss the pruning starts from, on the excerpt the steps fit
    if job.initialise and automation is None and result.stopped != "interrupted":
        polished = polish_returns(graph, job.names, processors, fitted_params, sources, target,
                                  lambda p, s: plan(p, s)[0][0], job.sample_rate, job.fixed)
        if polished is not None:
            fitted_params = polished.parameters
            with torch.no_grad():
                polished_loss = float(loss(render_fit(fitted_params)))
            for note in polished.notes:
                print(f"  {note}", file=out)
    save_parameters(fitted_params, path("fitted.params.json"), control_hop=hop)
    if result.stopped == "interrupted":
        return _interrupted(job, result, files, path, out, began)

    pruned = None
    if job.prune:
        print("pruning: every node gated, fitting gates and parameters together", file=out)
        steps = job.prune_steps or max(job.steps // 2, 1)
        with _quiet_fixed_controls():
            pruned = prune_console(graph, processors, fitted_params, fit_sources, loss, polished_loss, steps,
                                   job.learning_rate, progress=Progress(steps, progress_stream), fixed=job.fixed)
        if pruned.fit.stopped == "interrupted":
            return _interrupted(job, result, files, path, out, began)

    # The fitted mix is rendered from the saved file, as `grafx-core render` will render it: with the
    # thread count its printed command names, since FFTs and sums may round differently on other counts.
    fitted = load_parameters(files["fitted.params.json"], device=device)
    with torch.no_grad(), torch_threads(render_threads):
        fitted_mix = render(graph, processors, fitted, sources, control_hop=hop)[0][0]
    mixes = {"target": target, "initial": initial_mix, "fitted": fitted_mix}
    write_wav(path("initial.wav"), initial_mix, job.sample_rate)
    write_wav(path("fitted.wav"), fitted_mix, job.sample_rate)
    warnings = _peak_warnings(mixes)
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
    if automation is not None:  # hidden values may be constants or curves at another rate: compare like with like
        labelled = {label: to_curves(p, processors, automation.controls, samples, automation.hop)
                    for label, p in labelled.items()}
    values = {label: natural_parameters(processors, p) for label, p in labelled.items()}
    report: dict[str, Any] = {
        "settings": {**job.settings, "device": str(device), "sample_rate": job.sample_rate, "stems": job.names},
        "initial_loss": result.initial_loss,
        # The loss of the parameters written (after the polish, where one ran); the steps' own result beside it.
        "final_loss": polished_loss,
        "loss_after_steps": result.final_loss,
        "stopped": result.stopped,
        "steps_taken": result.steps,
        "best_step": result.best_step,
        "loss_curve": result.losses,
        "metrics": {"target_loudness_lufs": integrated_loudness(target, job.sample_rate),
                    **{label: audio_metrics(mixes[label], target, job.sample_rate) for label in ("initial", "fitted")}},
        "time": {"seconds_per_step": result.seconds_per_step},
        "optimizer": job.optimizer,
        "renders": result.renders,
        "nodes": node_report(graph, processors, values),
        "render_command": command,
        "notes": job.notes,
        "warnings": warnings,
        "alignment": dict(job.alignment) if job.alignment is not None else None,
        "outside_range": outside_range(processors, fitted),
        "fit_excerpt_seconds": fit_target.shape[-1] / job.sample_rate,
        "initialisation": None if initialisation is None else {
            "chosen": initialisation.chosen, "losses": initialisation.losses, "renders": initialisation.renders},
    }
    report["stems"] = describe_stems(graph, job.names, report["nodes"], job.stems, job.sample_rate)
    report["residual"] = residual_report(fitted_mix, target, sources, job.names, job.sample_rate)
    if not report["residual"]["expressed"]:
        warnings.append(report["residual"]["words"])
    if job.hidden is not None:
        report["errors_by_type"] = {"initial": errors_by_type(processors, values["hidden"], values["initial"]),
                                    "fitted": errors_by_type(processors, values["hidden"], values["fitted"])}
    if automation is not None:
        report["automation"] = automation_report(graph, processors, automation, labelled, samples, job.sample_rate)
        plot_curves(path("automation.png"), report["automation"], f"{job.title}: automated controls")
    if pruned is not None:
        report["prune"] = _save_pruned(pruned, job, path, source_files, target, render_threads)
    report["time"]["total_seconds"] = time.perf_counter() - began
    with open(path("report.json"), "w", encoding="utf-8") as f:
        json.dump(_clean(report), f, indent=1)
    if automation is not None:
        print("automated controls (automation.png):", file=out)
        for line in automation_lines(report["automation"]):
            print(line, file=out)
    _summary(job, result, polished_loss, report, counts, pruned, warnings, command, out)
    return FitOutcome(0, result, report, files, command, pruned)


def _fixed_controls(processors: Mapping[str, Any]) -> list[str]:
    lines = []
    for node_type, processor in processors.items():
        fixed = getattr(processor, "nondifferentiable_parameters", ())
        if fixed:
            lines.append(f"{node_type}: {len(fixed)} control(s) a gradient cannot move keep their start values "
                         f"({', '.join(fixed)})")
    return lines


@contextlib.contextmanager
def _quiet_fixed_controls() -> Iterator[None]:
    # The start-up line of _fixed_controls names these controls once; the per-control warnings would repeat it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NonDifferentiableParameterWarning)
        yield


def _save_pruned(pruned: PruneResult, job: FitJob, path: Any, source_files: list[str], target: torch.Tensor,
                 render_threads: int) -> dict[str, Any]:
    pruned.graph.save(path("pruned.graph.json"))
    save_parameters(pruned.parameters, path("pruned.params.json"))
    present = set(pruned.graph.processor_types())
    with open(path("pruned.options.json"), "w", encoding="utf-8") as f:
        json.dump({t: o for t, o in job.options.items() if t in present}, f, indent=1)
    # Rendered from the saved files, as the printed command renders it.
    plain = {t: job.processors[t] for t in present}
    parameters = load_parameters(path("pruned.params.json"), device=target.device)
    with torch.no_grad(), torch_threads(render_threads):
        mix = render(pruned.graph, plain, parameters, job.stems.to(target.device))[0][0]
    write_wav(path("pruned.wav"), mix, job.sample_rate)
    command = render_command(path("pruned.graph.json"), source_files, path("pruned.params.json"),
                             path("pruned.options.json"), os.path.join(job.output, "pruned_again.wav"),
                             render_threads)
    with open(path("pruned_render_command.txt"), "w", encoding="utf-8") as f:
        f.write(command + "\n")
    return {"processors_before": pruned.processors_before, "processors_after": pruned.processors_after,
            "loss_before": pruned.loss_before, "loss_after": pruned.loss_after, "removed": pruned.removed,
            "metrics": audio_metrics(mix, target, job.sample_rate), "render_command": command}


_PEAK_MARGIN_DB = 3.0  # a fitted peak this far above the target's is worth a warning


def _peak_warnings(mixes: Mapping[str, torch.Tensor]) -> list[str]:
    warnings = [f"{label}.wav peaks at {peak_dbfs(mix):+.1f} dBFS: written as 32-bit float, so nothing is "
                "clipped, but lower its level before a fixed-point export" for label, mix in mixes.items()
                if peak_dbfs(mix) > 0]
    over = peak_dbfs(mixes["fitted"]) - peak_dbfs(mixes["target"])
    if over > _PEAK_MARGIN_DB:
        warnings.append(f"fitted.wav peaks {over:.1f} dB above the target ({peak_dbfs(mixes['fitted']):+.1f} against "
                        f"{peak_dbfs(mixes['target']):+.1f} dBFS): the target was limited "
                        "harder than the console's master limiter does; lower the limiter's threshold_db "
                        "(node master_limiter) in --params and fit again")
    return warnings


def _interrupted(job: FitJob, result: FitResult, files: dict[str, str], path: Any, out: TextIO,
                 began: float) -> FitOutcome:
    report = {"settings": job.settings, "stopped": "interrupted", "steps_taken": result.steps,
              "initial_loss": result.losses[0] if result.losses else None,
              "final_loss": result.losses[-1] if result.losses else None, "loss_curve": result.losses,
              "optimizer": job.optimizer, "renders": result.renders,
              "time": {"total_seconds": time.perf_counter() - began}}
    with open(path("report.json"), "w", encoding="utf-8") as f:
        json.dump(_clean(report), f, indent=1)
    print(f"interrupted after {result.steps} of {job.steps} steps: the parameters fitted so far are in "
          f"{files['fitted.params.json']}", file=out)
    return FitOutcome(INTERRUPTED, result, report, files, "")


def _summary(job: FitJob, result: FitResult, last: float, report: dict[str, Any], counts: dict[str, int],
             pruned: PruneResult | None, warnings: list[str], command: str, out: TextIO) -> None:
    first = result.initial_loss
    how = {"completed": "", "converged": " (stopped early: the loss stopped falling)",
           "time": " (the --time budget was spent)"}[result.stopped]
    print(f"\nloss {first:.4f} -> {last:.4f} (x{last / first:.3f}, {100 * (1 - last / first):.0f}% lower) in "
          f"{result.steps} steps{how} of {job.optimizer}, {result.renders:.0f} graph renders, "
          f"{result.seconds_per_step:.2f} s per step; "
          f"{report['time']['total_seconds']:.0f} s in all", file=out)
    fitted = report["metrics"]["fitted"]
    print(f"fitted mix: SNR {fitted['snr_db']:.1f} dB, log-spectral distance {fitted['log_spectral_distance_db']:.1f} dB, "
          f"{fitted['loudness_lufs']:.1f} LUFS (target {report['metrics']['target_loudness_lufs']:.1f} LUFS), "
          f"peak {fitted['peak_dbfs']:+.1f} dBFS", file=out)
    if report["stems"]:
        print("what the fit did, per stem:", file=out)
        for name, stem in report["stems"].items():
            print(f"  {name}: {stem['words']}", file=out)
    print(f"residual: {report['residual']['words']}", file=out)
    if "errors_by_type" in report:
        print("mean parameter error per node type, start -> fitted:", file=out)
        for line in format_errors(report["errors_by_type"]["initial"], report["errors_by_type"]["fitted"], counts):
            print(line, file=out)
    if pruned is not None:
        metrics = report["prune"]["metrics"]
        print(f"pruned: {pruned.processors_after} of {pruned.processors_before} processors kept, loss "
              f"{pruned.loss_before:.4f} -> {pruned.loss_after:.4f}; pruned.wav: SNR {metrics['snr_db']:.1f} dB, "
              f"log-spectral distance {metrics['log_spectral_distance_db']:.1f} dB; reproduce it with\n  "
              f"{report['prune']['render_command']}", file=out)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    print(f"\nwrote {job.output}/: target.wav initial.wav fitted.wav, loss.png spectrograms.png graph.png, "
          "report.json loss.csv, graph.json options.json *.params.json, sources/*.wav", file=out)
    print(f"reproduce the fitted mix:\n  {command}", file=out)
