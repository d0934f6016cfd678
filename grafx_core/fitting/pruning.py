"""Prune a fitted console: gate every node, fit gates and parameters together, drop what the mix does not need.

Gates render straight-through (0 or 1, as :func:`grafx_core.prune` will
decide) while their logits learn from the soft gate's gradient and an L1
penalty on the gates (``sparsity`` per open gate) pushes unneeded nodes
to bypass. The pruned graph is then rendered with the plain processors, so
the loss reported after pruning is that of the console that is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..graph import Graph
from ..plan import compile_render
from ..structure import GATE_PARAMETER, gate_processors, prune
from .latent import LatentParameters
from .loop import FitResult, fit
from .progress import Progress

__all__ = ["PruneResult", "prune_console"]

_START_LOGIT = 1.0  # sigmoid(1) = 0.73: open, but close enough to 0 for a few dozen steps to shut it


@dataclass
class PruneResult:
    """What :func:`prune_console` kept.

    Attributes:
        graph: the pruned graph.
        parameters: its parameters (no gates), processor units.
        processors_before, processors_after: processor nodes before and after.
        loss_before: the loss of the console given to :func:`prune_console`.
        loss_after: the loss of the pruned console, rendered with the plain processors.
        removed: names of the nodes removed.
        fit: the gated fit.
    """

    graph: Graph
    parameters: nn.ModuleDict
    processors_before: int
    processors_after: int
    loss_before: float
    loss_after: float
    removed: list[str]
    fit: FitResult


def prune_console(graph: Graph, processors: Mapping[str, Any], parameters: Mapping[str, Mapping[str, torch.Tensor]],
                  sources: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor], loss_before: float,
                  steps: int, learning_rate: float = 0.05, sparsity: float = 0.01,
                  progress: Progress | None = None, fixed: Mapping[str, Sequence[str]] | None = None) -> PruneResult:
    """Gate every processor node of a fitted console, fit, and prune the nodes whose gate shut.

    Args:
        graph: the console.
        processors: its plain processors.
        parameters: fitted parameters in processor units.
        sources: ``[num_in, channels, samples]``.
        loss: the mix ``[channels, samples]`` -> a scalar.
        loss_before: ``loss`` of the fitted console (for the report).
        steps: steps of the gated fit.
        learning_rate: Adam's initial learning rate.
        sparsity: the penalty per open gate, in loss units.
        progress: shows the gated fit.
        fixed: parameters the gated fit leaves alone, as the fit left them (``{node_type: (name, ...)}``).
    """
    gated = gate_processors(processors, mode="straight-through")
    start = {t: {**{k: v.detach() for k, v in p.items()},
                 GATE_PARAMETER: torch.full((len(graph.nodes_of_type(t)), 1), _START_LOGIT,
                                            dtype=next(iter(p.values())).dtype, device=sources.device)}
             for t, p in parameters.items()}
    # The plain processors tell LatentParameters which types keep raw black-box values.
    latent = LatentParameters(start, processors)
    if fixed:
        latent.freeze(fixed)
    plan = compile_render(graph, gated)

    def penalised(y: torch.Tensor) -> torch.Tensor:
        gates = sum(torch.sigmoid(v[GATE_PARAMETER]).sum() for v in latent.values().values())
        return loss(y) + sparsity * gates

    result = fit(lambda p: plan(p, sources)[0][0], latent, penalised, steps, learning_rate, progress)
    kept = latent.detached()
    pruned, pruned_parameters, node_map = prune(graph, kept, threshold=0.5)
    plain = {t: processors[t] for t in pruned.processor_types()}
    with torch.no_grad():
        after = loss(compile_render(pruned, plain)(pruned_parameters, sources)[0][0]).item()
    removed = [graph.nodes[i].name or graph.nodes[i].label() for i, new in enumerate(node_map) if new is None]
    count = lambda g: sum(1 for n in g.nodes if n.type in processors)  # noqa: E731
    return PruneResult(pruned, pruned_parameters, count(graph), count(pruned), loss_before, after, removed, result)
