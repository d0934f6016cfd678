"""Training a predictor: Adam with clipping, per-step seeds, a progress bar and checkpoints."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checked_file import load_checked, save_checked
from ..errors import NON_FINITE_HINT, NonFiniteLossError, PredictorError
from .._progress import ProgressBar

__all__ = ["PredictorTrainer", "step_generator", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "grafx-core.predictor-checkpoint"
"""The ``format`` tag of a checkpoint written by :meth:`PredictorTrainer.save`."""

StepLoss = Callable[[nn.Module, torch.Generator], torch.Tensor]
"""``loss(model, generator) -> scalar``: draw a batch with ``generator``, predict, render, compare."""


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator for training step ``step`` of a run seeded with ``seed``.

    Each step's generator depends only on ``(seed, step)``, so a run resumed
    from a checkpoint draws the same batches as one that never stopped.
    """
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class PredictorTrainer:
    """Trains a model on a per-step loss with Adam and gradient-norm clipping.

    Args:
        model: the module to train (a :class:`~grafx_core.ParameterPredictor`,
            or a data-parallel wrapper of one).
        loss: ``loss(model, generator) -> scalar``; ``generator`` is
            :func:`step_generator` of the step, the only randomness a loss
            should use for its batch (then resuming is exact).
        learning_rate: Adam's learning rate. Through black boxes whose
            gradients SPSA estimates, a lower one (about a third of what
            autograd takes) did better in ``bench/estimator_table.py``, and
            DeepAFx-ST's SPSA runs needed a tenth; keep clipping on.
        clip_norm: the gradient's total norm is clipped to this (``None``: no clipping).
        seed: the run's seed (see :func:`step_generator`).
        optimiser: an optimiser to use instead of Adam (``learning_rate`` is then ignored).

    Attributes:
        step: optimiser steps taken so far.
        losses: the loss of every step taken.

    Estimators that draw their own random perturbations (SPSA) keep their
    own generators, which checkpoints do not hold: a resumed run through
    them draws different perturbations.
    """

    def __init__(self, model: nn.Module, loss: StepLoss, *, learning_rate: float = 1e-3,
                 clip_norm: float | None = 1.0, seed: int = 0, optimiser: torch.optim.Optimizer | None = None) -> None:
        if clip_norm is not None and not clip_norm > 0:
            raise PredictorError(f"PredictorTrainer: clip_norm must be positive or None, got {clip_norm!r}")
        self.model, self.loss = model, loss
        self.clip_norm, self.seed = clip_norm, int(seed)
        self.optimiser = optimiser if optimiser is not None else torch.optim.Adam(model.parameters(), lr=learning_rate)
        self.step = 0
        self.losses: list[float] = []

    def train_step(self) -> float:
        """Take one optimiser step; returns its loss.

        Raises:
            NonFiniteLossError: the loss is NaN or infinite (the step is not taken).
        """
        self.model.train()
        self.optimiser.zero_grad(set_to_none=True)
        value = self.loss(self.model, step_generator(self.seed, self.step))
        if not torch.isfinite(value):
            raise NonFiniteLossError(f"PredictorTrainer: the loss became {float(value)} at step {self.step}"
                                     f"{NON_FINITE_HINT}")
        value.backward()
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.optimiser.step()
        self.step += 1
        self.losses.append(float(value.detach()))
        return self.losses[-1]

    def fit(self, steps: int, *, progress: bool = True, checkpoint: str | os.PathLike[str] | None = None,
            checkpoint_every: int = 100) -> list[float]:
        """Train until :attr:`step` reaches ``steps`` in all (resuming where a checkpoint stopped).

        Args:
            steps: the total number of steps of the run.
            progress: draw a progress bar with the loss on stderr.
            checkpoint: a file to resume from when it exists, written every
                ``checkpoint_every`` steps and at the end.
            checkpoint_every: steps between checkpoints.

        Returns:
            The losses of the steps taken by this call.
        """
        if checkpoint is not None and Path(checkpoint).exists():
            self.load(checkpoint)
        first = self.step
        bar = ProgressBar(steps, "train") if progress else None
        try:
            while self.step < steps:
                loss = self.train_step()
                if bar is not None:
                    bar.draw(self.step, f"loss {loss:.4g}")
                if checkpoint is not None and (self.step % checkpoint_every == 0 or self.step == steps):
                    self.save(checkpoint)
        finally:
            if bar is not None:
                bar.close()
        return self.losses[first:]

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model and optimiser state, step, losses and seed, and what the
        model was built for (:meth:`ParameterPredictor.built_for <grafx_core.ParameterPredictor.built_for>`)."""
        return {"format": CHECKPOINT_FORMAT, "version": 2, "step": self.step, "seed": self.seed,
                "losses": list(self.losses), "model": self.model.state_dict(),
                "optimiser": self.optimiser.state_dict(), "built_for": _describe(self.model)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint with the size and SHA-256 :meth:`load` checks (through a temporary file, so
        a crash never leaves half of one).

        Raises:
            PredictorError: the file cannot be written.
        """
        save_checked(self.state_dict(), path, CHECKPOINT_FORMAT, PredictorError)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save` into this trainer's model and optimiser.

        Everything is checked before anything is applied: on refusal the model
        and the optimiser are untouched.

        Raises:
            PredictorError: the file is missing, a folder, empty, truncated,
                corrupted (its SHA-256 differs), another kind of file, or holds a
                pickle ``weights_only`` refuses; or it was written for another
                graph (nodes or edges), other parameter ranges, another model,
                another optimiser or another seed. The message names the file.
        """
        name = os.fspath(path)
        data = load_checked(name, CHECKPOINT_FORMAT, "checkpoint", PredictorError)
        self._check(data, name)
        model, optimiser = copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimiser.state_dict())
        try:
            self.model.load_state_dict(data["model"])
            self.optimiser.load_state_dict(data["optimiser"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            self.model.load_state_dict(model)
            self.optimiser.load_state_dict(optimiser)
            raise PredictorError(f"checkpoint {name!r} does not fit this model or optimiser: {exc}") from exc
        self.step, self.losses = int(data["step"]), [float(v) for v in data["losses"]]

    def _check(self, data: Any, name: str) -> None:
        """Refuse a checkpoint that does not belong to this trainer, before anything is applied."""
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT or not {
                "step", "seed", "losses", "model", "optimiser", "built_for"} <= set(data):
            raise PredictorError(f"checkpoint {name!r} is not a checkpoint written by PredictorTrainer.save()")
        step, losses = data["step"], data["losses"]
        if type(step) is not int or step < 0 or not isinstance(losses, list) or len(losses) != step or not all(
                isinstance(v, float) for v in losses):
            raise PredictorError(f"checkpoint {name!r}: its step ({step!r}) and losses (one float per step) "
                                 "do not agree")
        if data["seed"] != self.seed:
            raise PredictorError(f"checkpoint {name!r} was written by a run with seed {data['seed']}, this trainer "
                                 f"has seed {self.seed}; resuming would draw other batches")
        _check_built_for(data["built_for"], _describe(self.model), name)
        _check_tensors(data["model"], self.model.state_dict(), name)


def _describe(model: nn.Module) -> Any:
    """What the model was built for (unwrapping a data-parallel ``module``), or ``None`` when it does not say."""
    inner = getattr(model, "module", model)
    built_for = getattr(inner, "built_for", None)
    return built_for() if callable(built_for) else None


def _check_built_for(saved: Any, mine: Any, name: str) -> None:
    if saved == mine:
        return
    if not isinstance(saved, dict) or not isinstance(mine, dict):
        raise PredictorError(f"checkpoint {name!r} was written for another kind of model than this trainer's")
    if saved.get("graph") != mine.get("graph"):
        raise PredictorError(f"checkpoint {name!r} was written for another graph (its nodes or edges differ: "
                             f"{_difference(saved.get('graph'), mine.get('graph'))}); resuming would train "
                             "weights learnt for other connections")
    theirs = {h.get("parameter"): h for h in saved.get("heads", []) if isinstance(h, dict)}
    for head in mine.get("heads", []):
        other = theirs.get(head["parameter"])
        if other != head:
            raise PredictorError(f"checkpoint {name!r} was written for other settings of {head['parameter']}: "
                                 f"{_summary(other)} there, {_summary(head)} here")
    raise PredictorError(f"checkpoint {name!r} was written for a model with other inputs or parameters "
                         f"({_difference(saved, mine)})")


def _summary(head: Any) -> str:
    if not isinstance(head, dict):
        return "no such parameter"
    return f"range [{head.get('low')}, {head.get('high')}] {head.get('scale')}, {head.get('nodes')} node(s) of " \
           f"shape {head.get('shape')}"


def _difference(saved: Any, mine: Any) -> str:
    if isinstance(saved, dict) and isinstance(mine, dict):
        keys = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        return f"{', '.join(map(str, keys))} differ"
    return "they differ"


def _check_tensors(saved: Any, mine: dict[str, torch.Tensor], name: str) -> None:
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise PredictorError(f"checkpoint {name!r}: its model state is not a mapping of names to tensors")
    missing, extra = sorted(set(mine) - set(saved)), sorted(set(saved) - set(mine))
    if missing or extra:
        raise PredictorError(f"checkpoint {name!r} holds weights of a different model: missing {missing[:5]}, "
                             f"unexpected {extra[:5]}")
    for key, value in mine.items():
        if tuple(saved[key].shape) != tuple(value.shape):
            raise PredictorError(f"checkpoint {name!r} holds weights of a different model: {key} has shape "
                                 f"{list(saved[key].shape)}, this model's {list(value.shape)}")
