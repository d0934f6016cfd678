"""One-call rendering: compile a plan and run it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch

from .processor import ProcessorLike
from ._arguments import require_graph
from .graph import Graph
from .plan import CPU_TILE_BYTES, NodeAux, compile_render

__all__ = ["render"]


def render(
    graph: Graph,
    processors: Mapping[str, ProcessorLike],
    parameters: Any,
    sources: torch.Tensor,
    method: Literal["beam", "greedy", "one-by-one"] = "beam",
    tile_bytes: int | None = CPU_TILE_BYTES,
    control_hop: int | None = None,
) -> tuple[torch.Tensor, NodeAux]:
    """Render ``graph`` once: :func:`compile_render` followed by a call of the plan.

    To render the same graph many times (training), compile once and call the
    plan instead. Shapes and errors are those of :meth:`RenderPlan.__call__`;
    ``control_hop`` is the samples per frame of automation curves.
    """
    require_graph("render(graph, processors, parameters, sources)", graph, processors)
    return compile_render(graph, processors, method, tile_bytes=tile_bytes,
                          control_hop=control_hop)(parameters, sources)
