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

from ..demo import MIN_SECONDS, DemoSettings, run_demo
from ..demo.draws import ESTIMATOR_CHOICES
from ._arguments import (at_least, device_name, positive_number, seconds_between, seed_number, threads_count,
                         whole_number_between)

__all__ = ["add_arguments", "run"]


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
    parser.add_argument("--hide-ride", action="store_true",
                        help="hide a fader ride (a 6 dB swell on keys, a duck on bass) in the target and fit the "
                             "faders as curves")


def run(args: argparse.Namespace) -> int:
    """Run the demo with the parsed options."""
    result = run_demo(DemoSettings(steps=args.steps, tracks=args.tracks, seconds=args.seconds, estimator=args.estimator,
                          seed=args.seed, device=args.device, output=args.output, learning_rate=args.learning_rate,
                          threads=args.threads, force=args.force, hide_ride=args.hide_ride))
    return result.exit_status
