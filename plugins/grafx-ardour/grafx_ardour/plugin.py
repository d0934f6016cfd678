"""The grafx-core plugin entry point: the ``ardour`` console and the ``ardour`` exporter.

Published as entry point ``ardour`` in group ``grafx_core``: ``grafx-core fit
--console ardour`` builds :func:`~grafx_ardour.console.build_ardour_console`,
``grafx-core export ardour FIT_DIR -o SESSION_DIR`` runs
:func:`~grafx_ardour.export.export_session`. Importing this module loads
neither torch nor Ardour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafx_core import ConsoleSpec, ExporterSpec, hookimpl

__all__ = ["grafx_register_consoles", "grafx_register_exporters"]


def _console(track_names: Sequence[str]) -> Any:
    from .console import build_ardour_console

    return build_ardour_console(track_names)


def _export(fit_dir: str, destination: str, force: bool = False) -> Any:
    from .export import export_session

    return export_session(fit_dir, destination, force=force)


def _check(graph: Any, processors: Any, parameters: Any) -> None:
    from .plan import plan_session

    plan_session(graph, processors, parameters)


@hookimpl
def grafx_register_consoles() -> list[ConsoleSpec]:
    """The console that is Ardour's mixer (a-comp, a-eq, fader and panner twins)."""
    return [ConsoleSpec("ardour", _console, "Ardour's mixer: a-comp, a-eq, fader and panner, buses, parallel send")]


@hookimpl
def grafx_register_exporters() -> list[ExporterSpec]:
    """The export of a fit as an Ardour 7 session."""
    return [ExporterSpec("ardour", _export, "An Ardour 7 session (needs ardour7-lua; apt-get install ardour)",
                         check=_check)]
