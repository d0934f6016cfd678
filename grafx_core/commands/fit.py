"""Fit a mixing console to a target mix from your own stems; write the fitted parameters, mix and a report.

Give the stems (one audio file per track: WAV of any sample type, FLAC, OGG,
MP3, ...) and the mix to reproduce. Without
--graph a console is built for the stems: every track through a compressor,
an EQ and a fader with pan, drum tracks (kick, snare, hats, toms, ...) to a
drum bus with a compressor, the others to a music bus with a stereo width,
a reverb on a send, and a master EQ and compressor. --console pedalboard
puts pedalboard compressors and reverb in it; --console sox builds what a
sox mix is made of (EQ, sox's compand, fader and pan, per-track sends to a
reverb whose impulse response is solved by least squares); --compressor and --reverb
take any registered processor name (an LV2 plug-in, say). Stems at other
sample rates are resampled, shorter ones padded, mono ones copied to both
channels. Ctrl-C stops the fit and keeps the parameters fitted so far.
--optimizer picks the fit backend: Adam (default), gauss-newton
(Levenberg-Marquardt and a compass search on the black-box controls, Adam on
the rest), hybrid (CMA-ES on the black-box controls, then gauss-newton), or
the gradient-free cma-es, ngopt and random; --renders caps the graph renders.
--automate fader (sends, thresholds, makeup, pan, width, or NODE_TYPE.CONTROL)
fits those controls as smooth curves over time instead of one value each.

  grafx-core fit drums.wav bass.wav keys.wav --target mix.wav --output fit-out
  grafx-core render ...   # the command printed at the end reproduces fit-out/fitted.wav
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import GrafxError, SourceShapeError
from ..fitting.align import align_target
from ..fitting.automation import (
    AUTOMATION_GROUPS,
    DEFAULT_FIT_HOP,
    DEFAULT_SMOOTHNESS,
    Automation,
    select_controls,
)
from ..fitting.console import CONSOLES, Console, build_console, with_effects
from ..fitting.optimizers import OPTIMIZERS
from ..fitting.session import FitJob, fit_console
from ..fitting.stems import read_multitrack
from ..graph import Graph
from ..parameter_file import load_parameters
from ..registry import get_console, get_exporter, processors_for_graph
from ._arguments import (add_allow_plugins, at_least, device_name, duration, positive_number, seconds_at_least,
                         seed_number, threads_count, whole_number_between)
from ._processors import accepts_keyword, isolate_black_boxes, read_options

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the stems, the target, the console and the fit's options."""
    parser.add_argument("stems", nargs="+", metavar="STEM.wav",
                        help="one audio file per track (WAV, FLAC, OGG, MP3, ...), in the console's order")
    parser.add_argument("--target", "-t", required=True, metavar="MIX.wav", help="the mix to reproduce")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="results folder (new, or --force)")
    parser.add_argument("--graph", metavar="GRAPH.json",
                        help="fit this graph instead of a built console (one 'in' node per stem, one 'out' node)")
    parser.add_argument("--options", metavar="OPTIONS.json", help="factory options per node type, merged over "
                        "the console's own")
    parser.add_argument("--params", metavar="PARAMS.json", help="start from these parameters (default: each "
                        "processor's defaults)")
    parser.add_argument("--hidden", metavar="PARAMS.json", help="the parameters that made the target, when "
                        "known: reported next to the fitted ones")
    parser.add_argument("--console", default="analytic", metavar="NAME",
                        help="console to build without --graph: analytic (grafx-dsp, autograd), pedalboard "
                        "(pedalboard compressors and reverb), sox (EQ, sox's compand, sends to a solved impulse response), "
                        "or one a plugin registers (ardour: Ardour's mixer, "
                        "from grafx-ardour); default analytic")
    parser.add_argument("--export-ardour", metavar="SESSION_DIR",
                        help="then write the fit as an Ardour 7 session there (as grafx-core export ardour)")
    parser.add_argument("--compressor", metavar="PROCESSOR", help="processor name for the track compressors")
    parser.add_argument("--reverb", metavar="PROCESSOR", help="processor name for the send reverb")
    parser.add_argument("--highpass", action="store_true",
                        help="a high-pass filter first on every track of the built console, started from the "
                        "stem's low end")
    parser.add_argument("--eq-bands", type=at_least(1), default=1, metavar="N",
                        help="peaking bands per track of the built console (default 1, the EQ's own; each further "
                        "band is a node of its own, which --prune removes where the mix does not need it)")
    parser.add_argument("--compressor-after-eq", action="store_true",
                        help="put each track's compressor after its EQ (and bands) on the built console, as sox "
                        "and many channel strips order them; by default it comes first")
    parser.add_argument("--pre-delay", action="store_true",
                        help="a pre-delay on the built console's reverb send (one delay on both channels)")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam",
                        help="fit backend (default adam): " + "; ".join(f"{k}: {v}" for k, v in OPTIMIZERS.items())
                        + " (cma-es, hybrid and ngopt need `pip install grafx-core[optimizers]`)")
    parser.add_argument("--steps", type=at_least(1), default=200, help="most fitting steps (default 200)")
    parser.add_argument("--renders", type=at_least(1), metavar="N",
                        help="stop once the fit has rendered the graph N times (black-box renders, counted in "
                        "whole-graph renders; default: no limit)")
    parser.add_argument("--patience", type=at_least(1), default=40,
                        help="stop once this many steps have not lowered the loss by 0.1%% (default 40)")
    parser.add_argument("--learning-rate", type=positive_number, default=0.05,
                        help="Adam's initial learning rate (default 0.05)")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="seeds the stochastic gradient estimators and optimisers")
    parser.add_argument("--estimator", choices=("auto", "finite-difference", "spsa"), default="auto",
                        help="gradient estimator of the black-box nodes (default: each effect's own)")
    parser.add_argument("--device", type=device_name, default="cpu",
                        help="torch device: cpu (default; render reproduces it bit for bit), cuda, auto")
    parser.add_argument("--sample-rate", type=whole_number_between(8000, 384000), metavar="HZ",
                        help="work at this rate (default: the target's)")
    parser.add_argument("--prune", action="store_true",
                        help="then gate every node and prune those the mix does not need")
    parser.add_argument("--prune-steps", type=at_least(1), metavar="N",
                        help="steps of the gated fit that decides what to prune (default: half of --steps)")
    parser.add_argument("--automate", action="append", default=[], metavar="WHAT",
                        help="fit these controls as curves over time: " + ", ".join(AUTOMATION_GROUPS)
                        + ", or NODE_TYPE.CONTROL (repeat for several)")
    parser.add_argument("--control-hop", type=at_least(1), default=DEFAULT_FIT_HOP, metavar="N",
                        help=f"samples per control frame of automated controls (default {DEFAULT_FIT_HOP})")
    parser.add_argument("--smoothness", type=positive_number, default=DEFAULT_SMOOTHNESS,
                        help=f"weight of the automation curves' smoothness prior (default {DEFAULT_SMOOTHNESS:g})")
    parser.add_argument("--threads", type=threads_count, default=1, help="torch threads during the fit (default 1)")
    parser.add_argument("--force", action="store_true", help="replace the results of an earlier run in DIR")
    parser.add_argument("--time", type=duration, metavar="DURATION",
                        help="a wall-clock budget for the fit's steps, e.g. 90s, 2m, 1m30s (the fit ends at --steps "
                        "or this, whichever comes first)")
    parser.add_argument("--no-align", action="store_true",
                        help="keep the target as it is; by default a target late or early against the stems "
                        "(cross-correlation) is shifted to line up, and the lag reported")
    parser.add_argument("--no-init", action="store_true",
                        help="start from the processors' defaults; by default a built console starts from "
                        "least-squares faders and pans and EQs from the stems' spectral ratios, where those "
                        "score better")
    parser.add_argument("--excerpt", type=positive_number, default=4.0, metavar="SECONDS",
                        help="the steps fit the loudest this many seconds of the target (default 4; a step costs "
                        "what its audio lasts); the mix and metrics are of the whole")
    parser.add_argument("--warmup", type=seconds_at_least(0.0), metavar="SECONDS",
                        help="long material: render each excerpt the steps fit (--excerpt seconds) after this many "
                        "seconds of the material before it, every processor's state carried, without gradient; "
                        "memory stays that of the excerpts, whatever the stems' length (needs a console that "
                        "streams, no black boxes)")
    parser.add_argument("--excerpts", type=at_least(1), default=1, metavar="K",
                        help="with --warmup: fit K excerpts spread evenly over the material (default 1, the loudest)")
    parser.add_argument("--warmup-gradient", action="store_true",
                        help="with --warmup: follow the gradient through the warm-up too (the exact gradient of the "
                        "excerpts of a whole render, at the memory of the warm-up's autograd graph)")
    parser.add_argument("--max-lag-ms", type=positive_number, default=50.0, metavar="MS",
                        help="the largest lag the alignment looks for, either way (default 50 ms)")
    parser.add_argument("--isolate", action="store_true",
                        help="render black-box plug-ins in watched worker processes: one that crashes or hangs is "
                        "an error naming its node, not the end of the fit (slower to start)")
    add_allow_plugins(parser)


