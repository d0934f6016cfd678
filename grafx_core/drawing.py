"""Draw a graph with matplotlib: boxes for nodes, dots for ports, arrows for edges.

matplotlib is the optional ``plot`` extra (``pip install grafx-core[plot]``);
it is imported only when a drawing is made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .processor import ProcessorLike
from ._arguments import require_graph
from ._optional import require
from .graph import BUILTIN_TYPES, Graph
from .description import describe
from .schedule import SCHEDULING_METHODS, Stage, render_order

__all__ = ["draw_graph", "graph_layers"]

_BOX_WIDTH = 1.7
_LAYER_GAP = 1.2
_ROW_GAP = 0.35
_PORT_SPACING = 0.28
_INCHES_PER_UNIT = 0.65
_CHAR_WIDTH = 0.085  # of a 6.5 pt label, in drawing units
_BUILTIN_COLOURS = {"in": "#d9ead3", "out": "#f4cccc", "mix": "#eeeeee"}


def graph_layers(graph: Graph) -> list[list[int]]:
    """Nodes grouped into columns for drawing, left to right.

    A node's column is the length of the longest path reaching it; all
    ``"out"`` nodes go to the last column. Within a column, nodes are ordered
    by the mean row of their predecessors (a few sweeps of the barycentre
    heuristic), which keeps most edges from crossing.

    Raises:
        GraphCycleError: the graph has a cycle.
    """
    render_order(graph, "greedy")  # raises a GraphCycleError that names the cycle
    preds: list[list[int]] = [[] for _ in graph.nodes]
    for edge in graph.edges:
        preds[edge.dst].append(edge.src)
    depth: dict[int, int] = {}

    def depth_of(node: int) -> int:
        stack = [node]
        while stack:
            top = stack[-1]
            missing = [p for p in preds[top] if p not in depth]
            if missing:
                stack.extend(missing)
                continue
            depth[top] = 1 + max((depth[p] for p in preds[top]), default=-1)
            stack.pop()
        return depth[node]

    for node in graph.nodes:
        depth_of(node.id)
    outs = graph.nodes_of_type("out")
    last = max((depth[n.id] for n in graph.nodes if n.type != "out"), default=-1) + 1
    for node in outs:
        depth[node] = last
    layers = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph.nodes:
        layers[depth[node.id]].append(node.id)
    layers = [layer for layer in layers if layer]
    position = {n: float(i) for layer in layers for i, n in enumerate(layer)}
    for _ in range(4):
        for layer in layers[1:]:
            layer.sort(key=lambda n: (sum(position[p] for p in preds[n]) / len(preds[n]) if preds[n] else position[n], n))
            position.update({n: float(i) for i, n in enumerate(layer)})
    return layers


def _ports(graph: Graph, processors: Mapping[str, ProcessorLike] | None) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Inlets and outlets per node type: built-ins, then processors, else the ports edges use."""
    used_in: dict[str, dict[str, None]] = {}
    used_out: dict[str, dict[str, None]] = {}
    for edge in graph.edges:
        used_out.setdefault(graph.nodes[edge.src].type, {})[edge.outlet] = None
        used_in.setdefault(graph.nodes[edge.dst].type, {})[edge.inlet] = None
    ports = {}
    for node_type in graph.node_types():
        if node_type in BUILTIN_TYPES:
            ports[node_type] = BUILTIN_TYPES[node_type]
        elif processors is not None and node_type in processors:
            description = describe(processors[node_type])
            ports[node_type] = (description.inlets, description.outlets)
        else:
            ports[node_type] = (tuple(used_in.get(node_type, {"main": None})),
                                tuple(used_out.get(node_type, {"main": None})))
    return ports


def _resolve_stages(graph: Graph, stages: str | Sequence[Stage] | None) -> dict[int, int]:
    if stages is None:
        return {}
    if isinstance(stages, str):
        if stages not in SCHEDULING_METHODS:
            raise ValueError(f"stages must be a scheduling method {SCHEDULING_METHODS} or a list of stages, "
                             f"got {stages!r}")
        stages = render_order(graph, stages)  # type: ignore[arg-type]
    return {node: index for index, stage in enumerate(stages) for node in stage.nodes}


