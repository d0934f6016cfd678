"""What a predictor must output for a graph: one head per processor type and parameter.

Each head covers every node of its type: its output is ``[batch, nodes, *shape]``,
the per-example layout :class:`~grafx_core.RenderPlan` takes. Where the
processor's :class:`~grafx_core.Control` declares a range, the head squashes
its output into it through the one map of :mod:`grafx_core.unconstrained`
(linear or log, as declared); elsewhere the parameter is unbounded and the
head adds its output to the default. Black boxes take unconstrained values
(their controls are declared ``unconstrained``: they map them into range
themselves, through the same map), so they fall in the second case, and a
black box's raw value moves exactly as a declared range's pre-sigmoid value
does. Heads start at the processor's defaults (pulled 1% inside a range
whose end they lie on, where a sigmoid's gradient would vanish; see
:func:`~grafx_core.unconstrained.trainable_start`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .._paths import leaves
from ..control import Control
from ..description import describe
from ..errors import PredictorError
from ..graph import Graph
from ..parameters import _require_processors, create_empty_parameters
from ..processor import _checked_range, ProcessorLike
from ..unconstrained import START_EDGE, from_unconstrained, to_unconstrained, trainable_start

__all__ = ["HeadSpec", "head_specs", "declared_ranges"]

_EDGE = START_EDGE
"""Defaults on a range's end start this far inside it (normalised), so the sigmoid's gradient is not ~0."""


@dataclass(frozen=True)
class HeadSpec:
    """One predictor head: every node's value of one parameter of one processor type.

    Attributes:
        node_type: the graph's node type.
        path: the parameter's keys from the top of the type's tree to the leaf.
        nodes: how many nodes of that type the graph has.
        shape: the parameter's shape without the node dimension.
        low, high: the declared range, or ``None`` for an unbounded parameter.
        scale: ``"linear"`` or ``"log"`` (how the range is spanned).
        default: ``[nodes, *shape]`` starting values (the processor's defaults).
    """

    node_type: str
    path: tuple[str, ...]
    nodes: int
    shape: tuple[int, ...]
    low: float | None
    high: float | None
    scale: str
    default: torch.Tensor

    @property
    def name(self) -> str:
        """``"type.parameter"`` (nested keys joined by dots), for messages."""
        return ".".join((self.node_type, *self.path))

    @property
    def size(self) -> int:
        """Values the head outputs per example: ``nodes * prod(shape)``."""
        return self.nodes * math.prod(self.shape)

    @property
    def control(self) -> Control:
        """The range this head predicts in, as a :class:`~grafx_core.Control` (unbounded without one)."""
        return Control(shape=self.shape, low=self.low, high=self.high, scale=self.scale)

    def initial_output(self) -> torch.Tensor:
        """The raw head output (``[size]``) that :meth:`squash` maps to the defaults."""
        if self.low is None or self.high is None:
            return torch.zeros(self.size)
        control = self.control
        return trainable_start(control, to_unconstrained(control, self.default.double())).reshape(-1).float()

    def squash(self, raw: torch.Tensor, default: torch.Tensor | None = None) -> torch.Tensor:
        """Map raw head outputs ``[batch, size]`` to values ``[batch, nodes, *shape]`` in range.

        ``default`` (``[nodes, *shape]``) stands in for :attr:`default` where a copy
        already lives on ``raw``'s device.
        """
        raw = raw.reshape(raw.shape[0], self.nodes, *self.shape)
        if self.low is None or self.high is None:
            return (self.default if default is None else default).to(raw) + raw
        return from_unconstrained(self.control, raw)


def declared_ranges(processor: ProcessorLike, node_type: str,
                    override: Mapping[str, Any] | None = None) -> dict[tuple[str, ...], Control]:
    """The ranges of a processor's parameters, by parameter path.

    Reads the processor's declared controls (:func:`~grafx_core.describe`;
    bounded ones whose tensor holds the natural value); ``override``, a nested
    mapping of :class:`~grafx_core.Control` records or ``(low, high[, unit[,
    scale]])`` tuples, replaces declared ranges parameter by parameter.

    Raises:
        PredictorError: a range is invalid (``low >= high``, not finite, an
            unknown scale, a log scale with ``low <= 0``, neither a Control nor
            a range tuple); the message names the node type and the parameter.
    """
    who = f"{type(processor).__name__} for node type {node_type!r}"
    found: dict[tuple[str, ...], Control] = {}

    def add(tree: Mapping[str, Any]) -> None:
        for path, value in leaves(tree):
            if isinstance(value, Control):
                if not value.bounded or (value.scale == "log" and not value.low > 0):  # type: ignore[operator]
                    raise PredictorError(f"{who}: range of {'.'.join(path)!r} must be bounded (a log one above 0) "
                                         f"to predict in, got [{value.low}, {value.high}]")
                found[path] = value
                continue
            bounds = _checked_range(value, who, ".".join(path))
            if not (math.isfinite(bounds.low) and math.isfinite(bounds.high)):
                raise PredictorError(f"{who}: range of {'.'.join(path)!r} must be finite to predict in, got {bounds}")
            found[path] = Control(low=bounds.low, high=bounds.high, unit=bounds.unit, scale=bounds.scale)

    try:
        found.update((path, control) for path, control in describe(processor).controls.items() if _predictable(control))
        add(override or {})
    except (TypeError, ValueError) as exc:
        raise PredictorError(f"node type {node_type!r}: {exc}") from exc
    return found


def _predictable(control: Control) -> bool:
    if not control.bounded or control.unconstrained:
        return False
    low, high = float(control.low), float(control.high)  # type: ignore[arg-type]
    return math.isfinite(low) and math.isfinite(high) and (control.scale != "log" or low > 0)


def head_specs(graph: Graph, processors: Mapping[str, ProcessorLike],
               ranges: Mapping[str, Mapping[str, Any]] | None = None) -> list[HeadSpec]:
    """One :class:`HeadSpec` per processor type of ``graph`` and parameter, in type order.

    Args:
        graph: the graph.
        processors: a processor per node type.
        ranges: per node type, ranges that replace the declared ones (a
            nested mapping like ``parameter_ranges()``), to predict inside a
            narrower range than the processor allows.

    Raises:
        UnknownNodeTypeError: a node type has no processor.
        PredictorError: a range is invalid (see :func:`declared_ranges`), or
            ``ranges`` names a type or parameter the graph does not have.
    """
    _require_processors(graph, processors)
    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(graph.processor_types()))
    if unknown:
        raise PredictorError(f"ranges are given for node types {unknown}; the graph has {graph.processor_types()}")
    for node_type in graph.processor_types():
        try:
            describe(processors[node_type])
        except (TypeError, ValueError) as exc:
            raise PredictorError(f"node type {node_type!r}: {exc}") from exc
    defaults = create_empty_parameters(graph, processors)
    specs = []
    for node_type in graph.processor_types():
        processor = processors[node_type]
        found = declared_ranges(processor, node_type, ranges.get(node_type))
        layout = {path: control.shape for path, control in describe(processor).controls.items()}
        extra = [".".join(path) for path in found if path not in layout]
        if extra:
            raise PredictorError(
                f"node type {node_type!r}: ranges for {extra}, which its processor {type(processor).__name__} "
                f"does not take; it takes {['.'.join(path) for path in layout]}"
            )
        for path, shape in layout.items():
            default: Any = defaults[node_type]
            for key in path:
                default = default[key]
            bounds = found.get(path)
            low, high, scale = (bounds.low, bounds.high, bounds.scale) if bounds else (None, None, "linear")
            low, high = (None if low is None else float(low)), (None if high is None else float(high))
            specs.append(HeadSpec(node_type, path, len(graph.nodes_of_type(node_type)), shape,
                                  low, high, scale, default.detach().clone()))
    return specs
