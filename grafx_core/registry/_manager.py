"""The :class:`Registry`: a pluggy plugin manager, loaded lazily, with name lookup."""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import NameCollisionError, PluginError, PluginWarning, UnknownNameError, UnknownNodeTypeError
from ..graph import Graph
from ..native_code import NativeCodeError
from ._advice import gradient_advice, sample_rate_advice
from ._discovery import ENV_IMPORT_TIMEOUT, Candidate, Settings, default_candidates, entry_point_candidates, load_bounded
from ._hooks import HOOK_NAMES, Source, collect, collect_extensions, module_name
from ._names import Catalog
from ._records import (
    ConsoleInfo,
    EstimatorInfo,
    ExporterInfo,
    PluginFailure,
    PluginInfo,
    ProcessorInfo,
    distribution_label,
)

__all__ = ["Registry", "DEFAULT_PLUGINS", "CORE_PLUGIN_NAME"]

CORE_PLUGIN_NAME = "core"
"""The plugin name of grafx-core's own processors and estimators (``"core:spsa"``)."""

DEFAULT_PLUGINS: tuple[str, ...] = ("grafx_core.estimators._plugin",)
"""grafx-core's own plugin modules, registered under :data:`CORE_PLUGIN_NAME` through
the same hooks as any third-party plugin."""


