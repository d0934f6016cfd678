"""Soft graph structure: per-node gates that blend a node with its bypass, and pruning.

A gate ``g`` in ``[0, 1]`` turns any single-outlet processor ``f`` into
``y = g * f(x) + (1 - g) * x``, where ``x`` is the node's ``"main"`` inlet
signal (its bypass). Gate logits are ordinary parameters, so gates and
processor parameters train together; a sparsity penalty on ``g`` comes back
as an aux value. :func:`prune` then removes gated-off nodes from the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from ._tree import ParameterModules, ParameterTree
from .errors import GraphError, ParameterError
from .graph import Graph
from .control import Control
from .description import describe

__all__ = ["GATE_PARAMETER", "Gated", "gate_processors", "gate_values", "prune"]

GateMode = Literal["soft", "hard", "straight-through"]
GATE_MODES = ("soft", "hard", "straight-through")
"""How :class:`Gated` turns a logit into a gate."""

GATE_PARAMETER = "gate_logit"
"""Name of the gate's parameter, ``[nodes, 1]``: the gate is ``sigmoid(gate_logit)``."""


class Gated(nn.Module):
    """A processor whose output blends with its bypass: ``g * f(x) + (1 - g) * x``.

    Args:
        processor: any single-outlet processor whose first inlet is the signal
            to bypass; a mono bypass broadcasts to the processor's channels.
        mode: ``"soft"`` uses ``g = sigmoid(gate_logit)``; ``"hard"`` uses
            ``g = 1`` where ``gate_logit >= 0`` and ``0`` elsewhere (as
            :func:`prune` decides), with no gradient to the logit;
            ``"straight-through"`` renders with the hard gate but passes the
            soft gate's gradient to the logit, so that training ends on
            exactly what pruning will keep.
        sparsity: weight of the aux value ``"gate_sparsity"`` (``sparsity * g``
            per node), an L1 penalty that pushes gates towards bypass.

    Parameters are the processor's plus ``gate_logit`` (``[nodes, 1]``).
    Aux values are the processor's plus ``"gate"`` and ``"gate_sparsity"``,
    both ``[nodes]``.
    """

    def __init__(self, processor: nn.Module, mode: GateMode = "soft", sparsity: float = 0.0) -> None:
        super().__init__()
        inner = describe(processor)
        if len(inner.outlets) != 1:
            raise GraphError(
                f"cannot gate {type(processor).__name__}: it has outlets {list(inner.outlets)}, "
                "and a bypass is defined for one outlet only"
            )
        if (GATE_PARAMETER,) in inner.controls or GATE_PARAMETER in inner.parameter_size():
            raise ParameterError(
                f"cannot gate {type(processor).__name__}: it already has a parameter named {GATE_PARAMETER!r}"
            )
        if mode not in GATE_MODES:
            raise ValueError(f"gate mode must be one of {GATE_MODES}, got {mode!r}")
        self.processor = processor
        self.mode = mode
        self.sparsity = float(sparsity)
        self.inlets = inner.inlets
        self.outlets = inner.outlets
        self.gradient_kind = inner.gradient_kind

    def controls(self) -> dict[str, Any]:
        """The processor's controls and ``gate_logit``, starting open (``sigmoid(3) = 0.95``)."""
        return {**describe(self.processor).control_tree(),
                GATE_PARAMETER: Control(default=3.0, unit="logit", description="the gate is sigmoid(gate_logit)")}

    def parameter_size(self) -> dict[str, Any]:
        """The processor's parameters and ``gate_logit: 1``."""
        return describe(self).parameter_size()

    def forward(self, *signals: torch.Tensor, **parameters: Any):
        """``signals``: one ``[nodes, C, L]`` per inlet; returns ``(y, aux)``."""
        logit = parameters.pop(GATE_PARAMETER)
        result = self.processor(*signals, **parameters)
        aux: dict[str, torch.Tensor] = {}
        if isinstance(result, (tuple, list)):
            items = list(result)
            if items and isinstance(items[-1], Mapping):
                aux.update(items.pop())
            (wet,) = items
        else:
            wet = result
        soft = torch.sigmoid(logit)
        if self.mode == "soft":
            gate = soft
        else:
            gate = (logit >= 0).to(wet.dtype)
            if self.mode == "straight-through":
                gate = gate + soft - soft.detach()
        dry = signals[0]
        y = gate[..., None] * wet + (1 - gate[..., None]) * dry
        aux["gate"] = gate[:, 0]
        aux["gate_sparsity"] = self.sparsity * gate[:, 0]
        return y, aux


