"""The hooks a grafx-core plugin may implement.

A plugin is a module (or object) with functions decorated by
:data:`hookimpl`, published under the entry-point group ``grafx_core``::

    from grafx_core import hookimpl, ProcessorSpec

    @hookimpl
    def grafx_register_processors():
        return [ProcessorSpec("gain", Gain, "Gain in dB", gradient="autograd")]
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from .specs import ConsoleSpec, EstimatorSpec, ExporterSpec, ProcessorSpec

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl", "grafx_register_processors", "grafx_register_estimators",
           "grafx_register_consoles", "grafx_register_exporters"]

PROJECT_NAME = "grafx_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class _HookimplMarker(pluggy.HookimplMarker):
    """Mark a function of a grafx-core plugin module as the implementation of a hook.

    Decorate a module-level function named after a hook of
    :mod:`grafx_core.hookspecs` (``grafx_register_processors``,
    ``grafx_register_estimators``), with or without parentheses::

        @hookimpl
        def grafx_register_processors():
            return [ProcessorSpec("gain", Gain, "Gain in dB")]

    grafx-core calls it with no arguments when the registry loads, the first
    time a processor or estimator is looked up; a misspelled hook name is
    reported as a plugin failure naming the closest hook. pluggy's options
    (``tryfirst=True``, ...) are accepted but change nothing here: each
    plugin's hook is called on its own.
    """


hookimpl = _HookimplMarker(PROJECT_NAME)
"""Decorator for a plugin's hook implementations: ``@hookimpl`` on a module-level
function named after a hook of :mod:`grafx_core.hookspecs`, which the registry
calls with no arguments when it loads (``help(hookimpl)`` says more)."""


@hookspec
def grafx_register_processors() -> Sequence[ProcessorSpec]:
    """Return the processors this plugin offers, as :class:`ProcessorSpec` records."""


@hookspec
def grafx_register_estimators() -> Sequence[EstimatorSpec]:
    """Return the gradient estimators this plugin offers, as :class:`EstimatorSpec` records."""


@hookspec
def grafx_register_consoles() -> Sequence[ConsoleSpec]:
    """Return the mixing consoles this plugin offers to ``grafx-core fit --console``, as :class:`ConsoleSpec` records."""


@hookspec
def grafx_register_exporters() -> Sequence[ExporterSpec]:
    """Return the exporters this plugin offers to ``grafx-core export``, as :class:`ExporterSpec` records."""
