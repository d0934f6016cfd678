"""One cached description per processor: what every reader of a processor needs to know.

:func:`describe` reads a processor's declarations once and returns a
:class:`ProcessorDescription`: its ports, the channel counts its inlets take,
its controls (one :class:`~grafx_core.Control` each), how its gradient is
obtained, whether calls may run concurrently, and what it offers for
rendering over time (state carried across blocks, memorylessness, latency;
see the docs page "Time: state and moving controls").

A processor declares its controls with ``controls()``; one written against
the older attributes (``parameter_size()``, ``parameter_ranges()``,
``default_parameters()``, ``nondifferentiable_parameters``) is described from
those, so GRAFX processors work unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .control import Control
from .processor import (
    GRADIENT_KINDS,
    accepted_channels,
    inlet_names,
    iter_parameter_shapes,
    normalized_parameter_size,
    outlet_names,
    parameter_ranges,
)

__all__ = ["ProcessorDescription", "describe", "ControlPath"]

ControlPath = tuple[str, ...]
"""A control's keys from the top of its processor's parameter tree down to it."""


@dataclass(frozen=True)
class ProcessorDescription:
    """What the project knows about one processor, read once by :func:`describe`.

    Attributes:
        name: the processor's class name, for messages.
        inlets: inlet names, in the order ``forward`` takes its signals.
        outlets: outlet names, in the order ``forward`` returns them.
        inlet_channels: inlet name to the channel counts it accepts
            (``None``: any).
        controls: control path to :class:`~grafx_core.Control`, in declaration
            order.
        gradient_kind: one of :data:`~grafx_core.GRADIENT_KINDS`.
        concurrent_calls: a call may run on another thread while other stages
            render.
        stateful: the processor carries state across blocks
            (``initial_state`` and ``forward_stateful``).
        memoryless: each output sample depends only on the same input sample
            and the parameters, so a stream may call plain ``forward`` per block.
        latency_samples: how many samples late the processor's output is
            (a look-ahead limiter, a linear-phase filter); 0 for most.
        runs_on_host: the processor computes on the CPU whatever its inputs'
            device (a black box); the engine moves its inputs to pinned host
            memory and its outputs back, off the accelerator's critical path.
    """

    name: str
    inlets: tuple[str, ...]
    outlets: tuple[str, ...]
    inlet_channels: Mapping[str, tuple[int, ...] | None]
    controls: Mapping[ControlPath, Control]
    gradient_kind: str = "autograd"
    concurrent_calls: bool = False
    stateful: bool = False
    memoryless: bool = False
    latency_samples: int = 0
    runs_on_host: bool = False

    def control(self, path: str | ControlPath) -> Control:
        """The control at ``path`` (a tuple of keys or a dotted name).

        Raises:
            KeyError: the processor has no such control (its controls are named).
        """
        key = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
        try:
            return self.controls[key]
        except KeyError:
            known = [".".join(p) for p in self.controls]
            raise KeyError(f"{self.name} has no control {'.'.join(key)!r}; its controls are {known}") from None

    def parameter_size(self) -> dict[str, Any]:
        """Each control's shape without the node dimension, nested like the parameter tree."""
        tree: dict[str, Any] = {}
        for path, control in self.controls.items():
            target = tree
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = control.shape
        return tree

    def time_varying(self) -> tuple[ControlPath, ...]:
        """The paths of the controls that may be given as curves."""
        return tuple(path for path, control in self.controls.items() if control.time_varying)

    def nondifferentiable(self) -> tuple[ControlPath, ...]:
        """The paths of the controls that get no useful gradient."""
        return tuple(path for path, control in self.controls.items() if not control.differentiable)

    def __iter__(self) -> Iterator[tuple[ControlPath, Control]]:
        return iter(self.controls.items())


_CACHE: weakref.WeakKeyDictionary[Any, ProcessorDescription] = weakref.WeakKeyDictionary()


def describe(processor: Any) -> ProcessorDescription:
    """The processor's description, read from its declarations once and cached.

    Args:
        processor: any processor module (``forward`` and, optionally, the
            declarations listed in :class:`ProcessorDescription`).

    Returns:
        The same :class:`ProcessorDescription` object for the same processor
        on every call (the cache holds processors weakly).

    Raises:
        TypeError, ValueError: a declaration is malformed (the message names
            the processor and the control).
    """
    try:
        return _CACHE[processor]
    except (KeyError, TypeError):
        pass
    description = _read(processor)
    try:
        _CACHE[processor] = description
    except TypeError:  # not weak-referenceable: described anew each time
        pass
    return description


