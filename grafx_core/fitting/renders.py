"""How many times a fit has rendered its graph: the currency optimisers of black boxes are compared in.

A gradient-free optimiser pays one graph render per candidate. A gradient
estimator pays extra renders of the black-box nodes only (finite differences
render each black-box node ``2P`` more times for its ``P`` controls). Both are
counted in one unit: black-box item renders divided by the graph's black-box
nodes, so one forward render of the graph is 1 and a perturbed render of one
node out of five is 0.2. A graph without black boxes counts forward renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import torch

from ..graph import Graph
from .latent import is_black_box

__all__ = ["RenderBudget"]


class RenderBudget:
    """Counts a fit's graph renders (see the module's description) and says when a limit is reached.

    Use it as a context manager around the fit: inside, every item a black-box
    processor of the graph renders is counted (on whatever runner it uses).

    Args:
        graph: the graph being fitted (``None``: count forward renders only).
        processors: its processors by node type.
        limit: renders allowed (``None``: count only).

    Raises:
        ValueError: ``limit`` is not positive.
    """

    def __init__(self, graph: Graph | None = None, processors: Mapping[str, Any] | None = None,
                 limit: float | None = None) -> None:
        if limit is not None and not limit > 0:
            raise ValueError(f"a render budget must be positive, got {limit!r}")
        self.limit = limit
        self.active = False
        processors = processors or {}
        types = [] if graph is None else [t for t in graph.processor_types() if is_black_box(processors[t])]
        self.black_box_nodes = sum(len(graph.nodes_of_type(t)) for t in types)
        runners = (getattr(processors[t], "runner", None) for t in types)
        self._runners = list({id(r): r for r in runners if callable(getattr(r, "run_items", None))}.values())
        self.items = 0
        self.forward_renders = 0
        self._at_last_step = 0.0

    @property
    def renders(self) -> float:
        """Graph renders so far."""
        if self.black_box_nodes:
            return self.items / self.black_box_nodes
        return float(self.forward_renders)

    def exhausted(self) -> bool:
        """Whether the limit is reached (never without one)."""
        return self.limit is not None and self.renders >= self.limit - 1e-9

    def fraction_spent(self) -> float:
        """The share of the limit rendered so far (0 without a limit)."""
        return 0.0 if self.limit is None else self.renders / self.limit

    def next_step_exceeds(self) -> bool:
        """Whether one more step costing what the last one did (since the previous call) would pass the limit.

        For optimisers whose steps cost many renders (Adam with finite differences: ``1 + 2P`` per node), so
        that a fit stops within its budget instead of one step past it.
        """
        cost, self._at_last_step = self.renders - self._at_last_step, self.renders
        return self.limit is not None and self.renders + cost > self.limit + 1e-9

    def counting(self, render: Callable[[Any], torch.Tensor]) -> Callable[[Any], torch.Tensor]:
        """``render`` that also counts its forward renders (for graphs without black boxes)."""
        def counted(parameters: Any) -> torch.Tensor:
            self.forward_renders += 1
            return render(parameters)
        return counted

    def __enter__(self) -> RenderBudget:
        if self.active:
            raise RuntimeError("this RenderBudget is already counting")
        self.active = True
        for runner in self._runners:
            run_items = runner.run_items

            def counted(processor: Any, items: Any, *args: Any, _run: Any = run_items, **kwargs: Any) -> None:
                self.items += len(items)
                _run(processor, items, *args, **kwargs)

            runner.run_items = counted
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for runner in self._runners:
            del runner.run_items  # the instance attribute; the class's method shows again
        self.active = False
