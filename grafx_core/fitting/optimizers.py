"""Fit backends: Adam, a Gauss-Newton hybrid, and gradient-free optimisers (CMA-ES, Nevergrad's NGOpt, random search).

Every backend moves the same latent parameters
(:class:`~grafx_core.fitting.LatentParameters`) under the same loss, and
returns the same :class:`~grafx_core.fitting.FitResult`: the best parameters
seen are left in ``latent``, Ctrl-C ends the fit with ``stopped="interrupted"``,
the progress bar and the loss log get one row per step. What a step is depends
on the backend (:data:`OPTIMIZERS`): an Adam step, a Gauss-Newton iteration, or
one candidate a gradient-free optimiser asked for. A
:class:`~grafx_core.fitting.RenderBudget` counts graph renders in one unit for
all of them and can end any fit at a number of renders.

CMA-ES needs ``pycma`` and NGOpt ``nevergrad``: ``pip install grafx-core[optimizers]``.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .._optional import require
from ._run import Loss, Render, Run
from .gauss_newton import gauss_newton
from .latent import LatentParameters
from .loop import FitResult, fit
from .progress import LossLog, Progress
from .renders import RenderBudget

__all__ = ["OPTIMIZERS", "optimise"]

OPTIMIZERS: dict[str, str] = {
    "adam": "Adam on every parameter, black boxes through their gradient estimators; a step is one update",
    "gauss-newton": "Levenberg-Marquardt on the black-box controls (finite-difference Jacobians of the loss's "
                    "residuals, corrected by every render), a compass search where it stalls, and Adam on the "
                    "analytic parameters; a step is one Levenberg-Marquardt iteration or compass sweep",
    "hybrid": "CMA-ES (pycma) on the black-box controls for the first part of the renders (option global_share, "
              "default 0.3 of the render budget, or of the steps without one), then gauss-newton from the best "
              "point; a step is a candidate, then as gauss-newton's",
    "cma-es": "CMA-ES (pycma) on every latent parameter; a step is one candidate",
    "ngopt": "Nevergrad's NGOpt on every latent parameter; a step is one candidate",
    "random": "random search (black-box controls uniform in their ranges, the others around the start); "
              "a step is one candidate",
}
"""The backends of :func:`optimise` (``grafx-core fit --optimizer``), with what one step is."""

def optimise(render: Render, latent: LatentParameters, loss: Loss, steps: int,
             optimizer: str = "adam", *, learning_rate: float = 0.05, progress: Progress | None = None,
             patience: int | None = None, min_improvement: float = 1e-3, log: LossLog | None = None,
             budget: RenderBudget | None = None, seed: int = 0, options: Mapping[str, Any] | None = None,
             seconds: float | None = None) -> FitResult:
    """Fit ``latent`` to lower ``loss(render(values))`` with the backend ``optimizer``.

    Args:
        render: parameters in the processors' units -> ``[channels, samples]`` mix.
        latent: the parameters to fit; left holding the best seen.
        loss: the mix -> a scalar; ``"gauss-newton"`` also needs its ``residuals(mix)`` method
            (:class:`~grafx_core.fitting.SpectralLoss` has one).
        steps: the most steps (see :data:`OPTIMIZERS` for what a step is).
        optimizer: a key of :data:`OPTIMIZERS`.
        learning_rate: Adam's initial learning rate (Adam and the analytic part of ``"gauss-newton"``).
        progress, log: see :func:`~grafx_core.fitting.fit`.
        patience, min_improvement: early stopping, counted in steps (for the gradient-free optimisers a step
            is one candidate: they stop once ``patience`` candidates in a row found nothing better than
            the best by ``min_improvement``).
        budget: counts renders, and ends the fit once its limit is reached; entered here if it is not yet.
        seed: seeds the stochastic optimisers.
        seconds: a wall-clock budget for the steps (see :func:`~grafx_core.fitting.fit`); every backend
            then ends with ``stopped="time"`` once it is spent.
        options: backend options: ``sigma`` (the gradient-free optimisers' initial spread in latent
            units, default 0.5), ``popsize`` (CMA-ES), ``fd_step`` (Gauss-Newton's finite-difference
            step in normalised units, default 0.005), ``adam_steps`` (Adam steps of the analytic parameters per
            Gauss-Newton iteration, default: the black-box control count), ``starts`` (points of the black-box
            controls Gauss-Newton screens before it starts, the start included; default ``2P + 1`` under a
            render budget that affords them, else 1: none; the hybrid's Gauss-Newton phase takes 1, CMA-ES
            having searched globally), ``scan`` (Gauss-Newton samples every control's loss profile once, at its
            first stall far above the fit, and searches the control with several valleys finely; default true),
            ``stretch`` (Gauss-Newton's next step starts as long, in Gauss-Newton steps, as its last
            extrapolation found best; default true; false: every step starts at one),
            ``bands`` (Gauss-Newton scans each band's frequency jointly with its node's other controls when the
            fit stalls far above its first loss; default true), ``rough`` (Gauss-Newton's scan also starts when
            the fit crawls, the rough control it found is searched again when the fit stalls, and a cusp it kept
            leaves the Jacobian; default true), ``nodes`` (Gauss-Newton searches each node's controls jointly
            when a stall outlasts the band scans; default true), ``remeasure`` (Gauss-Newton measures a
            Broyden-updated Jacobian again when its accepted step lowered the loss by less than 0.1 %, instead of
            counting that step towards the stall that starts the compass search; default false).

    Raises:
        ValueError: an unknown optimizer or option, or a loss without residuals for ``"gauss-newton"``.
        OptionalDependencyError: pycma or nevergrad is missing.
        NonFiniteLossError: the loss became NaN or infinite.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
    options = dict(options or {})
    unknown = sorted(set(options) - {"sigma", "popsize", "fd_step", "adam_steps", "global_share",
                                           "starts", "scan", "bands", "stretch", "rough", "nodes",
                                           "remeasure"})
    if unknown:
        raise ValueError(f"unknown optimizer options {unknown}; expected sigma, popsize, fd_step, adam_steps, "
                         "global_share, starts, scan, bands, stretch, rough, nodes or remeasure")
    module = {"cma-es": ("cma", "CMA-ES"), "ngopt": ("nevergrad", "NGOpt"), "hybrid": ("cma", "CMA-ES")}.get(optimizer)
    if module is not None:
        require(module[0], "optimizers", f"--optimizer {optimizer} ({module[1]})")
    if optimizer in ("gauss-newton", "hybrid") and not callable(getattr(loss, "residuals", None)):
        raise ValueError(f"--optimizer {optimizer} needs a loss with a residuals(mix) method, such as SpectralLoss; "
                         f"{type(loss).__name__} has none")
    budget = RenderBudget() if budget is None else budget
    counted = budget.counting(render)
    with nullcontext() if budget.active else budget:
        if optimizer == "adam":
            result = fit(counted, latent, loss, steps, learning_rate, progress, patience=patience,
                         min_improvement=min_improvement, log=log, stop=budget.next_step_exceeds, seconds=seconds,
                         spent=budget.fraction_spent)
        else:
            run = Run(latent, steps, progress, log, budget, patience, min_improvement, seconds)
            try:
                if optimizer == "gauss-newton":
                    gauss_newton(run, counted, loss, learning_rate, options, seed)
                elif optimizer == "hybrid":
                    _hybrid(run, counted, loss, learning_rate, seed, options)
                else:
                    _gradient_free(optimizer, run, counted, loss, seed, options)
            except KeyboardInterrupt:
                run.stopped = "interrupted"
            result = run.result()
    result.renders = budget.renders
    return result


