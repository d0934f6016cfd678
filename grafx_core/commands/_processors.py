"""Reading a processor options file (the registry's ``processors_for_graph`` builds the processors)."""

from __future__ import annotations

import os
from typing import Any

from .._jsonfile import read_json
from ..errors import OptionsFileError, PluginError
from ..graph import Graph
from ..registry import default_registry
from ..registry._signature import accepts_keyword as factory_accepts

__all__ = ["OptionsFileError", "read_options", "accepts_keyword", "isolate_black_boxes"]


def read_options(path: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """Read a processor options file: ``{node_type: {keyword: value}}`` for each type's factory.

    Raises:
        OptionsFileError: the file is missing, not JSON, or not of that shape.
    """
    if path is None:
        return {}
    name = os.fspath(path)
    data = read_json(name, "options file", OptionsFileError)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise OptionsFileError(
            f"options file {name!r} must be a JSON object mapping node types to objects of factory "
            'options, e.g. {"dsp:reverb": {"ir_seconds": 1.0}}'
        )
    return data


def accepts_keyword(node_type: str, keyword: str) -> bool:
    """Whether ``node_type``'s factory names ``keyword`` explicitly (a ``**kwargs`` may forward to
    something that rejects it, so it does not count)."""
    try:
        return factory_accepts(default_registry().processor_info(node_type).spec.factory, keyword)
    except PluginError:
        return False


def isolate_black_boxes(graph: Graph, options: dict[str, dict[str, Any]]) -> None:
    """Set ``runner="isolated"`` for every node type of ``graph`` whose factory takes a ``runner`` and
    has none in ``options`` (``--isolate``: plug-ins render in watched worker processes)."""
    for node_type in graph.processor_types():
        if accepts_keyword(node_type, "runner"):
            options.setdefault(node_type, {}).setdefault("runner", "isolated")
