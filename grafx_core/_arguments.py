"""Argument checks that turn a call in another library's order into a clear error.

GRAFX, grafx-core's predecessor, takes the processors first
(``create_empty_parameters(processors, G)``); grafx-core takes the graph first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .graph import Graph

__all__ = ["require_graph"]


def require_graph(function: str, graph: Any, processors: Any = None) -> None:
    """Raise :class:`TypeError` unless ``graph`` is a :class:`Graph`.

    Args:
        function: the call as documented, for the message (``"create_empty_parameters(graph, processors)"``).
        graph: the first argument as given.
        processors: the second argument as given, when the function takes processors.
    """
    if isinstance(graph, Graph):
        return
    if isinstance(graph, Mapping) and isinstance(processors, Graph):
        raise TypeError(f"{function}: the processors came first and the graph second (GRAFX's order); "
                        "grafx-core takes the graph first")
    hint = " (processors? GRAFX takes them first, grafx-core the graph)" if isinstance(graph, Mapping) else ""
    raise TypeError(f"{function}: expected a grafx_core.Graph first, got {type(graph).__name__}{hint}")
