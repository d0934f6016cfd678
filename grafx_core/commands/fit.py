"""Fit a mixing console to a target mix from your own stems; write the fitted parameters, mix and a report.

Give the stems (WAV, one per track) and the mix to reproduce. Without
--graph a console is built for the stems: every track through a compressor,
an EQ and a fader with pan, drum tracks (kick, snare, hats, toms, ...) to a
drum bus with a compressor, the others to a music bus with a stereo width,
a reverb on a send, and a master EQ and compressor. --console pedalboard
puts pedalboard compressors and reverb in it; --compressor and --reverb
take any registered processor name (an LV2 plug-in, say). Stems at other
sample rates are resampled, shorter ones padded, mono ones copied to both
channels. Ctrl-C stops the fit and keeps the parameters fitted so far.

  grafx-core fit drums.wav bass.wav keys.wav --target mix.wav --output fit-out
  grafx-core render ...   # the command printed at the end reproduces fit-out/fitted.wav
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import GrafxError, SourceShapeError
from ..fitting.console import CONSOLES, Console, build_console, with_effects
from ..fitting.session import FitJob, fit_console
from ..fitting.stems import read_multitrack
from ..graph import Graph
from ..parameter_file import load_parameters
from ..registry import get_console, get_exporter
from ._arguments import (add_allow_plugins, at_least, device_name, positive_number, seed_number, threads_count,
                         whole_number_between)
from ._processors import accepts_keyword, build_processors, isolate_black_boxes, read_options

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the stems, the target, the console and the fit's options."""
    parser.add_argument("stems", nargs="+", metavar="STEM.wav", help="one WAV per track, in the console's order")
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
                        "(pedalboard compressors and reverb), or one a plugin registers (ardour: Ardour's mixer, "
                        "from grafx-ardour); default analytic")
    parser.add_argument("--export-ardour", metavar="SESSION_DIR",
                        help="then write the fit as an Ardour 7 session there (as grafx-core export ardour)")
    parser.add_argument("--compressor", metavar="PROCESSOR", help="processor name for the track compressors")
    parser.add_argument("--reverb", metavar="PROCESSOR", help="processor name for the send reverb")
    parser.add_argument("--steps", type=at_least(1), default=200, help="most fitting steps (default 200)")
    parser.add_argument("--patience", type=at_least(1), default=40,
                        help="stop once this many steps have not lowered the loss by 0.1%% (default 40)")
    parser.add_argument("--learning-rate", type=positive_number, default=0.05,
                        help="Adam's initial learning rate (default 0.05)")
    parser.add_argument("--seed", type=seed_number, default=0, help="seeds the stochastic gradient estimators")
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
    parser.add_argument("--threads", type=threads_count, default=1, help="torch threads during the fit (default 1)")
    parser.add_argument("--force", action="store_true", help="replace the results of an earlier run in DIR")
    parser.add_argument("--isolate", action="store_true",
                        help="render black-box plug-ins in watched worker processes: one that crashes or hangs is "
                        "an error naming its node, not the end of the fit (slower to start)")
    add_allow_plugins(parser)


def _console(args: argparse.Namespace, names: list[str]) -> Console:
    if args.graph is None and args.console not in CONSOLES:
        if args.compressor or args.reverb:
            raise GrafxError(f"--compressor and --reverb choose processors of the built-in consoles; console "
                             f"{args.console!r} names its own")
        try:
            return get_console(args.console).spec.factory(names)
        except ValueError as exc:
            raise GrafxError(f"--console {args.console}: {exc}") from exc
    if args.graph is None:
        effects = with_effects(CONSOLES[args.console], track_compressor=args.compressor, reverb=args.reverb)
        return build_console(names, effects)
    if args.compressor or args.reverb:
        raise GrafxError("--compressor and --reverb choose processors of the built console; with --graph, "
                         "the graph file names its processors")
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
    exporter = get_exporter("ardour").spec.factory if args.export_ardour else None  # fail before fitting
    multitrack = read_multitrack(args.stems, args.target, args.sample_rate)
    console = _console(args, multitrack.names)
    graph, options = console.graph, console.options
    for node_type, extra in read_options(args.options).items():
        options.setdefault(node_type, {}).update(extra)
    _estimator_options(graph, options, args.estimator)
    if args.isolate:
        isolate_black_boxes(graph, options)
    origin = f"options file {args.options!r}" if args.options else "console options"
    processors = build_processors(graph, options, multitrack.sample_rate, origin)
    start = load_parameters(args.params) if args.params else console.start_parameters(processors)
    hidden = load_parameters(args.hidden) if args.hidden else None
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    inputs = [*args.stems, args.target, *(p for p in (args.graph, args.options, args.params, args.hidden) if p)]
    settings = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    job = FitJob(multitrack.names, multitrack.stems, multitrack.target, multitrack.sample_rate, graph, processors,
                 options, args.output, start=start, hidden=hidden, force=args.force, inputs=inputs,
                 steps=args.steps, learning_rate=args.learning_rate, patience=args.patience, prune=args.prune,
                 prune_steps=args.prune_steps,
                 device=device, threads=args.threads, title="fitted", notes=multitrack.notes, settings=settings)
    status = fit_console(job, sys.stdout).exit_status
    if status == 0 and exporter is not None:
        written = exporter(args.output, args.export_ardour, force=args.force)
        print(f"wrote the Ardour session {written}")
    return status
