"""The process-wide default registry and the functions users call."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..graph import Graph
from ._manager import Registry
from ._records import ConsoleInfo, EstimatorInfo, ExporterInfo, PluginFailure, PluginInfo, ProcessorInfo

__all__ = [
    "default_registry",
    "set_default_registry",
    "get_processor",
    "list_processors",
    "get_estimator",
    "list_estimators",
    "list_plugins",
    "plugin_failures",
    "processors_for_graph",
    "list_consoles",
    "get_console",
    "list_exporters",
    "get_exporter",
]

_default: Registry | None = None
_lock = threading.Lock()


def default_registry() -> Registry:
    """The registry the module-level functions use, created on first use.

    Creating it imports nothing; its first query loads the plugins.
    """
    global _default
    with _lock:
        if _default is None:
            _default = Registry()
        return _default


def set_default_registry(registry: Registry | None) -> Registry | None:
    """Replace the default registry (``None``: a fresh one is created on next use).

    Tests use it to run the module-level functions on in-memory plugins, or
    to reload plugins after changing the environment.

    Returns:
        The previous default registry, to restore afterwards (``None`` if none
        was created yet).
    """
    global _default
    with _lock:
        previous, _default = _default, registry
        return previous


def get_processor(name: str, **kwargs: Any) -> Any:
    """A new processor registered as ``name``, built with ``kwargs``.

    Args:
        name: ``"plugin:name"`` (``"dsp:gain"``), or the short name
            (``"gain"``) while only one plugin offers it.
        **kwargs: options for the processor's factory.

    Raises:
        UnknownNameError: no processor has this name (close matches are listed).
        AmbiguousNameError: several plugins offer this short name.
        NameCollisionError: two distributions registered this qualified name.
        PluginError: with ``GRAFX_CORE_STRICT_PLUGINS=1``, a plugin failed to load.
    """
    return default_registry().get_processor(name, **kwargs)


def list_processors() -> list[ProcessorInfo]:
    """Every registered processor (qualified name, plugin, distribution, gradient kind)."""
    return default_registry().list_processors()


def get_estimator(name: str, **kwargs: Any) -> Any:
    """A new gradient estimator registered as ``name``; raises like :func:`get_processor`."""
    return default_registry().get_estimator(name, **kwargs)


def list_estimators() -> list[EstimatorInfo]:
    """Every registered gradient estimator."""
    return default_registry().list_estimators()


def list_plugins() -> list[PluginInfo]:
    """Every loaded plugin with its distribution and version."""
    return default_registry().list_plugins()


def plugin_failures() -> tuple[PluginFailure, ...]:
    """The plugins that failed to load or registered something invalid."""
    return default_registry().plugin_failures()


def processors_for_graph(graph: Graph, options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The processors dict for ``graph``, each node type looked up as a processor name.

    Args:
        graph: the graph (for instance read by :meth:`Graph.load`).
        options: keyword options per node type for its factory,
            e.g. ``{"dsp:reverb": {"ir_seconds": 1.0}}``.

    Returns:
        ``{node_type: processor}`` for every node type but the built-ins.

    Raises:
        UnknownNodeTypeError: a node type names no registered processor.
        AmbiguousNameError, NameCollisionError: as :func:`get_processor`.
    """
    return default_registry().processors_for_graph(graph, options)


def list_consoles() -> list[ConsoleInfo]:
    """Every mixing console plugins offer to ``grafx-core fit --console``."""
    return default_registry().list_consoles()


def get_console(name: str) -> ConsoleInfo:
    """The console registered as ``name``; its ``spec.factory(track_names)`` builds it.

    Raises:
        UnknownNameError, AmbiguousNameError, NameCollisionError: as :func:`get_processor`.
    """
    return default_registry().console_info(name)


def list_exporters() -> list[ExporterInfo]:
    """Every exporter plugins offer to ``grafx-core export``."""
    return default_registry().list_exporters()


def get_exporter(name: str) -> ExporterInfo:
    """The exporter registered as ``name``; its ``spec.factory(fit_dir, destination, force=...)`` writes.

    Raises:
        UnknownNameError, AmbiguousNameError, NameCollisionError: as :func:`get_processor`.
    """
    return default_registry().exporter_info(name)
