"""The ``grafx-core`` command line (also ``python -m grafx_core``).

Each subcommand lives in its own module, listed in :data:`COMMANDS`. A
command module has a docstring (its first line is the one-line help),
``add_arguments(parser)`` to declare its options on an
:class:`argparse.ArgumentParser`, and ``run(args) -> int`` returning the exit
status. Adding a command is one module and one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .errors import GrafxError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, str] = {
    "demo": "grafx_core.demo",
    "plugins": "grafx_core.registry._command",
    "render": "grafx_core.commands.render",
    "draw": "grafx_core.commands.draw",
    "gradients": "grafx_core.commands.gradients",
    "fit": "grafx_core.commands.fit",
    "export": "grafx_core.commands.export",
}
"""Subcommand name -> module implementing ``add_arguments(parser)`` and ``run(args)``."""


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`COMMANDS` (each module is imported)."""
    parser = argparse.ArgumentParser(
        prog="grafx-core",
        description="Differentiable audio processing graphs: inspect plugins, render and draw graphs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        sub = subparsers.add_parser(name, help=doc.split("\n")[0], description=doc,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit status.

    A :class:`~grafx_core.errors.GrafxError`, or an ``OSError`` such as a
    missing input file or an output folder that does not exist, is printed as
    one line on stderr with exit status 1; Ctrl-C prints one line with exit
    status 130; a missing command prints the help with status 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        # The reader stopped early (`grafx-core plugins | head`): nothing to report, and
        # stdout goes to devnull so that flushing it at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (GrafxError, OSError) as exc:
        print(f"grafx-core {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Commands that can save partial work (fit, demo) catch Ctrl-C themselves and return 130.
        print(f"grafx-core {args.command}: interrupted", file=sys.stderr)
        return 130
