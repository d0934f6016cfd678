"""What an estimator differentiates: a batched, gradient-free render function.

An estimator never calls a processor directly. It receives a
:class:`RenderTarget`, which turns rows of parameters and signals into output
rows, and asks it to render every perturbed point it needs in one
:meth:`RenderTarget.render` call. A black box hands that call to its thread
pool; a torch module (:func:`grafx_core.with_estimator`) renders all rows in
one batched call on its device.

Parameters reach a target as a matrix ``[rows, columns]``: one column per
scalar control. For a black box the columns are normalised to ``[0, 1]``; for
a wrapped torch module they are the module's own (flattened) parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["RenderJob", "RenderTarget"]


@dataclass(frozen=True)
class RenderJob:
    """A block of rows to render.

    Attributes:
        signals: one tensor per inlet, each ``[S, channels, samples]``.
        params: ``[M, columns]`` parameter rows, float64 on the CPU (exact; the
            target casts and moves them to what its effect takes).
        index: ``[M]`` long CPU tensor, the ``signals`` row each parameter row is
            rendered with; ``None`` when ``M == S`` and rows pair up one to one.
        nodes: ``[M]`` long CPU tensor, the node row (within the processor call)
            each render belongs to; used in error messages.
        purpose: what the renders are for (``"forward"``, ``"finite-difference"``,
            ``"spsa"``), used in error messages.
    """

    signals: tuple[torch.Tensor, ...]
    params: torch.Tensor
    index: torch.Tensor | None
    nodes: torch.Tensor
    purpose: str

    def __len__(self) -> int:
        return int(self.params.shape[0])

    def signal_rows(self) -> tuple[torch.Tensor, ...]:
        """The signals of every row, ``[M, channels, samples]`` per inlet (copies when indexed)."""
        if self.index is None:
            return self.signals
        return tuple(s[self.index.to(s.device)] for s in self.signals)


class RenderTarget(ABC):
    """A processor seen by an estimator: rows in, output rows out, no autograd.

    Attributes:
        name: the processor's name, for error messages.
        columns: one name per parameter column (``"drive_db"``, ``"taps[3]"``).
        differentiable: per column, whether it gets a gradient estimate.
        lower, upper: bounds every column must stay within (``-inf``/``inf``
            for unbounded columns); finite differences turn one-sided there.
        concurrent: whether :meth:`render` may run on another thread while other
            targets render (a black box on its runner); such calls' backward renders
            are pooled (see :func:`~grafx_core.estimators.backward_pooling`).
    """

    name: str = "processor"
    columns: tuple[str, ...] = ()
    differentiable: tuple[bool, ...] = ()
    lower: float = float("-inf")
    upper: float = float("inf")
    concurrent: bool = False

    @abstractmethod
    def render(self, jobs: Sequence[RenderJob]) -> list[torch.Tensor]:
        """Render all rows of all ``jobs`` together; one ``[M, channels, samples]`` tensor per job.

        Outputs follow the device and dtype of the jobs' signals.
        """

    @abstractmethod
    def keyword_parameters(self, params: torch.Tensor) -> dict[str, Any]:
        """Differentiable map from ``[rows, columns]`` to the processor's keyword parameters.

        Surrogates (straight-through) and proxies receive parameters in this
        form, so their gradients flow back to the columns.
        """

    def quantise(self, params: torch.Tensor) -> torch.Tensor:
        """The float64 values the effect actually sees for ``params`` (``[rows, columns]``).

        Finite differences divide by the difference of quantised values, so a
        step that the effect rounds away is never mistaken for a real change.
        """
        return params.to(torch.float64)

    def step_scale(self, params: torch.Tensor) -> torch.Tensor:
        """Per-entry unit of a relative step (``[rows, columns]``, float64); ones by default."""
        return torch.ones_like(params, dtype=torch.float64)

    def step_floor(self, params: torch.Tensor) -> torch.Tensor:
        """Per-entry smallest step that still changes the effect (``[rows, columns]``, float64)."""
        return torch.zeros_like(params, dtype=torch.float64)

    def distance(self, params: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """How far each entry of ``params`` is from ``reference`` (both ``[rows, columns]``), in units
        where a parameter's whole range is about 1: ``|p - r| / max(|r|, 1)`` by default."""
        return (params.to(torch.float64) - reference.to(torch.float64)).abs() / self.step_scale(reference)

    def random_rows(self, params: torch.Tensor, rng: Any) -> torch.Tensor | None:
        """Rows like ``params`` (``[rows, columns]``) at random points of the parameters' ranges, or ``None``.

        The automatic signal-gradient choice probes there too. ``rng`` is a
        ``numpy.random.Generator``. ``None`` (the default) where the ranges are unknown.
        """
        return None

    @property
    def bounded(self) -> bool:
        """Whether both bounds are finite."""
        return self.lower > float("-inf") and self.upper < float("inf")

    def differentiable_columns(self) -> list[int]:
        """Indices of the columns that get gradient estimates."""
        return [j for j, d in enumerate(self.differentiable) if d]
