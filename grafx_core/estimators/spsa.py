"""Simultaneous perturbation stochastic approximation (SPSA)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from ._rules import GradientRule, Gradients, Saved, cpu_rows, directional_sums, node_rows, rademacher
from .base import Estimator, _positive
from ..errors import EstimatorError
from .target import RenderJob, RenderTarget

__all__ = ["SPSA"]


class SPSA(Estimator):
    """SPSA estimate of the parameters' VJP from ``samples`` random directions.

    Each node draws ``samples`` Rademacher vectors ``delta`` over its
    differentiable parameters and renders ``p ± step * delta`` (2K renders per
    node, all submitted together). The estimate
    ``mean_k <g, y+ - y-> / (2 step) * delta_k`` is unbiased on smooth effects;
    its cosine with the true gradient is about ``sqrt(K / (K + P - 1))`` for
    ``P`` parameters. Near a range bound the centre moves inward by the step, so
    that both points stay in range (a bias of order ``step`` there).

    Draws come from a per-call child of the estimator's seeded generator, never
    from a global RNG.

    Args:
        samples: number of perturbations ``K`` per node (default 4).
        step: perturbation size in the target's parameter units (default 1e-3;
            see :class:`~grafx_core.estimators.FiniteDifference` for the floor).
        signal_samples, signal_step, seed: see :class:`Estimator`;
            ``signal_samples`` defaults to ``samples``.
    """

    kind: ClassVar[str] = "spsa"
    default_signal_gradient: ClassVar[str] = "auto"

    def __init__(self, samples: int = 4, step: float = 1e-3, **options: object) -> None:
        _positive("SPSA", "samples", samples, integer=True)
        _positive("SPSA", "step", step)
        if step > 0.25:
            raise EstimatorError(f"SPSA: step {step} is too large; expected at most 0.25")
        options.setdefault("signal_samples", samples)
        super().__init__(**options)  # type: ignore[arg-type]
        self.samples, self.step = int(samples), float(step)

    def parameter_rule(self, target: RenderTarget) -> GradientRule:
        return _SPSARule(self.samples, self.step, self.generator())

    def __repr__(self) -> str:
        return f"SPSA(samples={self.samples}, step={self.step}, seed={self.seed})"


class _SPSARule(GradientRule):
    def __init__(self, samples: int, step: float, rng: np.random.Generator) -> None:
        self.samples, self.step, self.rng = samples, step, rng

    def jobs(self, saved: Saved) -> list[RenderJob]:
        t = saved.target
        p = cpu_rows(saved.params)
        n, count = p.shape
        k = self.samples
        cols = torch.tensor(t.differentiable_columns(), dtype=torch.long)
        self.cols = cols
        pd = p[:, cols]
        h = torch.maximum(self.step * t.step_scale(p)[:, cols], t.step_floor(p)[:, cols])
        centre = torch.minimum(torch.maximum(pd, t.lower + h), t.upper - h)
        delta = rademacher(self.rng, (n, k, len(cols))).to(torch.float64)
        rows = []
        for sign in (1.0, -1.0):
            r = p.unsqueeze(1).repeat(1, k, 1)
            r[:, :, cols] = centre.unsqueeze(1) + sign * h.unsqueeze(1) * delta
            rows.append(t.quantise(r.reshape(n * k, count)))
        self.diff = (rows[0] - rows[1])[:, cols].reshape(n, k, len(cols))
        if bool((self.diff == 0).any()):
            node, _, j = (int(i) for i in (self.diff == 0).nonzero()[0])
            raise EstimatorError(
                f"{t.name}, node row {node}: the SPSA step for parameter {t.columns[int(cols[j])]!r} "
                f"at {float(pd[node, j]):.6g} is rounded away by the effect; increase the step (now {self.step})"
            )
        nodes = node_rows(n, k)
        return [
            RenderJob(saved.signals, rows[0], nodes, nodes, "spsa"),
            RenderJob(saved.signals, rows[1], nodes, nodes, "spsa"),
        ]

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        n, k, _ = self.diff.shape
        # in place: the renders are this rule's own, and a fresh difference tensor costs page faults
        slope = directional_sums(grad_y, outputs[0].sub_(outputs[1]).view(n, k, *grad_y.shape[1:])).unsqueeze(-1)
        grad = torch.zeros(saved.params.shape, dtype=torch.float64)
        grad[:, self.cols] = (slope / self.diff).mean(1)
        return grad, ()
