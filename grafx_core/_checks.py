"""Checks a render plan makes before any processor runs: processors, render orders and sources.

Each failure is the named error a user can act on, raised before the first
processor would have failed on the same input with a bare exception (or,
worse, rendered it into silent NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .errors import GraphError, SourceShapeError, UnknownNodeTypeError
from .graph import Graph
from .schedule import Stage

__all__ = ["check_source_values", "check_processors", "check_stages"]

_SOURCE_DTYPES = (torch.float32, torch.float64)


def check_source_values(sources: torch.Tensor, graph: Graph, in_nodes: list[int]) -> None:
    """Refuse sources no processor can be expected to take: before the first one fails on them."""
    shape = list(sources.shape)
    if sources.dtype not in _SOURCE_DTYPES:
        if sources.dtype.is_floating_point:
            advice = "half precision has no FFT on the CPU and loses quiet signals; render in float32"
        elif sources.dtype.is_complex:
            advice = "audio is real; pass the real part, or real and imaginary parts as two 'in' nodes"
        else:
            advice = ("integer or bool samples would be used as raw values (int16 full scale is 32767); "
                      "read WAV files with read_wav, or scale to [-1, 1] and convert to float32")
        raise SourceShapeError(f"sources have dtype {sources.dtype}; expected float32 or float64 ({advice})")
    if sources.is_meta:
        raise SourceShapeError("sources are on the meta device and hold no samples; give real tensors")
    for dim, what in ((0, "batch items"), (2, "channels"), (3, "samples")):
        if sources.shape[dim] == 0:
            raise SourceShapeError(f"sources have no {what} (shape {shape} as [batch, num_in, channels, samples])")
    finite = torch.isfinite(sources)
    if not bool(finite.all()):
        example, row, channel, sample = (~finite).nonzero()[0].tolist()
        value = float(sources[example, row, channel, sample])
        in_example = f"batch item {example}, " if sources.shape[0] > 1 else ""
        raise SourceShapeError(
            f"the source of {graph.nodes[in_nodes[row]].label()} is {value} at {in_example}channel {channel}, "
            f"sample {sample}; sources must be finite"
        )


def check_processors(graph: Graph, processors: Mapping[str, Any]) -> None:
    """Refuse a processor that is ``None``, a class or not callable, naming its type's first node."""
    for node_type in graph.processor_types():
        processor = processors[node_type]
        problem = None
        if processor is None:
            problem = "is None (a factory that forgot to return its processor?)"
        elif isinstance(processor, type):
            problem = f"is the class {processor.__name__}, not an instance (call it: {processor.__name__}(...))"
        elif not callable(processor):
            problem = f"is {type(processor).__name__} {processor!r:.60}, not a callable processor module"
        if problem is not None:
            first = graph.nodes[graph.nodes_of_type(node_type)[0]]
            raise UnknownNodeTypeError(f"{first.label()}: the processor for type {node_type!r} {problem}")


def check_stages(graph: Graph, stages: Any) -> None:
    """A render order given to :func:`compile_render`: every node once, after its inputs, "out" last."""
    if not isinstance(stages, (list, tuple)) or not all(isinstance(s, Stage) for s in stages):
        raise GraphError(f"stages must be a list of Stage records (as from render_order), got {stages!r:.80}")
    types = [n.type for n in graph.nodes]
    stage_of: dict[int, int] = {}
    for s, stage in enumerate(stages):
        if stage.type == "in" or not stage.nodes:
            raise GraphError(f"stage {s} ({stage.type!r}) cannot be scheduled: 'in' nodes and empty stages "
                             "are not stages")
        for node in stage.nodes:
            if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < len(graph):
                raise GraphError(f"stage {s} names node {node!r}, which the graph does not have")
            if types[node] != stage.type:
                raise GraphError(f"stage {s} of type {stage.type!r} holds {graph.nodes[node].label()}")
            if node in stage_of:
                raise GraphError(f"{graph.nodes[node].label()} is in stages {stage_of[node]} and {s}")
            stage_of[node] = s
    missing = [n.id for n in graph.nodes if n.type != "in" and n.id not in stage_of]
    if missing:
        raise GraphError(f"the stages leave out {', '.join(graph.nodes[i].label() for i in missing[:5])}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if stages[-1].type != "out" or any(stage.type == "out" for stage in stages[:-1]):
        raise GraphError("the 'out' nodes must form one stage, the last one")
    for edge in graph.edges:
        if types[edge.src] != "in" and stage_of[edge.src] >= stage_of[edge.dst]:
            raise GraphError(f"{graph.nodes[edge.dst].label()} in stage {stage_of[edge.dst]} needs "
                             f"{graph.nodes[edge.src].label()}, which stage {stage_of[edge.src]} renders "
                             "only then or later")