_SHAPING = "--compressor, --reverb, --highpass, --eq-bands, --compressor-after-eq and --pre-delay"


def _console(args: argparse.Namespace, names: list[str]) -> Console:
    shaped = bool(args.compressor or args.reverb or args.highpass or args.eq_bands > 1 or args.pre_delay
                  or args.compressor_after_eq)
    if args.graph is None and args.console not in CONSOLES:
        if shaped:
            raise GrafxError(f"{_SHAPING} shape the built-in consoles; console {args.console!r} names its own")
        try:
            return get_console(args.console).spec.factory(names)
        except ValueError as exc:
            raise GrafxError(f"--console {args.console}: {exc}") from exc
    if args.graph is None:
        effects = with_effects(CONSOLES[args.console], track_compressor=args.compressor, reverb=args.reverb,
                               highpass="dsp:highpass" if args.highpass else None,
                               bells=args.eq_bands - 1 if args.eq_bands > 1 else None,
                               pre_delay="dsp:delay" if args.pre_delay else None,
                               compressor_after_eq=True if args.compressor_after_eq else None)
        if args.pre_delay and effects.reverb is None:
            raise GrafxError(f"--pre-delay: console {args.console!r} has no reverb send to delay")
        return build_console(names, effects)
    if shaped:
        raise GrafxError(f"{_SHAPING} shape the built console; with --graph, the graph file names its processors")
    graph = Graph.load(args.graph)
    ins, outs = graph.nodes_of_type("in"), graph.nodes_of_type("out")
    if len(ins) != len(names):
        raise SourceShapeError(f"{len(names)} stem(s) given, but {args.graph!r} has {len(ins)} 'in' node(s): "
                               "give one stem per 'in' node, in node-id order")
    if len(outs) != 1:
        raise SourceShapeError(f"{args.graph!r} has {len(outs)} 'out' nodes; a fit compares one output with "
                               "the target")
    return Console(graph, {})