def draw_graph(
    graph: Graph,
    path: str | os.PathLike[str] | None = None,
    *,
    processors: Mapping[str, ProcessorLike] | None = None,
    stages: str | Sequence[Stage] | None = None,
    title: str | None = None,
    dpi: int = 120,
) -> Any:
    """Draw ``graph``: a box per node labelled with its type and name, its
    inlets as dots on the left edge and outlets on the right, an arrow per edge.

    Args:
        graph: the graph.
        path: where to save the picture (format from the extension, e.g. ``.png``);
            ``None`` only returns the figure.
        processors: processors by node type, to show every port a processor
            has; without them, a type shows the ports its edges use.
        stages: colour nodes by render stage: a scheduling method
            (``"beam"``, ``"greedy"``, ``"one-by-one"``) or the stages
            themselves (:func:`render_order`, ``compile_render(...).stages``).
            ``None`` colours the built-in types only.
        title: a title above the drawing.
        dpi: resolution of the saved picture.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        OptionalDependencyError: matplotlib is not installed
            (``pip install grafx-core[plot]``).
        GraphCycleError: the graph has a cycle.
        TypeError: ``graph`` is not a :class:`Graph`.
    """
    require_graph("draw_graph(graph, path)", graph)
    require("matplotlib", "plot", "drawing a graph")
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layers = graph_layers(graph)
    ports = _ports(graph, processors)
    longest = max((len(part) for n in graph.nodes for part in (n.type, n.name or "")), default=0)
    # Port names (shown where a side has several ports, in a 5 pt font) sit inside the box,
    # beside the label: room for the longest on either side keeps them apart.
    longest_port = max((len(name) for pair in ports.values() for side in pair if len(side) > 1 for name in side),
                       default=0)
    port_room = _CHAR_WIDTH * 5 / 6.5 * longest_port + 0.1 if longest_port else 0.0
    box_width = max(_BOX_WIDTH, _CHAR_WIDTH * longest + 0.25 + 2 * port_room)
    stage_of = _resolve_stages(graph, stages)
    palette = colormaps["Set3"]

    height = {n.id: max(0.55, _PORT_SPACING * (1 + max(len(ports[n.type][0]), len(ports[n.type][1])))) for n in graph.nodes}
    if stage_of:
        height = {n: h + 0.15 for n, h in height.items()}
    column_height = [sum(height[n] for n in layer) + _ROW_GAP * (len(layer) - 1) for layer in layers]
    total_height = max(column_height, default=1.0)
    centre: dict[int, tuple[float, float]] = {}
    for x_index, (layer, col_height) in enumerate(zip(layers, column_height)):
        y = (total_height + col_height) / 2
        for node in layer:
            centre[node] = (x_index * (box_width + _LAYER_GAP), y - height[node] / 2)
            y -= height[node] + _ROW_GAP

    width_in = _INCHES_PER_UNIT * len(layers) * (box_width + _LAYER_GAP)
    height_in = _INCHES_PER_UNIT * total_height + 0.8
    figure = Figure(figsize=(min(max(width_in, 4.0), 40.0), min(max(height_in, 2.5), 60.0)), dpi=dpi)
    ax = figure.add_subplot()
    ax.set_axis_off()

    def port_xy(node: int, name: str, outlet: bool) -> tuple[float, float]:
        names = ports[graph.nodes[node].type][1 if outlet else 0]
        k = names.index(name) if name in names else 0
        x, y = centre[node]
        top = y + (len(names) - 1) * _PORT_SPACING / 2
        return x + (box_width / 2 if outlet else -box_width / 2), top - k * _PORT_SPACING

    for node in graph.nodes:
        x, y = centre[node.id]
        h = height[node.id]
        if node.id in stage_of:
            colour = palette(stage_of[node.id] % palette.N)
        else:
            colour = _BUILTIN_COLOURS.get(node.type, "#cfe2f3")
        ax.add_patch(FancyBboxPatch((x - box_width / 2, y - h / 2), box_width, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.08", facecolor=colour,
                                    edgecolor="#333333", linewidth=0.8, zorder=2))
        label = node.type if node.name is None else f"{node.type}\n{node.name}"
        if node.id in stage_of:
            label += f"\nstage {stage_of[node.id]}"
        ax.text(x, y, label, ha="center", va="center", fontsize=6.5, zorder=4)
        inlets, outlets = ports[node.type]
        for name in inlets:
            px, py = port_xy(node.id, name, outlet=False)
            ax.plot([px], [py], "o", color="#333333", markersize=3, zorder=3)
            if len(inlets) > 1:
                ax.text(px + 0.06, py, name, ha="left", va="center", fontsize=5, color="#555555", zorder=4)
        for name in outlets:
            px, py = port_xy(node.id, name, outlet=True)
            ax.plot([px], [py], "s", color="#333333", markersize=3, zorder=3)
            if len(outlets) > 1:
                ax.text(px - 0.06, py, name, ha="right", va="center", fontsize=5, color="#555555", zorder=4)

    for edge in graph.edges:
        start = port_xy(edge.src, edge.outlet, outlet=True)
        end = port_xy(edge.dst, edge.inlet, outlet=False)
        rad = 0.0 if abs(start[1] - end[1]) < 1e-6 else 0.15 * (1 if end[1] > start[1] else -1)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=7, linewidth=0.7,
                                     color="#444444", connectionstyle=f"arc3,rad={rad}", zorder=2.5,
                                     shrinkA=2, shrinkB=2))

    xs = [c[0] for c in centre.values()] or [0.0]
    ax.set_xlim(min(xs) - box_width, max(xs) + box_width)
    ax.set_ylim(-0.4, total_height + 0.4)
    if title:
        ax.set_title(title, fontsize=9)
    figure.tight_layout()
    if path is not None:
        figure.savefig(os.fspath(path), dpi=dpi)
    return figure