def _gradient_free(optimizer: str, run: Run, render: Render, loss: Loss,
                   seed: int, options: Mapping[str, Any]) -> None:
    x0 = run.vector()
    sigma = float(options.get("sigma", 0.5))
    run.record(run.evaluate(render, loss, x0), x0)
    with warnings.catch_warnings():
        # Their advice about their own settings (pycma's InjectionWarning when Nevergrad drives it, Nevergrad's
        # budget hints) is not the user's concern, and would be an error under filterwarnings=error.
        warnings.filterwarnings("ignore", module=r"(cma|nevergrad)(\.|$)")
        if optimizer == "cma-es":
            _cma(run, render, loss, x0, sigma, seed, options.get("popsize"), _free(run))
        elif optimizer == "ngopt":
            _ngopt(run, render, loss, x0, sigma, seed)
        else:
            _random(run, render, loss, x0, seed)


def _hybrid(run: Run, render: Render, loss: Loss, learning_rate: float, seed: int,
            options: Mapping[str, Any]) -> None:
    """CMA-ES on the black-box controls (the rest held at the start) for a share of the renders, then
    Gauss-Newton from the best point: a global search where the loss has local minima, then the fast local
    convergence of Levenberg-Marquardt."""
    share = float(options.get("global_share", 0.3))
    if not 0.0 <= share < 1.0:
        raise ValueError(f"global_share must be in [0, 1), got {share}")
    limit, steps = run.budget.limit, run.steps
    black_box = torch.cat([torch.full((p.numel(),), flag) for p, flag in
                           zip(run.latent.parameters(), run.latent.black_box_flags())]) & _free(run)
    x0 = run.vector()
    run.record(run.evaluate(render, loss, x0), x0)
    if share > 0 and bool(black_box.any()):
        # The global phase ends at its share of the render budget, or without one, of the steps.
        if limit is not None:
            run.budget.limit = run.budget.renders + share * limit
        else:
            run.steps = max(int(share * steps), 2)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=r"cma(\.|$)")
                _cma(run, render, loss, x0, float(options.get("sigma", 0.5)), seed, options.get("popsize"), black_box)
        finally:
            run.budget.limit, run.steps = limit, steps
        run.load(run.best_vector if run.best_vector is not None else x0)
    if not run.done():
        gauss_newton(run, render, loss, learning_rate, {"starts": 1, **options}, seed)  # CMA-ES did the global part


