"""Measure the gradient estimates of processors: cosine and norm ratio per control and for the signal.

Each processor is made with default options and measured by
grafx_core.testing.gradient_report on a few synthetic stereo tracks: an
autograd processor runs as a black box through every estimator against its
own autograd; a black box is compared with careful central differences.
Controls are classified smooth, kinked, stepwise or constant. --all measures
every registered processor (those that cannot be made with default options,
or have no inlet, are listed as skipped); --rst prints the tables as the
reStructuredText of the docs' gradient-quality page.

  grafx-core gradients dsp:compressor pedalboard:reverb --seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import math

from ..errors import GrafxError
from ..gradient_report import GradientReport, gradient_report
from ..registry import get_processor, list_processors
from ._arguments import seconds_between, seed_number, whole_number_between

__all__ = ["add_arguments", "run", "format_rst", "MAX_ITEMS", "MIN_SECONDS", "MAX_SECONDS"]

MAX_ITEMS = 64
"""Most tracks ``--items`` takes: a measurement renders every item once per estimate and control."""
MIN_SECONDS, MAX_SECONDS = 0.02, 30.0
"""Shortest and longest ``--seconds``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the processor names and the measurement options."""
    parser.add_argument("names", nargs="*", metavar="NAME", help="registered processor names (dsp:compressor)")
    parser.add_argument("--all", action="store_true", help="every registered processor")
    parser.add_argument("--items", type=whole_number_between(1, MAX_ITEMS, " (each costs a render per estimate)"),
                        default=4, help=f"tracks (node rows) to measure on, 1 to {MAX_ITEMS} (default 4)")
    parser.add_argument("--seconds", type=seconds_between(MIN_SECONDS, MAX_SECONDS, ": longer tracks "
                        "take minutes per processor"), default=0.5,
                        help=f"track length, {MIN_SECONDS:g} to {MAX_SECONDS:g} s (default 0.5)")
    parser.add_argument("--seed", type=seed_number, default=0, help="seeds signals, parameters and estimators")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list instead of tables")
    output.add_argument("--rst", action="store_true", help="print reStructuredText tables (the docs page)")


def _number(value: float, digits: str) -> str:
    return "" if math.isnan(value) else format(value, digits)


def format_rst(reports: list[GradientReport], skipped: list[tuple[str, str]]) -> str:
    """One ``list-table`` per report, then the skipped processors with the reason."""
    lines: list[str] = []
    for report in reports:
        lines += [report.name, "-" * len(report.name), "", f"Reference: {report.reference}.", "",
                  ".. list-table::", "   :header-rows: 1", "",
                  "   * - control", "     - behaviour", "     - estimator", "     - cosine", "     - norm ratio",
                  "     - note"]
        for r in report.rows:
            cells = [r.control, r.behaviour, r.estimator, _number(r.cosine, ".3f"), _number(r.norm_ratio, ".3g"),
                     r.note]
            lines.append(f"   * - {cells[0]}")
            lines += [f"     - {c}" if c else "     -" for c in cells[1:]]
        lines.append("")
    if skipped:
        lines += ["Not measured", "------------", ""]
        lines += [f"* ``{name}``: {why}" for name, why in skipped]
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print one report per processor."""
    names = list(args.names)
    if args.all:
        names += [info.name for info in list_processors() if info.name not in names]
    if not names:
        raise GrafxError("gradients: name at least one processor, or give --all")
    reports, skipped = [], []
    for name in names:
        try:
            processor = get_processor(name)
            report = gradient_report(processor, items=args.items, seconds=args.seconds, seed=args.seed, name=name)
        except Exception as error:  # one processor that cannot be measured must not stop the others
            if not args.all:
                raise
            skipped.append((name, f"{type(error).__name__}: {str(error).splitlines()[0]}"))
            continue
        reports.append(report)
        if not args.json:  # tables as they are measured: a long --all run shows its progress
            print(format_rst([report], []) if args.rst else report.format() + "\n", flush=True)
    if args.json:
        print(json.dumps({"reports": [r.as_dict() for r in reports],
                          "skipped": [{"name": n, "reason": why} for n, why in skipped]}, indent=2))
    elif skipped:
        if args.rst:
            print(format_rst([], skipped))
        else:
            print("not measured:\n" + "\n".join(f"  {n}: {why}" for n, why in skipped))
    return 0