def _read(processor: Any) -> ProcessorDescription:
    name = type(processor).__name__
    kind = str(getattr(processor, "gradient_kind", "autograd"))
    if kind not in GRADIENT_KINDS:
        raise ValueError(f"{name}: gradient_kind {kind!r} is not one of {GRADIENT_KINDS}")
    latency = getattr(processor, "latency_samples", 0)
    if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
        raise TypeError(f"{name}: latency_samples must be a non-negative int, got {latency!r}")
    return ProcessorDescription(
        name=name,
        inlets=inlet_names(processor),
        outlets=outlet_names(processor),
        inlet_channels=accepted_channels(processor),
        controls=_controls(processor, name),
        gradient_kind=kind,
        concurrent_calls=bool(getattr(processor, "concurrent_calls", False)),
        stateful=callable(getattr(processor, "initial_state", None))
        and callable(getattr(processor, "forward_stateful", None)),
        memoryless=bool(getattr(processor, "memoryless", False)),
        latency_samples=latency,
        runs_on_host=bool(getattr(processor, "runs_on_host", False)),
    )


def _controls(processor: Any, name: str) -> dict[ControlPath, Control]:
    declared = getattr(processor, "controls", None)
    if callable(declared):
        return _declared_controls(declared() or {}, name)
    return _legacy_controls(processor, name)


def _declared_controls(tree: Mapping[str, Any], name: str, prefix: ControlPath = ()) -> dict[ControlPath, Control]:
    if not isinstance(tree, Mapping):
        raise TypeError(f"{name}: controls() must return a mapping of names to Control, got {type(tree).__name__}")
    out: dict[ControlPath, Control] = {}
    for key, value in tree.items():
        path = prefix + (key,)
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name}: controls() has a key {key!r}; control names are non-empty strings")
        if isinstance(value, Mapping):
            out.update(_declared_controls(value, name, path))
        elif isinstance(value, Control):
            out[path] = value
        else:
            raise TypeError(f"{name}: controls() entry {'.'.join(path)!r} must be a Control, got {value!r}")
    return out


def _legacy_controls(processor: Any, name: str) -> dict[ControlPath, Control]:
    shapes = list(iter_parameter_shapes(normalized_parameter_size(processor)))
    ranges = dict(iter_parameter_shapes(parameter_ranges(processor)))
    defaults = _legacy_defaults(processor, name)
    fixed = {tuple(str(p).split(".")) for p in getattr(processor, "nondifferentiable_parameters", ())}
    out: dict[ControlPath, Control] = {}
    for path, shape in shapes:
        bounds = ranges.get(path)
        default = defaults.get(path)
        try:
            out[path] = Control(
                shape=shape,
                low=None if bounds is None else bounds.low,
                high=None if bounds is None else bounds.high,
                unit="" if bounds is None else bounds.unit,
                scale="linear" if bounds is None else bounds.scale,
                default=None if default is None else tuple(default),
                differentiable=path not in fixed,
            )
        except (TypeError, ValueError) as exc:
            if default is None:
                raise type(exc)(f"{name}: parameter {'.'.join(path)!r}: {exc}") from exc
            # Legacy defaults may lie outside a declared range (the range is advice there); keep the range.
            out[path] = Control(shape=shape, unit="" if bounds is None else bounds.unit,
                                default=tuple(default), differentiable=path not in fixed)
    return out


def _legacy_defaults(processor: Any, name: str) -> dict[ControlPath, tuple[float, ...]]:
    method = getattr(processor, "default_parameters", None)
    if method is None:
        return {}
    out: dict[ControlPath, tuple[float, ...]] = {}

    def walk(tree: Any, prefix: ControlPath) -> None:
        if isinstance(tree, Mapping):
            for key, value in tree.items():
                walk(value, prefix + (key,))
            return
        values = tree.tolist() if hasattr(tree, "tolist") else tree
        flat: list[float] = []
        stack = [values]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                stack.extend(reversed(item))
            else:
                flat.append(float(item))
        out[prefix] = tuple(flat)

    walk(method() or {}, ())
    return out
