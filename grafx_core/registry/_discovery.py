"""Finding plugins: default modules and the ``grafx_core`` entry-point group.

pluggy's ``load_setuptools_entrypoints`` aborts on the first plugin that fails
to import and silently skips a second distribution that reuses an entry-point
name, so entry points are listed here and each is loaded on its own.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import PluginError
from ..hookspecs import PROJECT_NAME

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_STRICT",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_ALLOW",
    "ENV_IMPORT_TIMEOUT",
    "DEFAULT_IMPORT_TIMEOUT",
    "PluginImportTimeout",
    "load_bounded",
    "Settings",
    "Candidate",
    "entry_point_candidates",
    "default_candidates",
]

ENTRY_POINT_GROUP = PROJECT_NAME
"""The entry-point group plugins publish under (``[project.entry-points.grafx_core]``)."""

ENV_STRICT = "GRAFX_CORE_STRICT_PLUGINS"
"""``1``: a plugin failure raises :class:`PluginError` instead of warning."""

ENV_DISABLE_AUTOLOAD = "GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD"
"""``1``: load no entry-point plugin except those named in :data:`ENV_ALLOW`."""

ENV_ALLOW = "GRAFX_CORE_PLUGINS"
"""Comma-separated entry-point names: load exactly these (empty: none)."""

ENV_IMPORT_TIMEOUT = "GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT"
"""Seconds one plugin's import may take (default :data:`DEFAULT_IMPORT_TIMEOUT`);
``0`` imports in the calling thread with no bound."""

DEFAULT_IMPORT_TIMEOUT = 60.0
"""How long a plugin's import may block before it counts as failed, in seconds:
generous for a plugin importing torch-based libraries on a loaded machine."""

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The plugin-loading switches, read from the environment at load time.

    Attributes:
        strict: failures raise instead of warning.
        autoload: load every entry point of the group.
        allow: when not ``None``, load exactly these entry-point names
            (whatever ``autoload`` says).
        import_timeout: seconds one plugin's import may take (``0``: no bound).
    """

    strict: bool = False
    autoload: bool = True
    allow: frozenset[str] | None = None
    import_timeout: float = DEFAULT_IMPORT_TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read :data:`ENV_STRICT`, :data:`ENV_DISABLE_AUTOLOAD`, :data:`ENV_ALLOW`
        and :data:`ENV_IMPORT_TIMEOUT`.

        Raises:
            PluginError: :data:`ENV_IMPORT_TIMEOUT` is not a number of seconds >= 0.
        """
        allow = environ.get(ENV_ALLOW)
        timeout_text = environ.get(ENV_IMPORT_TIMEOUT, "").strip()
        try:
            timeout = float(timeout_text) if timeout_text else DEFAULT_IMPORT_TIMEOUT
        except ValueError:
            timeout = math.nan
        if not timeout >= 0 or math.isinf(timeout):
            raise PluginError(f"{ENV_IMPORT_TIMEOUT}={timeout_text!r}: expected a finite number of seconds >= 0")
        return cls(
            strict=environ.get(ENV_STRICT, "").strip().lower() in _TRUE,
            autoload=environ.get(ENV_DISABLE_AUTOLOAD, "").strip().lower() not in _TRUE,
            allow=None if allow is None else frozenset(n.strip() for n in allow.split(",") if n.strip()),
            import_timeout=timeout,
        )


@dataclass(frozen=True)
class Candidate:
    """A plugin found but not imported yet.

    Attributes:
        name: the plugin name (entry-point name, or ``"core"`` for defaults).
        distribution: the providing distribution, if known.
        version: its version, if known.
        origin: ``"default"`` or ``"entry point"``.
        target: what is imported (``"grafx_dsp.plugin"``), for messages.
        load: imports and returns the plugin object.
    """

    name: str
    distribution: str | None
    version: str | None
    origin: str
    target: str
    load: Callable[[], object]


def _distribution(ep: metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.name, dist.version


def entry_point_candidates(settings: Settings, group: str = ENTRY_POINT_GROUP) -> tuple[list[Candidate], list[str]]:
    """The entry points of ``group`` that ``settings`` lets load, sorted by name and distribution.

    Returns:
        The candidates, and the allow-listed names that no entry point has.
    """
    if settings.allow is None and not settings.autoload:
        return [], []
    found = []
    for ep in metadata.entry_points(group=group):
        if settings.allow is not None and ep.name not in settings.allow:
            continue
        distribution, version = _distribution(ep)
        found.append(Candidate(ep.name, distribution, version, "entry point", ep.value, ep.load))
    found.sort(key=lambda c: (c.name, c.distribution or "", c.target))
    missing = sorted((settings.allow or frozenset()) - {c.name for c in found})
    return found, missing


def _core_distribution() -> tuple[str | None, str | None]:
    try:
        return "grafx-core", metadata.version("grafx-core")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "grafx-core", None


def default_candidates(modules: tuple[str, ...], plugin_name: str) -> list[Candidate]:
    """grafx-core's own plugin modules, all under ``plugin_name``."""
    distribution, version = _core_distribution()
    return [
        Candidate(plugin_name, distribution, version, "default", module,
                  lambda module=module: importlib.import_module(module))
        for module in modules
    ]


class PluginImportTimeout(Exception):
    """A plugin's import did not finish within the import timeout."""


def load_bounded(candidate: Candidate, timeout: float) -> object:
    """``candidate.load()``, given at most ``timeout`` seconds (``0``: no bound).

    The import runs in a daemon thread that the caller waits for. An import
    that blocks (a network mount, a lock, a prompt) is left behind in that
    thread and reported as :class:`PluginImportTimeout`, so the registry and
    the process's exit never wait for it; Python's per-module import locks
    let the other plugins import meanwhile. Whatever the import raises,
    ``SystemExit`` and ``KeyboardInterrupt`` included, is re-raised here; a
    ``ValueError`` of something only the main thread may do (installing a
    signal handler) says how to import in the calling thread instead.
    """
    if timeout == 0:
        return candidate.load()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["plugin"] = candidate.load()
        except BaseException as exc:  # handed to the caller, which records it
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"grafx-plugin-import:{candidate.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise PluginImportTimeout(
            f"the import did not finish within {timeout:g} s (raise {ENV_IMPORT_TIMEOUT} for slow plugins); "
            "it is left running in the background"
        )
    error = outcome.get("error")
    if isinstance(error, ValueError) and "main thread" in str(error):
        # signal.signal() and the like refuse to run outside the main thread; say which way out there is.
        raise ValueError(f"{error} (the import ran in a worker thread so that its time is bounded; "
                         f"set {ENV_IMPORT_TIMEOUT}=0 to import plugins in the calling thread)") from error
    if error is not None:
        raise error
    return outcome["plugin"]
