"""Calling the registration hooks: which plugin returned which specs, and what was invalid."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from ..specs import ConsoleSpec, EstimatorSpec, ExporterSpec, ProcessorSpec
from ._names import Catalog
from ._records import ConsoleInfo, EstimatorInfo, ExporterInfo, PluginFailure, ProcessorInfo

__all__ = ["HOOK_NAMES", "Source", "module_name", "collect", "collect_extensions"]

HOOK_NAMES = ("grafx_register_processors", "grafx_register_estimators", "grafx_register_consoles",
              "grafx_register_exporters")
"""The hooks a plugin may implement (see :mod:`grafx_core.hookspecs`)."""

Info = TypeVar("Info", ProcessorInfo, EstimatorInfo, ConsoleInfo, ExporterInfo)


@dataclass(frozen=True)
class Source:
    """Where one registered plugin object came from.

    Attributes:
        key: its name inside the pluggy manager, unique even when plugin names clash.
        plugin: the plugin name that prefixes its qualified names.
        distribution, version: the providing distribution, if any.
        origin: ``"default"``, ``"entry point"`` or ``"in-memory"``.
        target: the module (or entry-point value) it was loaded from.
    """

    key: str
    plugin: str
    distribution: str | None
    version: str | None
    origin: str
    target: str


def module_name(plugin: object) -> str:
    """The name of a plugin module, or the module of a plugin object's class."""
    return str(getattr(plugin, "__name__", None) or type(plugin).__module__)


def collect(pm: pluggy.PluginManager, source_of: Callable[[str], Source]
            ) -> tuple[Catalog[ProcessorInfo], Catalog[EstimatorInfo], list[PluginFailure]]:
    """Call every plugin's registration hooks and index the specs they return.

    Args:
        pm: the plugin manager.
        source_of: the :class:`Source` of a pluggy plugin name.

    Returns:
        The processor and estimator catalogs, and the failures: hooks that
        raised or returned something other than specs, and qualified names
        registered more than once.
    """
    failures: list[PluginFailure] = []
    processors = _call_hook(pm, source_of, "grafx_register_processors", ProcessorSpec, failures,
                            lambda s, spec: ProcessorInfo(s.plugin, s.distribution, s.version, spec))
    estimators = _call_hook(pm, source_of, "grafx_register_estimators", EstimatorSpec, failures,
                            lambda s, spec: EstimatorInfo(s.plugin, s.distribution, s.version, spec))
    processor_catalog = Catalog("processor", processors)
    estimator_catalog = Catalog("estimator", estimators)
    for catalog in (processor_catalog, estimator_catalog):
        for group in catalog.collisions():
            last = group[-1]
            failures.append(PluginFailure(last.plugin, last.distribution, last.version, "collision",
                                          catalog.collision_message(group)))
    return processor_catalog, estimator_catalog, failures


def collect_extensions(pm: pluggy.PluginManager, source_of: Callable[[str], Source]
                       ) -> tuple[Catalog[ConsoleInfo], Catalog[ExporterInfo], list[PluginFailure]]:
    """Call every plugin's console and exporter hooks and index what they return (as :func:`collect`)."""
    failures: list[PluginFailure] = []
    consoles = Catalog("console", _call_hook(pm, source_of, "grafx_register_consoles", ConsoleSpec, failures,
                                             lambda s, spec: ConsoleInfo(s.plugin, s.distribution, s.version, spec)))
    exporters = Catalog("exporter", _call_hook(pm, source_of, "grafx_register_exporters", ExporterSpec, failures,
                                               lambda s, spec: ExporterInfo(s.plugin, s.distribution, s.version,
                                                                            spec)))
    for catalog in (consoles, exporters):
        for group in catalog.collisions():
            last = group[-1]
            failures.append(PluginFailure(last.plugin, last.distribution, last.version, "collision",
                                          catalog.collision_message(group)))
    return consoles, exporters, failures


def _call_hook(pm: pluggy.PluginManager, source_of: Callable[[str], Source], hook_name: str, spec_type: type,
               failures: list[PluginFailure], make: Callable[[Source, Any], Info]) -> list[Info]:
    # Each implementation is called on its own, not through pm.hook, to know
    # which plugin returned what and to survive one that raises.
    entries: list[Info] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.wrapper or impl.hookwrapper:
            continue
        source = source_of(impl.plugin_name)

        def fail(message: str, source: Source = source) -> None:
            failures.append(PluginFailure(source.plugin, source.distribution, source.version, "hook",
                                          f"{hook_name}() in {source.target!r} {message}"))

        try:
            result = impl.function()
        except BaseException as exc:  # even SystemExit from a plugin's hook is that plugin's failure
            fail(f"raised {type(exc).__name__}: {exc}")
            continue
        if result is None:
            continue
        if isinstance(result, (str, bytes, Mapping)) or not isinstance(result, (Sequence, set, frozenset)):
            fail(f"returned {result!r}; expected a list of {spec_type.__name__}")
            continue
        for item in result:
            if isinstance(item, spec_type):
                entries.append(make(source, item))
            else:
                fail(f"returned {item!r} among its results; expected {spec_type.__name__} records")
    return entries
