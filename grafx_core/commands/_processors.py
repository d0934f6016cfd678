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

__all__ = ["OptionsFileError", "read_options", "build_processors", "accepts_keyword", "isolate_black_boxes"]


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


def _factory_keywords(node_type: str) -> list[str] | None:
    """The keywords ``node_type``'s factory names explicitly; ``None`` when unknown or it takes ``**kwargs``."""
    try:
        factory = default_registry().processor_info(node_type).spec.factory
        parameters = inspect.signature(factory).parameters
    except (PluginError, TypeError, ValueError):
        return None  # an unknown type fails with its own message in processors_for_graph
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return [name for name, p in parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def accepts_keyword(node_type: str, keyword: str) -> bool:
    """Whether ``node_type``'s factory names ``keyword`` explicitly (a ``**kwargs`` may forward to
    something that rejects it, so it does not count)."""
    try:
        factory = default_registry().processor_info(node_type).spec.factory
        return keyword in inspect.signature(factory).parameters
    except (PluginError, TypeError, ValueError):
        return False


def _check_keywords(options: Mapping[str, Mapping[str, Any]], origin: str) -> None:
    for node_type, given in options.items():
        known = _factory_keywords(node_type)
        unknown = sorted(set(given) - set(known)) if known is not None else []
        if unknown:
            raise OptionsFileError(
                f"{origin}: {node_type} has no option {', '.join(map(repr, unknown))} "
                f"(its options are {', '.join(known) or 'none'})"
            )


def build_processors(graph: Graph, options: Mapping[str, Mapping[str, Any]] | None = None,
                     sample_rate: float | None = None, origin: str = "processor options") -> dict[str, Any]:
    """The processors of ``graph`` from the registry, each node type looked up by name.

    Args:
        graph: the graph.
        options: keyword options per node type for its factory.
        sample_rate: in Hz; given to every factory that takes a
            ``sample_rate`` keyword, unless ``options`` sets it for that type.
        origin: where the options come from, for messages (e.g. the options file).

    Raises:
        OptionsFileError: an option a type's factory does not name (checked
            against its signature, so the message lists the options it takes).
        UnknownNodeTypeError, AmbiguousNameError, NameCollisionError, PluginError: as
            :func:`grafx_core.registry.processors_for_graph` (a factory refusing a value included).
    """
    merged = {t: dict(o) for t, o in (options or {}).items()}
    _check_keywords(merged, origin)
    if sample_rate is not None:
        for node_type in graph.processor_types():
            if "sample_rate" not in merged.get(node_type, {}) and accepts_keyword(node_type, "sample_rate"):
                merged.setdefault(node_type, {})["sample_rate"] = sample_rate
    return processors_for_graph(graph, merged)


def isolate_black_boxes(graph: Graph, options: dict[str, dict[str, Any]]) -> None:
    """Set ``runner="isolated"`` for every node type of ``graph`` whose factory takes a ``runner`` and
    has none in ``options`` (``--isolate``: plug-ins render in watched worker processes)."""
    for node_type in graph.processor_types():
        if accepts_keyword(node_type, "runner"):
            options.setdefault(node_type, {}).setdefault("runner", "isolated")
