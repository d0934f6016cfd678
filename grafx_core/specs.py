"""Frozen records that plugins return from their hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .processor import GRADIENT_KINDS, SIGNAL_GRADIENTS

__all__ = ["ProcessorSpec", "EstimatorSpec", "ConsoleSpec", "ExporterSpec"]


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or ":" in name or name.strip() != name:
        raise ValueError(
            f"{kind} name {name!r} is invalid: expected a non-empty string without ':' "
            "or surrounding spaces (the plugin prefix is added by the registry)"
        )


@dataclass(frozen=True)
class ProcessorSpec:
    """A processor a plugin offers.

    Attributes:
        name: short name, unique within the plugin (``"compressor"``); the
            registry qualifies it as ``"plugin:name"``.
        factory: called with keyword options, returns a processor module.
        description: one line for listings.
        gradient: how its gradient is obtained, one of
            :data:`grafx_core.processor.GRADIENT_KINDS`.
        signal_gradient: how its input signal's gradient is obtained by
            default: ``"autograd"``, ``"auto"`` (settled by a probe at first use)
            or one of :data:`grafx_core.estimators.SIGNAL_GRADIENTS`; empty
            means ``"autograd"`` for an autograd processor, else ``"auto"``.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    gradient: str = "autograd"
    signal_gradient: str = ""

    def __post_init__(self) -> None:
        _check_name("processor", self.name)
        if not callable(self.factory):
            raise TypeError(f"processor {self.name!r}: factory must be callable, got {self.factory!r}")
        if self.gradient not in GRADIENT_KINDS:
            raise ValueError(
                f"processor {self.name!r}: gradient {self.gradient!r} is not one of {GRADIENT_KINDS}"
            )
        allowed = ("", "autograd", "auto", *SIGNAL_GRADIENTS)
        if self.signal_gradient not in allowed:
            raise ValueError(
                f"processor {self.name!r}: signal_gradient {self.signal_gradient!r} is not one of {allowed}"
            )
        if not self.signal_gradient:
            object.__setattr__(self, "signal_gradient", "autograd" if self.gradient == "autograd" else "auto")


@dataclass(frozen=True)
class EstimatorSpec:
    """A gradient estimator a plugin offers.

    Attributes:
        name: short name (``"spsa"``); qualified by the registry.
        factory: called with keyword options, returns an estimator object.
        description: one line for listings.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("estimator", self.name)
        if not callable(self.factory):
            raise TypeError(f"estimator {self.name!r}: factory must be callable, got {self.factory!r}")


@dataclass(frozen=True)
class ConsoleSpec:
    """A mixing console a plugin offers to ``grafx-core fit --console NAME``.

    Attributes:
        name: short name (``"ardour"``); qualified by the registry.
        factory: called with the track names (a list of str), returns a
            :class:`grafx_core.fitting.console.Console`.
        description: one line for listings.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("console", self.name)
        if not callable(self.factory):
            raise TypeError(f"console {self.name!r}: factory must be callable, got {self.factory!r}")


@dataclass(frozen=True)
class ExporterSpec:
    """A way to write a fit's results folder for another program (``grafx-core export NAME``).

    Attributes:
        name: short name (``"ardour"``); qualified by the registry.
        factory: ``export(fit_dir, destination, force=False)``: writes the
            results folder ``fit_dir`` to ``destination`` and returns the main
            file written; refuses an existing ``destination`` unless ``force``;
            raises a :class:`~grafx_core.errors.GrafxError` whose message is
            one line a user can act on.
        description: one line for listings.
        check: ``check(graph, processors, parameters)``, optional: raises the
            :class:`~grafx_core.errors.GrafxError` :attr:`factory` would raise for
            a graph it cannot write (checked before a fit, so that
            ``fit --export-ardour`` fails before the fit, not after it);
            ``parameters`` are the fit's start values (processor units).
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    check: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        _check_name("exporter", self.name)
        if not callable(self.factory):
            raise TypeError(f"exporter {self.name!r}: factory must be callable, got {self.factory!r}")
        if self.check is not None and not callable(self.check):
            raise TypeError(f"exporter {self.name!r}: check must be callable or None, got {self.check!r}")