def _estimator_options(graph: Graph, options: dict[str, dict[str, Any]], estimator: str) -> None:
    if estimator == "auto":
        return
    for node_type in graph.processor_types():
        if accepts_keyword(node_type, "estimator"):
            options.setdefault(node_type, {}).setdefault("estimator", estimator)


def run(args: argparse.Namespace) -> int:
    """Read the stems, build or load the console, fit, and write the results."""
    import torch

    torch.manual_seed(args.seed)
    exporter = get_exporter("ardour").spec if args.export_ardour else None  # fail before fitting
    multitrack = read_multitrack(args.stems, args.target, args.sample_rate)
    alignment = None
    if not args.no_align:
        target, aligned = align_target(multitrack.stems, multitrack.target, multitrack.sample_rate, args.max_lag_ms)
        multitrack.target = target
        multitrack.notes.append(aligned.note())
        alignment = {"lag_samples": aligned.lag_samples, "lag_ms": aligned.lag_ms,
                     "confidence": aligned.confidence, "applied": aligned.applied}
    console = _console(args, multitrack.names)
    graph, options = console.graph, console.options
    for node_type, extra in read_options(args.options).items():
        options.setdefault(node_type, {}).update(extra)
    _estimator_options(graph, options, args.estimator)
    if args.isolate:
        isolate_black_boxes(graph, options)
    origin = f"options file {args.options!r}" if args.options else "console options"
    processors = processors_for_graph(graph, options, sample_rate=multitrack.sample_rate, origin=origin)
    start = load_parameters(args.params) if args.params else console.start_parameters(processors)
    hidden = load_parameters(args.hidden) if args.hidden else None
    if exporter is not None and exporter.check is not None:
        try:
            exporter.check(graph, processors, start)
        except GrafxError as exc:
            raise GrafxError(f"--export-ardour: {exc}; fit --console ardour for a session") from exc
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    inputs = [*args.stems, args.target, *(p for p in (args.graph, args.options, args.params, args.hidden) if p)]
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    if args.warmup is not None and (args.automate or args.prune or args.optimizer != "adam"):
        raise GrafxError("--warmup fits excerpts with Adam, one value per control: it cannot be combined with "
                         "--automate, --prune or another --optimizer yet")
    automation = None
    if args.automate:
        if args.prune:
            raise GrafxError("--prune and --automate cannot be combined yet: pruning renders constant controls")
        if args.export_ardour:
            raise GrafxError("--export-ardour and --automate cannot be combined yet: the session export writes "
                             "one value per control")
        if args.optimizer not in ("adam",):
            raise GrafxError(f"--automate fits curves with Adam; --optimizer {args.optimizer} cannot fit them yet")
        automation = Automation(select_controls(graph, processors, args.automate), args.control_hop,
                                args.smoothness)
    job = FitJob(multitrack.names, multitrack.stems, multitrack.target, multitrack.sample_rate, graph, processors,
                 options, args.output, start=start, hidden=hidden, force=args.force, inputs=inputs,
                 steps=args.steps, learning_rate=args.learning_rate, optimizer=args.optimizer,
                 renders=args.renders, seed=args.seed, patience=args.patience, prune=args.prune,
                 prune_steps=args.prune_steps,
                 device=device, threads=args.threads, title="fitted", notes=multitrack.notes, settings=settings,
                 seconds=args.time, fixed=console.fixed, alignment=alignment,
                 initialise=not (args.no_init or args.params or args.graph), excerpt_seconds=args.excerpt,
                 automation=automation, warmup_seconds=args.warmup, excerpts=args.excerpts,
                 warmup_gradient=args.warmup_gradient)
    status = fit_console(job, sys.stdout).exit_status
    if status == 0 and exporter is not None:
        written = exporter.factory(args.output, args.export_ardour, force=args.force)
        print(f"wrote the Ardour session {written}")
    return status