class Registry:
    """The processors and estimators that plugins register, found by name.

    Nothing is imported until the first query (or :meth:`load`): then the
    default plugin modules are registered under the name ``"core"`` and every
    entry point of the ``grafx_core`` group under its entry-point name, each
    in its own ``try``. A plugin that fails is reported by a
    :class:`~grafx_core.errors.PluginWarning` naming it and its distribution
    and listed by :meth:`plugin_failures`; the others load. The environment is
    read at load time: ``GRAFX_CORE_STRICT_PLUGINS=1`` makes failures raise
    :class:`~grafx_core.errors.PluginError`,
    ``GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points, and
    ``GRAFX_CORE_PLUGINS=a,b`` loads exactly the entry points named.

    Tests build one on a fresh plugin manager and register plugins in memory::

        registry = Registry(default_plugins=(), autoload=False)
        registry.register(my_plugin_module, "mine")
        registry.get_processor("mine:gain")

    Args:
        plugin_manager: a pluggy manager for project ``"grafx_core"``; a fresh
            one by default. Hook specs are added if it lacks them; plugins
            already registered in it are listed under their pluggy names.
        default_plugins: module names registered under ``"core"``.
        autoload: whether to load entry points (the environment can still
            switch it off or restrict it).
        environ: where to read the switches; ``os.environ`` by default.
    """

    def __init__(
        self,
        plugin_manager: pluggy.PluginManager | None = None,
        *,
        default_plugins: Sequence[str] = DEFAULT_PLUGINS,
        autoload: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        pm = plugin_manager or pluggy.PluginManager(hookspecs.PROJECT_NAME)
        if pm.project_name != hookspecs.PROJECT_NAME:
            raise PluginError(
                f"plugin manager is for project {pm.project_name!r}, expected {hookspecs.PROJECT_NAME!r}"
            )
        if not all(getattr(pm.hook, name, None) is not None and getattr(pm.hook, name).has_spec()
                   for name in HOOK_NAMES):
            pm.add_hookspecs(hookspecs)
        self._pm = pm
        self._default_plugins = tuple(default_plugins)
        self._autoload = autoload
        self._environ = environ
        self._settings = Settings()
        self._sources: dict[str, Source] = {}
        self._load_failures: list[PluginFailure] = []
        self._hook_failures: list[PluginFailure] = []
        self._warned: set[PluginFailure | str] = set()
        self._catalogs: tuple[Catalog[ProcessorInfo], Catalog[EstimatorInfo]] | None = None
        self._extensions: tuple[Catalog[ConsoleInfo], Catalog[ExporterInfo]] = (Catalog("console", ()),
                                                                               Catalog("exporter", ()))
        self._advice: list[str] = []
        self._loaded = False
        self._lock = threading.RLock()

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (users should not need it)."""
        return self._pm

    # -- registering ----------------------------------------------------------
    def register(self, plugin: object, name: str, *, distribution: str | None = None,
                 version: str | None = None) -> None:
        """Register an in-memory plugin (a module or object with hook implementations).

        Raises:
            PluginError: the plugin implements an unknown hook, no hook at
                all, or pluggy rejects it.
            NameCollisionError: ``name`` is taken by a plugin of another distribution.
        """
        with self._lock:
            failure = self._add(Candidate(name, distribution, version, "in-memory",
                                          module_name(plugin), lambda: plugin), plugin, refuse_clash=True)
            if failure is not None:
                error = NameCollisionError if failure.stage == "collision" else PluginError
                raise error(str(failure))

    def load(self) -> None:
        """Load the default plugins and entry points now (the first query does it anyway).

        Raises:
            PluginError: in strict mode, when any plugin failed.
        """
        self._ready()

    # -- queries ----------------------------------------------------------------
    def list_processors(self) -> list[ProcessorInfo]:
        """Every registered processor, sorted by qualified name."""
        return self._ready()[0].entries()

    def list_estimators(self) -> list[EstimatorInfo]:
        """Every registered gradient estimator, sorted by qualified name."""
        return self._ready()[1].entries()

    def processor_info(self, name: str) -> ProcessorInfo:
        """The processor registered as ``name`` (``"plugin:name"``, or a unique short name).

        Raises:
            UnknownNameError, AmbiguousNameError, NameCollisionError: see
            :meth:`Catalog.resolve`.
        """
        return self._ready()[0].resolve(name)

    def estimator_info(self, name: str) -> EstimatorInfo:
        """The estimator registered as ``name``; raises like :meth:`processor_info`."""
        return self._ready()[1].resolve(name)

    def list_consoles(self) -> list[ConsoleInfo]:
        """Every registered mixing console (``grafx-core fit --console``), sorted by qualified name."""
        self._ready()
        return self._extensions[0].entries()

    def console_info(self, name: str) -> ConsoleInfo:
        """The console registered as ``name`` (``"ardour:ardour"``, or a unique short name); raises like
        :meth:`processor_info`."""
        self._ready()
        return self._extensions[0].resolve(name)

    def list_exporters(self) -> list[ExporterInfo]:
        """Every registered exporter (``grafx-core export``), sorted by qualified name."""
        self._ready()
        return self._extensions[1].entries()

    def exporter_info(self, name: str) -> ExporterInfo:
        """The exporter registered as ``name``; raises like :meth:`processor_info`."""
        self._ready()
        return self._extensions[1].resolve(name)

    def get_processor(self, name: str, **kwargs: Any) -> Any:
        """A new processor: the factory of processor ``name`` called with ``kwargs``.

        Warns with a :class:`~grafx_core.errors.PluginWarning` when, built
        without options (``sample_rate`` aside), the module's ``gradient_kind``
        is not the gradient its :class:`~grafx_core.ProcessorSpec` declares.

        Raises:
            PluginError: the factory raised, or returned something that is not
                a processor object (``None``, a class, a string); the message
                names the processor, its plugin and the options.
        """
        return self._build(self.processor_info(name), kwargs)

    def _build(self, info: ProcessorInfo, kwargs: Mapping[str, Any]) -> Any:
        processor = _make_processor(info, kwargs)
        # Options (an estimator=, say) may change the gradient on purpose.
        advice = gradient_advice(info, processor) if set(kwargs) <= {"sample_rate"} else None
        if advice is not None and advice not in self._warned:
            self._warned.add(advice)
            warnings.warn(PluginWarning(advice), stacklevel=3)
        return processor

    def get_estimator(self, name: str, **kwargs: Any) -> Any:
        """A new estimator: the factory of estimator ``name`` called with ``kwargs``."""
        return self.estimator_info(name).spec.factory(**kwargs)

    def processors_for_graph(self, graph: Graph,
                             options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The processors dict for ``graph``, one per node type that needs a processor.

        Each node type is looked up as a processor name, so a graph saved as
        JSON renders without a hand-written dict.

        Args:
            graph: the graph whose :meth:`Graph.processor_types` to resolve.
            options: keyword options per node type, passed to its factory.

        Returns:
            ``{node_type: processor}`` for every non-built-in node type.

        Raises:
            UnknownNodeTypeError: a node type names no registered processor,
                or ``options`` names a type the graph does not have.
            AmbiguousNameError, NameCollisionError: a node type is ambiguous
                or collides; the message names the first node of that type.
        """
        options = dict(options or {})
        types = graph.processor_types()
        stray = sorted(set(options) - set(types))
        if stray:
            raise UnknownNodeTypeError(
                f"options given for node types {stray} that the graph does not have "
                f"(its processor types are {types})"
            )
        processors = {}
        for node_type in types:
            first = graph.nodes[graph.nodes_of_type(node_type)[0]]
            try:
                info = self.processor_info(node_type)
            except UnknownNameError as exc:
                raise UnknownNodeTypeError(f"{first.label()}: {exc}") from exc
            except PluginError as exc:
                raise type(exc)(f"{first.label()}: {exc}") from exc
            try:
                processors[node_type] = self._build(info, options.get(node_type, {}))
            except PluginError as exc:
                raise PluginError(f"{first.label()}: {exc}") from exc
        return processors

    def list_plugins(self) -> list[PluginInfo]:
        """Every loaded plugin, ``"core"`` first, then by name and distribution."""
        self._ready()
        groups: dict[tuple[str, str | None, str | None, str], list[str]] = {}
        for name, plugin in self._pm.list_name_plugin():
            if plugin is None:  # a name blocked in the plugin manager
                continue
            source = self._source(name)
            key = (source.plugin, source.distribution, source.version, source.origin)
            groups.setdefault(key, []).append(source.target)
        infos = [PluginInfo(*key, modules=tuple(targets)) for key, targets in groups.items()]
        return sorted(infos, key=lambda p: (p.origin != "default", p.name, p.distribution or ""))

    def plugin_failures(self) -> tuple[PluginFailure, ...]:
        """The plugins that failed to load or registered something invalid."""
        self._ready(raise_strict=False)
        return tuple(self._load_failures + self._hook_failures)

    # -- loading ----------------------------------------------------------------
    def _ready(self, raise_strict: bool = True) -> tuple[Catalog[ProcessorInfo], Catalog[EstimatorInfo]]:
        with self._lock:
            if not self._loaded:
                self._load_all()
            if self._catalogs is None:
                processors, estimators, self._hook_failures = collect(self._pm, self._source)
                consoles, exporters, failures = collect_extensions(self._pm, self._source)
                self._hook_failures += failures
                self._extensions = (consoles, exporters)
                self._catalogs = (processors, estimators)
                self._advice = [a for a in map(sample_rate_advice, processors.entries()) if a is not None]
            catalogs = self._catalogs
            failures = self._load_failures + self._hook_failures
            if self._settings.strict:
                if failures and raise_strict:
                    raise PluginError(
                        f"{len(failures)} plugin failure(s) with GRAFX_CORE_STRICT_PLUGINS=1:\n"
                        + "\n".join(f"  {f}" for f in failures)
                    )
                failures = []  # raised above, or listed by plugin_failures()
            fresh = [f for f in [*failures, *self._advice] if f not in self._warned]
            self._warned.update(fresh)
        # Warn once everything is loaded, so that warnings turned into errors
        # (pytest's filterwarnings=error) cannot leave a half-loaded registry.
        for failure in fresh:
            warnings.warn(PluginWarning(str(failure)), stacklevel=3)
        return catalogs

    def _load_all(self) -> None:
        self._loaded = True
        environ = os.environ if self._environ is None else self._environ
        try:
            self._settings = Settings.from_environ(environ)
        except PluginError as exc:  # a bad timeout setting: load with the default one, and say so
            self._settings = Settings.from_environ({k: v for k, v in environ.items() if k != ENV_IMPORT_TIMEOUT})
            self._load_failures.append(PluginFailure(ENV_IMPORT_TIMEOUT, None, None, "settings", str(exc)))
        candidates = default_candidates(self._default_plugins, CORE_PLUGIN_NAME)
        if self._autoload or self._settings.allow is not None:
            found, missing = entry_point_candidates(self._settings)
            candidates += found
            for name in missing:
                if name == CORE_PLUGIN_NAME:  # always loaded; naming it is harmless
                    continue
                self._load_failures.append(PluginFailure(
                    name, None, None, "allow-list",
                    f"GRAFX_CORE_PLUGINS names {name!r}, but no installed distribution has an "
                    "entry point of that name in group 'grafx_core'"))
        for candidate in candidates:
            try:
                plugin = load_bounded(candidate, self._settings.import_timeout)
            except BaseException as exc:  # a plugin's SystemExit is its failure, not the host's exit
                self._load_failures.append(self._failure(
                    candidate, "import", f"importing {candidate.target!r} ({candidate.origin}) failed: "
                    f"{type(exc).__name__}: {exc}"))
                continue
            failure = self._add(candidate, plugin)
            if failure is not None:
                self._load_failures.append(failure)
        self._check_pending()

    def _check_pending(self) -> None:
        """Report plugins put into the manager directly whose hooks have no spec."""
        while True:
            try:
                self._pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self._pm.get_name(exc.plugin) or module_name(exc.plugin)
                message = self._unknown_hooks_message(exc.plugin)
                self._pm.unregister(exc.plugin)
                source = self._sources.pop(name, None)
                self._load_failures.append(PluginFailure(
                    source.plugin if source else name, source.distribution if source else None,
                    source.version if source else None, "register", message))

    def _add(self, candidate: Candidate, plugin: object, refuse_clash: bool = False) -> PluginFailure | None:
        """Register one plugin object; return why it was refused, or the clash of its name.

        A plugin whose name another distribution already uses is registered
        all the same (two installed distributions must both be seen) unless
        ``refuse_clash``; the clash is returned as a ``"collision"`` failure.
        """
        name = candidate.name
        if not name or ":" in name or name.strip() != name or "," in name:
            return self._failure(candidate, "register",
                                 f"{name!r} cannot be a plugin name: expected no ':', ',' or surrounding spaces")
        clash = next((s for s in self._sources.values() if s.plugin == name
                      and (s.distribution, s.origin) != (candidate.distribution, candidate.origin)), None)
        if clash is not None:
            clash_failure = self._failure(
                candidate, "collision",
                f"plugin name {name!r} of {distribution_label(candidate.distribution, candidate.version)} "
                f"({candidate.target}) is already used by "
                f"{distribution_label(clash.distribution, clash.version)} ({clash.target})"
                + ("" if refuse_clash else "; both are loaded, and a name both register cannot be used"))
            if refuse_clash:
                return clash_failure
        key, n = name, 1
        while self._pm.has_plugin(key) or key in self._sources:
            n += 1
            key = f"{name}#{n}"
        try:
            self._pm.register(plugin, name=key)
        except Exception as exc:  # pluggy raises ValueError or PluginValidationError
            return self._failure(candidate, "register", f"pluggy refused {candidate.target!r}: {exc}")
        if not self._pm.get_hookcallers(plugin) or self._unknown_hooks(plugin):
            message = self._unknown_hooks_message(plugin)
            self._pm.unregister(plugin)
            return self._failure(candidate, "register", message)
        self._sources[key] = Source(key, name, candidate.distribution, candidate.version,
                                     candidate.origin, candidate.target)
        self._catalogs = None
        return None if clash is None else clash_failure

    def _unknown_hooks(self, plugin: object) -> list[str]:
        return sorted(
            caller.name for caller in self._pm.get_hookcallers(plugin) or []
            if not caller.has_spec()
            and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
        )

    def _unknown_hooks_message(self, plugin: object) -> str:
        unknown = self._unknown_hooks(plugin)
        known = list(HOOK_NAMES)
        if not unknown:
            return (f"{module_name(plugin)!r} implements no grafx_core hook (expected "
                    f"{' or '.join(known)} decorated with @grafx_core.hookimpl); not loaded")
        parts = []
        for hook in unknown:
            close = difflib.get_close_matches(hook, known, n=1)
            parts.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (f"{module_name(plugin)!r} implements unknown hook(s) {', '.join(parts)}; "
                f"known hooks are {known}; not loaded")

    def _failure(self, candidate: Candidate, stage: str, message: str) -> PluginFailure:
        return PluginFailure(candidate.name, candidate.distribution, candidate.version, stage, message)

    def _source(self, key: str) -> Source:
        if key in self._sources:
            return self._sources[key]
        # A plugin put into the manager directly, maybe by load_setuptools_entrypoints.
        distinfo = {self._pm.get_name(p): d for p, d in self._pm.list_plugin_distinfo()}
        dist = distinfo.get(key)
        return Source(key, key, dist.project_name if dist else None, dist.version if dist else None,
                      "entry point" if dist else "in-memory", module_name(self._pm.get_plugin(key)))


def _make_processor(info: ProcessorInfo, options: Mapping[str, Any]) -> Any:
    where = f"processor {info.name!r} of {info.distribution_label}"
    try:
        processor = info.spec.factory(**options)
    except NativeCodeError:
        raise  # its message already names the processor and the plug-in it refused to load
    except Exception as exc:  # a factory may raise anything; name it and the options it was given
        raise PluginError(f"{where}: its factory raised {type(exc).__name__}: {exc} (options {dict(options)})") from exc
    if processor is None or isinstance(processor, (type, str, bytes)) or not callable(processor):
        raise PluginError(
            f"{where}: its factory returned {processor!r:.80} (options {dict(options)}); "
            "expected a processor object (an nn.Module instance); a plugin bug"
        )
    return processor
