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

from .specs import EstimatorSpec, ProcessorSpec

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl", "grafx_register_processors", "grafx_register_estimators"]

PROJECT_NAME = "grafx_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator that marks a plugin's hook implementations."""


@hookspec
def grafx_register_processors() -> Sequence[ProcessorSpec]:
    """Return the processors this plugin offers, as :class:`ProcessorSpec` records."""


@hookspec
def grafx_register_estimators() -> Sequence[EstimatorSpec]:
    """Return the gradient estimators this plugin offers, as :class:`EstimatorSpec` records."""
