"""Draw a graph saved as JSON: a box per node (type and name), its ports, and its edges.

Nodes can be coloured by render stage (--stages, optionally naming the
scheduling method). Processors installed for the graph's node types show all
their inlets and outlets; for other types the ports in use are shown. Needs
matplotlib: pip install grafx-core[plot].

  grafx-core draw mix.graph.json -o mix.png --stages
"""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

from .._optional import require
from ..drawing import draw_graph
from ..errors import GrafxError, PluginWarning
from ._arguments import whole_number_between
from ..graph import Graph
from ..registry import get_processor
from ..schedule import SCHEDULING_METHODS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the graph, the picture and the stage colouring."""
    parser.add_argument("graph", metavar="GRAPH.json", help="graph file (grafx_core.Graph.save)")
    parser.add_argument("--output", "-o", required=True, metavar="PICTURE",
                        help="picture to write; the format follows the extension (.png, .svg, .pdf)")
    parser.add_argument("--stages", nargs="?", const="beam", choices=SCHEDULING_METHODS, default=None,
                        help="colour nodes by render stage, scheduled with this method (default beam)")
    parser.add_argument("--title", help="a title above the drawing")
    parser.add_argument("--dpi", type=whole_number_between(1, 1200, " (the image would not fit in memory)"), default=120, help="resolution (default 120)")


def _installed_processors(graph: Graph) -> dict[str, Any]:
    """Processors for the node types the registry knows; the drawing does not need the others."""
    processors = {}
    with warnings.catch_warnings():
        # A broken plugin only costs the drawing some port names; `plugins` reports it.
        warnings.simplefilter("ignore", PluginWarning)
        for node_type in graph.processor_types():
            try:
                processors[node_type] = get_processor(node_type)
            except (GrafxError, TypeError):  # unknown, ambiguous, or a factory that needs options
                continue
    return processors


class PictureFormatError(GrafxError):
    """The picture's file name has an extension matplotlib cannot write."""


def _check_format(path: str) -> None:
    require("matplotlib", "plot", "grafx-core draw")
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(path)[1].lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if extension not in formats:
        raise PictureFormatError(f"output {path!r}: unknown picture format {extension or '(no extension)'!r}; "
                                 f"name it with one of {', '.join('.' + f for f in sorted(formats))}")


def run(args: argparse.Namespace) -> int:
    """Draw the graph and say where."""
    _check_format(args.output)
    graph = Graph.load(args.graph)
    draw_graph(graph, args.output, processors=_installed_processors(graph), stages=args.stages,
               title=args.title, dpi=args.dpi)
    print(f"wrote {args.output}: {graph}")
    return 0
