"""Measure the gradient estimates of processors: cosine and norm ratio per control and for the signal.

Each processor is made with default options and measured by
grafx_core.testing.gradient_report on a few synthetic stereo tracks: an
autograd processor runs as a black box through every estimator against its
own autograd; a black box is compared with careful central differences.
Controls are classified smooth, kinked, stepwise or constant.

  grafx-core gradients dsp:compressor pedalboard:reverb --seconds 0.5
"""

from __future__ import annotations

import argparse
import json

from ..gradient_report import gradient_report
from ..registry import get_processor

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the processor names and the measurement options."""
    parser.add_argument("names", nargs="+", metavar="NAME", help="registered processor names (dsp:compressor)")
    parser.add_argument("--items", type=int, default=4, help="tracks (node rows) to measure on (default 4)")
    parser.add_argument("--seconds", type=float, default=0.5, help="track length in seconds (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seeds signals, parameters and estimators")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of tables")


def run(args: argparse.Namespace) -> int:
    """Print one report per processor."""
    reports = [gradient_report(get_processor(name), items=args.items, seconds=args.seconds, seed=args.seed,
                               name=name) for name in args.names]
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        print("\n\n".join(r.format() for r in reports))
    return 0