def gate_processors(
    processors: Mapping[str, nn.Module],
    types: list[str] | None = None,
    mode: GateMode = "soft",
    sparsity: float = 0.0,
) -> dict[str, nn.Module]:
    """Wrap the processors of ``types`` (all single-outlet ones by default) in :class:`Gated`.

    The processor inside is not copied: gated and plain dicts share it.
    """
    chosen = types if types is not None else [t for t, p in processors.items() if len(describe(p).outlets) == 1]
    return {
        t: (Gated(p.processor if isinstance(p, Gated) else p, mode, sparsity) if t in chosen else p)
        for t, p in processors.items()
    }


def gate_values(parameters: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Each gated type's gates ``sigmoid(gate_logit)``, ``[nodes_of_type]`` (detached)."""
    return {
        t: torch.sigmoid(tree[GATE_PARAMETER].detach())[:, 0]
        for t, tree in parameters.items()
        if GATE_PARAMETER in tree
    }


def _rows_kept(tree: Any, keep: torch.Tensor) -> nn.ParameterDict:
    result = ParameterTree()
    for key in tree.keys():
        if key == GATE_PARAMETER:
            continue
        value = tree[key]
        if isinstance(value, (Mapping, nn.ParameterDict)):
            result[key] = _rows_kept(value, keep)
        else:
            result[key] = nn.Parameter(value.detach()[keep].clone())
    return result


def prune(
    graph: Graph, parameters: Mapping[str, Any], threshold: float = 0.5
) -> tuple[Graph, nn.ModuleDict, list[int | None]]:
    """Remove the nodes whose gate is below ``threshold``, bypassing them.

    A removed node's ``"main"`` inputs are connected straight to its
    consumers (its other inlets, such as a sidechain, are dropped); kept gated
    nodes lose their gate (a gate of exactly 1). Rendering the pruned graph
    with the plain processors equals rendering the gated graph with
    ``Gated(..., mode="hard")`` when ``threshold`` is 0.5 (the hard gate's
    decision), up to a mono bypass of a node that widens to stereo, which
    the pruned graph leaves mono.

    Args:
        graph: the gated graph.
        parameters: its parameters; types with a ``gate_logit`` are gated.
        threshold: gates ``sigmoid(gate_logit)`` below it are removed.

    Returns:
        ``(pruned_graph, pruned_parameters, node_map)``: ``node_map[i]`` is
        node ``i``'s id in the pruned graph, or ``None`` if it was removed.
        The parameters are new leaf tensors without ``gate_logit``.
    """
    gates = gate_values(parameters)
    removed: set[int] = set()
    keep_rows: dict[str, torch.Tensor] = {}
    for node_type, values in gates.items():
        ids = graph.nodes_of_type(node_type)
        keep = values >= threshold
        keep_rows[node_type] = keep
        removed |= {i for i, k in zip(ids, keep.tolist()) if not k}

    pruned = Graph.from_dict(graph.to_dict())
    node_map = pruned.remove(*removed, rewire=True)

    new_parameters = ParameterModules()
    for node_type in parameters.keys():
        tree = parameters[node_type]
        count = len(graph.nodes_of_type(node_type))
        keep = keep_rows.get(node_type, torch.ones(count, dtype=torch.bool))
        if not bool(keep.any()):
            continue
        new_parameters[node_type] = _rows_kept(tree, keep.to(_device_of(tree)))
    return pruned, new_parameters, node_map


def _device_of(tree: Any) -> torch.device:
    for key in tree.keys():
        value = tree[key]
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, (Mapping, nn.ParameterDict)):
            return _device_of(value)
    return torch.device("cpu")