def _free(run: Run) -> torch.Tensor:
    """Per entry of the latent vector: whether it may move (parameters frozen by ``LatentParameters.freeze``
    may not)."""
    return torch.cat([torch.full((p.numel(),), p.requires_grad) for p in run.latent.parameters()])


def _candidate(run: Run, render: Render, loss: Loss, x: np.ndarray,
               dtype: torch.dtype, base: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> float:
    vector = torch.as_tensor(np.asarray(x, dtype=np.float64)).to(dtype)
    if base is not None and mask is not None:  # a candidate for the masked entries only
        vector = base.clone().masked_scatter(mask, vector)
    value = run.evaluate(render, loss, vector)
    run.record(value, vector)
    return value


def _cma(run: Run, render: Render, loss: Loss, x0: torch.Tensor, sigma: float,
         seed: int, popsize: int | None, mask: torch.Tensor | None = None) -> None:
    """CMA-ES on ``x0``, or on its entries where ``mask`` is true (the others held)."""
    import cma

    settings: dict[str, Any] = {"seed": seed + 1, "verbose": -9}  # pycma takes seed 0 as "random"
    if popsize is not None:
        settings["popsize"] = int(popsize)
    start = x0 if mask is None else x0[mask]
    strategy = cma.CMAEvolutionStrategy(start.double().numpy(), sigma, settings)
    while not run.done():
        candidates = strategy.ask()
        values = []
        for x in candidates:
            if run.done():
                return  # a partial generation cannot be told; its candidates are recorded
            values.append(_candidate(run, render, loss, x, x0.dtype, x0, mask))
        strategy.tell(candidates, values)


def _ngopt(run: Run, render: Render, loss: Loss, x0: torch.Tensor, sigma: float,
           seed: int) -> None:
    import nevergrad as ng

    budget = run.steps - 1
    if run.budget.limit is not None:
        budget = min(budget, int(run.budget.limit - run.budget.renders))
    free = _free(run)
    optimiser = _ng_optimiser(ng, "NGOpt", x0[free].double().numpy(), sigma, seed, max(budget, 1))
    while not run.done():
        try:
            candidate = optimiser.ask()
        except (TypeError, ValueError, np.linalg.LinAlgError):
            # Nevergrad 1.x NGOpt can fail inside its metamodel on some problems: go on with plain
            # CMA from the best point so far rather than lose the run.
            best = run.best_vector if run.best_vector is not None else x0
            optimiser = _ng_optimiser(ng, "CMA", best[free].double().numpy(), sigma, seed,
                                      max(budget - len(run.losses), 1))
            continue
        value = _candidate(run, render, loss, candidate.value, x0.dtype, x0, free)
        try:
            optimiser.tell(candidate, value)
        except (TypeError, ValueError, np.linalg.LinAlgError):
            best = run.best_vector if run.best_vector is not None else x0
            optimiser = _ng_optimiser(ng, "CMA", best[free].double().numpy(), sigma, seed,
                                      max(budget - len(run.losses), 1))


def _ng_optimiser(ng: Any, name: str, x0: np.ndarray, sigma: float, seed: int, budget: int) -> Any:
    parametrization = ng.p.Array(init=x0).set_mutation(sigma=sigma)
    parametrization.random_state = np.random.RandomState(seed)
    return ng.optimizers.registry[name](parametrization=parametrization, budget=budget, num_workers=1)


def _random(run: Run, render: Render, loss: Loss, x0: torch.Tensor,
            seed: int) -> None:
    """Black-box controls uniform over their ranges (raw = logit of a uniform draw), the others
    Gaussian around the start with one latent unit of spread."""
    generator = torch.Generator().manual_seed(seed)
    black_box = torch.cat([torch.full((p.numel(),), flag) for p, flag in
                           zip(run.latent.parameters(), run.latent.black_box_flags())])
    while not run.done():
        u = torch.rand(x0.shape, generator=generator, dtype=torch.float64).clamp(1e-4, 1 - 1e-4)
        gauss = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        x = torch.where(black_box, torch.logit(u), x0.double() + gauss)
        x = torch.where(_free(run), x, x0.double())  # frozen parameters stay where they are
        _candidate(run, render, loss, x.numpy(), x0.dtype)
