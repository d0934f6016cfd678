"""Gradient descent on a console's parameters: Adam, early stopping, the best step kept, Ctrl-C honoured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .latent import LatentParameters
from .progress import LossLog, Progress

__all__ = ["FitResult", "fit"]

StopReason = Literal["completed", "converged", "interrupted"]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        losses: the loss before each step taken, then the loss of the
            parameters :func:`fit` leaves in ``latent`` (the best seen);
            empty when interrupted before the first step ended.
        seconds_per_step: mean wall-clock time of one step (render, loss, backward, update).
        steps: steps taken.
        stopped: ``"completed"`` (every step), ``"converged"`` (early
            stopping) or ``"interrupted"`` (Ctrl-C).
        best_step: the step whose parameters were kept (``steps`` for those after the last update).
        renders: graph renders the fit paid for, when counted (see :class:`~grafx_core.fitting.RenderBudget`).
    """

    losses: list[float]
    seconds_per_step: float
    steps: int
    stopped: StopReason
    best_step: int
    renders: float | None = None

    @property
    def initial_loss(self) -> float:
        """The loss at the start."""
        return self.losses[0]

    @property
    def final_loss(self) -> float:
        """The loss of the parameters kept."""
        return self.losses[-1]


def fit(render: Callable[[Mapping[str, Any]], torch.Tensor], latent: LatentParameters,
        loss: Callable[[torch.Tensor], torch.Tensor], steps: int, learning_rate: float = 0.05,
        progress: Progress | None = None, *, patience: int | None = None, min_improvement: float = 1e-3,
        log: LossLog | None = None, stop: Callable[[], bool] | None = None) -> FitResult:
    """Gradient descent (Adam, learning rate decaying tenfold over the run) on ``loss(render(values))``.

    ``latent`` ends holding the best parameters seen. A ``KeyboardInterrupt``
    (Ctrl-C) during a step ends the fit there, with ``stopped="interrupted"``,
    instead of propagating: the caller decides what to save.

    Args:
        render: parameters in the processors' units -> ``[channels, samples]`` mix.
        latent: the parameters to train.
        loss: the mix -> a scalar.
        steps: the most optimiser steps.
        learning_rate: the initial learning rate in latent units.
        progress: shows step, loss and speed.
        patience: stop early once this many steps in a row have not lowered
            the best loss by a fraction ``min_improvement`` (``None``: never).
        min_improvement: relative improvement that counts, e.g. ``1e-3``.
        log: receives one row per step.
        stop: asked after each step; ``True`` ends the fit there (a render budget spent).

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    optimiser = torch.optim.Adam(latent.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 0.1 ** (k / max(steps, 1)))
    losses: list[float] = []
    best_loss, best_step, best_state, improved_at = float("inf"), 0, None, 0
    stopped: StopReason = "completed"
    start = time.perf_counter()
    try:
        for step in range(steps):
            optimiser.zero_grad(set_to_none=True)
            value = loss(render(latent.values()))
            if not torch.isfinite(value):
                raise FloatingPointError(f"the loss became {value.item()} at step {step}")
            current = value.item()
            if best_state is None or current < best_loss * (1 - min_improvement):
                improved_at = step
            if current < best_loss:
                best_loss, best_step, best_state = current, step, _snapshot(latent)
            losses.append(current)
            if log is not None:
                log.record(step, current, optimiser.param_groups[0]["lr"], time.perf_counter() - start)
            if patience is not None and step - improved_at >= patience:
                stopped = "converged"
                break
            value.backward()
            optimiser.step()
            schedule.step()
            if progress is not None:
                progress.update(step + 1, current, losses[0], (time.perf_counter() - start) / (step + 1))
            if stop is not None and stop():
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    taken = len(losses)
    elapsed = time.perf_counter() - start
    final, kept = best_loss, best_step
    if stopped != "interrupted" and taken == steps:
        with torch.no_grad():
            last = loss(render(latent.values())).item()
        if last <= best_loss:
            final, kept, best_state = last, taken, None
    if best_state is not None:
        latent.load_state_dict(best_state)
    if losses:
        losses.append(final)
    per_step = elapsed / max(taken, 1)
    if progress is not None and losses:
        progress.finish(taken, final, losses[0], per_step)
    return FitResult(losses, per_step, taken, stopped, kept)


def _snapshot(latent: LatentParameters) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in latent.state_dict().items()}
