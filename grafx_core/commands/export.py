"""Write a fit's results for another program: grafx-core export ardour FIT_DIR -o SESSION_DIR.

FORMAT names an exporter a plugin registers (grafx-core plugins lists
them; grafx-ardour adds "ardour", an Ardour 7 session with the fitted
plug-ins, faders, pans, sends and buses). FIT_DIR is the --output folder of
grafx-core fit. An existing destination is refused without --force.

  grafx-core fit kick.wav bass.wav --target mix.wav -o fit-out --console ardour
  grafx-core export ardour fit-out -o mix-session
"""

from __future__ import annotations

import argparse
import sys

from ..registry import get_exporter, list_exporters

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the format, the results folder and the destination."""
    parser.add_argument("format", metavar="FORMAT", help="an exporter's name (ardour, ...)")
    parser.add_argument("fit_dir", metavar="FIT_DIR", help="a results folder written by grafx-core fit")
    parser.add_argument("--output", "-o", required=True, metavar="DEST", help="where to write (new, or --force)")
    parser.add_argument("--force", action="store_true", help="replace what an earlier export wrote there")


def run(args: argparse.Namespace) -> int:
    """Look the exporter up and run it; print what it wrote."""
    if not list_exporters():
        print("grafx-core export: error: no exporter is installed (pip install plugins/grafx-ardour for 'ardour')",
              file=sys.stderr)
        return 1
    exporter = get_exporter(args.format)
    written = exporter.spec.factory(args.fit_dir, args.output, force=args.force)
    print(f"wrote {written}")
    return 0
