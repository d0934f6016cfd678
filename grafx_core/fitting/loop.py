"""Gradient descent on a console's parameters: Adam, early stopping, the best step kept, Ctrl-C honoured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..errors import NON_FINITE_HINT, NonFiniteLossError
from .latent import LatentParameters
from .progress import LossLog, Progress

__all__ = ["FitResult", "fit"]

StopReason = Literal["completed", "converged", "time", "interrupted"]


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
            stopping), ``"time"`` (the time budget was spent) or ``"interrupted"`` (Ctrl-C).
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
        log: LossLog | None = None, stop: Callable[[], bool] | None = None,
        seconds: float | None = None, spent: Callable[[], float] | None = None) -> FitResult:
    """Gradient descent (Adam, learning rate decaying tenfold over the run) on ``loss(render(values))``.

    ``latent`` ends holding the best parameters seen. A ``KeyboardInterrupt``
    (Ctrl-C) during a step ends the fit there, with ``stopped="interrupted"``,
    instead of propagating: the caller decides what to save. With a time
    budget the run is whichever ends first, ``steps`` or ``seconds``, and the
    learning rate decays with the larger of the two fractions spent.

    Args:
        render: parameters in the processors' units -> ``[channels, samples]`` mix.
        latent: the parameters to train.
        loss: the mix -> a scalar.
        steps: the most optimiser steps.
        learning_rate: the initial learning rate in latent units.
        progress: shows step, loss and speed.
        patience: stop early once the best loss has fallen by less than a
            fraction ``min_improvement`` over the last ``patience`` steps
            (``None``: never). A loss still falling slowly but steadily is not stopped.
        min_improvement: relative improvement over ``patience`` steps that counts, e.g. ``1e-3``.
        log: receives one row per step.
        seconds: a wall-clock budget for the steps (``None``: none); the fit then
            ends with ``stopped="time"`` when it is spent.
        stop: asked after each step; ``True`` ends the fit there (a render budget spent).
        spent: the fraction of another budget used so far (a render budget's), asked before each step:
            the learning rate decays with it too, so that a run ended by that budget still anneals.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    optimiser = torch.optim.Adam(latent.parameters(), lr=learning_rate)
    base_rates = [group["lr"] for group in optimiser.param_groups]
    losses: list[float] = []
    bests: list[float] = []  # the best loss after each step, for early stopping
    best_loss, best_step, best_state = float("inf"), 0, None
    stopped: StopReason = "completed"
    budget_spent = False  # a render budget's last render is spent: the final update stays unevaluated
    start = time.perf_counter()
    try:
        for step in range(steps):
            fraction = _spent(step, steps, time.perf_counter() - start, seconds)
            if fraction >= 1.0:
                stopped = "time"
                break
            if spent is not None:
                fraction = max(fraction, min(spent(), 1.0))
            for group, rate in zip(optimiser.param_groups, base_rates):
                group["lr"] = rate * _DECAY**fraction
            optimiser.zero_grad(set_to_none=True)
            value = loss(render(latent.values()))
            if not torch.isfinite(value):
                raise NonFiniteLossError(f"the loss became {value.item()} at step {step}"
                                         f"{NON_FINITE_HINT}")
            current = value.item()
            if current < best_loss:
                best_loss, best_step, best_state = current, step, _snapshot(latent)
            losses.append(current)
            bests.append(best_loss)
            if log is not None:
                log.record(step, current, optimiser.param_groups[0]["lr"], time.perf_counter() - start)
            if patience is not None and step >= patience and bests[-1] > bests[-1 - patience] * (1 - min_improvement):
                stopped = "converged"
                break
            value.backward()
            optimiser.step()
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress.update(step + 1, current, losses[0], elapsed / (step + 1), _time_left(elapsed, seconds))
            if stop is not None and stop():
                budget_spent = True
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    taken = len(losses)
    elapsed = time.perf_counter() - start
    final, kept = best_loss, best_step
    if stopped in ("completed", "time") and taken > 0 and not budget_spent:  # the last update is not evaluated yet
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


_DECAY = 0.1  # the learning rate falls tenfold over the run (steps or seconds)


def _spent(step: int, steps: int, elapsed: float, seconds: float | None) -> float:
    """The fraction of the run behind us: of its steps, or of its time budget if that is further along."""
    fraction = step / max(steps, 1)
    return max(fraction, elapsed / seconds) if seconds else fraction


def _time_left(elapsed: float, seconds: float | None) -> float | None:
    return None if seconds is None else max(seconds - elapsed, 0.0)


def _snapshot(latent: LatentParameters) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in latent.state_dict().items()}
