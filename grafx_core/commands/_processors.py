"""Processors for a graph file: registry lookup, an options file, and the sample rate."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from .._jsonfile import read_json
from ..errors import GrafxError, PluginError
from ..graph import Graph
from ..registry import default_registry, processors_for_graph

__all__ = ["OptionsFileError", "read_options", "build_processors"]


class OptionsFileError(GrafxError):
    """A processor options file is missing, not JSON, or not ``{node_type: {option: value}}``."""


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


def _accepts_sample_rate(node_type: str) -> bool:
    try:
        factory = default_registry().processor_info(node_type).spec.factory
        parameters = inspect.signature(factory).parameters
    except (PluginError, TypeError, ValueError):
        return False  # an unknown type fails with its own message in processors_for_graph
    # Only an explicit keyword: a factory's **kwargs may forward to something that rejects it.
    return "sample_rate" in parameters


def build_processors(graph: Graph, options: Mapping[str, Mapping[str, Any]] | None = None,
                     sample_rate: float | None = None) -> dict[str, Any]:
    """The processors of ``graph`` from the registry, each node type looked up by name.

    Args:
        graph: the graph.
        options: keyword options per node type for its factory.
        sample_rate: in Hz; given to every factory that takes a
            ``sample_rate`` keyword, unless ``options`` sets it for that type.

    Raises:
        UnknownNodeTypeError, AmbiguousNameError, NameCollisionError: as
            :func:`grafx_core.registry.processors_for_graph`.
    """
    merged = {t: dict(o) for t, o in (options or {}).items()}
    if sample_rate is not None:
        for node_type in graph.processor_types():
            if "sample_rate" not in merged.get(node_type, {}) and _accepts_sample_rate(node_type):
                merged.setdefault(node_type, {})["sample_rate"] = sample_rate
    return processors_for_graph(graph, merged)
