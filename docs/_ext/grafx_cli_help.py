"""A Sphinx directive that prints ``grafx-core``'s own ``--help`` texts.

``.. grafx-cli-help::`` with no argument gives the top-level help; with a
subcommand name, that subcommand's. The CLI reference is thereby generated
from the parser the command line uses and cannot drift from it.
"""

from __future__ import annotations

import os

from docutils import nodes
from docutils.parsers.rst import Directive


class CliHelp(Directive):
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from grafx_core.cli import build_parser

        parser = build_parser()
        if self.arguments:
            subparsers = next(a for a in parser._actions if a.dest == "command")
            name = self.arguments[0]
            if name not in subparsers.choices:
                raise self.error(f"grafx-core has no subcommand {name!r}; it has {sorted(subparsers.choices)}")
            parser = subparsers.choices[name]
        # A fixed width, so the text does not depend on the terminal building the docs.
        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):  # noqa: D103 - Sphinx's extension entry point
    app.add_directive("grafx-cli-help", CliHelp)
    return {"parallel_read_safe": True, "version": "1"}
