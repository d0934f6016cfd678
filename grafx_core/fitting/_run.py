"""The bookkeeping the non-Adam fit backends share: losses, the best point, log, progress, stopping."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..errors import NON_FINITE_HINT, NonFiniteLossError
from .latent import LatentParameters
from .loop import FitResult, StopReason
from .progress import LossLog, Progress
from .renders import RenderBudget

__all__ = ["Run", "Render", "Loss"]

Render = Callable[[Mapping[str, Any]], torch.Tensor]
Loss = Callable[[torch.Tensor], torch.Tensor]


class Run:
    """The bookkeeping every non-Adam backend shares: losses, best state, log, progress, stopping.

    A backend calls :meth:`record` once per step with the loss of the point the
    step starts from (or of the candidate), and stops when :meth:`done` says so.
    :func:`~grafx_core.fitting.optimise` catches ``KeyboardInterrupt`` around
    the backend and then calls :meth:`result`.
    """

    def __init__(self, latent: LatentParameters, steps: int, progress: Progress | None, log: LossLog | None,
                 budget: RenderBudget, patience: int | None, min_improvement: float,
                 seconds: float | None = None) -> None:
        self.latent, self.steps, self.progress, self.log, self.budget = latent, steps, progress, log, budget
        self.patience, self.min_improvement, self.seconds = patience, min_improvement, seconds
        self.losses: list[float] = []
        self.best_loss, self.best_step, self.best_vector = float("inf"), 0, None
        self.improved_at = 0
        self.stopped: StopReason = "completed"
        self.start = time.perf_counter()
        self.initial = self.vector()

    def vector(self) -> torch.Tensor:
        """The latent parameters as one flat vector (detached)."""
        return parameters_to_vector(self.latent.parameters()).detach().clone()

    def load(self, vector: torch.Tensor) -> None:
        """Set the latent parameters from a flat vector."""
        with torch.no_grad():
            vector_to_parameters(vector.to(self.vector().dtype), self.latent.parameters())

    def record(self, loss: float, vector: torch.Tensor, rate: float = float("nan")) -> None:
        """One step taken from (or at) ``vector``, whose loss is ``loss``.

        Raises:
            NonFiniteLossError: ``loss`` is NaN or infinite.
        """
        step = len(self.losses)
        if not np.isfinite(loss):
            raise NonFiniteLossError(f"the loss became {loss} at step {step}{NON_FINITE_HINT}")
        if self.best_vector is None or loss < self.best_loss * (1 - self.min_improvement):
            self.improved_at = step
        if loss < self.best_loss:
            self.best_loss, self.best_step, self.best_vector = loss, step, vector.detach().clone()
        self.losses.append(loss)
        elapsed = time.perf_counter() - self.start
        if self.log is not None:
            self.log.record(step, loss, rate, elapsed)
        if self.patience is not None and step - self.improved_at >= self.patience:
            self.stopped = "converged"
        if self.progress is not None:
            self.progress.update(step + 1, loss, self.losses[0], elapsed / (step + 1))

    def done(self) -> bool:
        """Whether the steps, the budget, the patience or the time budget are used up."""
        if self.seconds is not None and self.stopped == "completed" and time.perf_counter() - self.start >= self.seconds:
            self.stopped = "time"
        return len(self.losses) >= self.steps or self.budget.exhausted() or self.stopped in ("converged", "time")

    def result(self) -> FitResult:
        """Leave the best parameters in ``latent`` and say what happened."""
        taken = len(self.losses)
        per_step = (time.perf_counter() - self.start) / max(taken, 1)
        self.load(self.initial if self.best_vector is None else self.best_vector)
        losses = [*self.losses, self.best_loss] if self.losses else []
        if self.progress is not None and losses:
            self.progress.finish(taken, self.best_loss, losses[0], per_step)
        return FitResult(losses, per_step, taken, self.stopped, self.best_step)

    def evaluate(self, render: Render, loss: Callable[[torch.Tensor], torch.Tensor], vector: torch.Tensor) -> float:
        """The loss at ``vector`` (rendered without gradients); the latent parameters are left there."""
        self.load(vector)
        with torch.no_grad():
            return float(loss(render(self.latent.values())))
