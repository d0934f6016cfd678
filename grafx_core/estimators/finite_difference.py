"""Finite differences: one or two extra renders per differentiable parameter."""

from __future__ import annotations

from typing import ClassVar

import torch

from ..errors import EstimatorError
from ._rules import GradientRule, Gradients, Saved, cpu_rows, directional_sums
from .base import Estimator, _positive
from .target import RenderJob, RenderTarget

__all__ = ["FiniteDifference"]

MODES = ("central", "forward")


class FiniteDifference(Estimator):
    """Finite-difference VJP of the parameters.

    ``"central"`` renders ``p ± h`` per differentiable parameter (2P renders per
    node, error O(h²)); ``"forward"`` renders ``p + h`` and reuses the forward
    output (P renders, error O(h)). At a range bound the difference turns
    one-sided (``[p - h, p]`` at the top, ``[p, p + h]`` at the bottom); it is
    never a clipped central difference, which would divide by the wrong step.

    The step is ``step`` in the target's parameter units (normalised ``[0, 1]``
    for black boxes; relative to ``max(|p|, 1)`` for wrapped torch modules),
    raised to the target's floor where the effect would round a smaller change
    away (float32 parameters). The difference is divided by the change the
    effect really saw, not by the nominal step.

    Args:
        step: nominal step (default 1e-3).
        mode: ``"central"`` or ``"forward"``.
        signal_samples, signal_step, seed: see :class:`Estimator`.
    """

    kind: ClassVar[str] = "finite-difference"
    default_signal_gradient: ClassVar[str] = "auto"

    def __init__(self, step: float = 1e-3, mode: str = "central", **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        _positive("FiniteDifference", "step", step)
        if step > 0.25:
            raise EstimatorError(f"FiniteDifference: step {step} is too large; expected at most 0.25")
        if mode not in MODES:
            raise EstimatorError(f"FiniteDifference: mode {mode!r} is not one of {MODES}")
        self.step, self.mode = float(step), mode

    def parameter_rule(self, target: RenderTarget) -> GradientRule:
        return _FiniteDifferenceRule(self.step, self.mode)

    def renders_per_node(self, parameters: int) -> int:
        """Extra renders per node for ``parameters`` differentiable parameters, away from bounds."""
        return parameters * (2 if self.mode == "central" else 1)

    def __repr__(self) -> str:
        return f"FiniteDifference(step={self.step}, mode={self.mode!r})"


class _FiniteDifferenceRule(GradientRule):
    def __init__(self, step: float, mode: str) -> None:
        self.step, self.mode = step, mode

    def jobs(self, saved: Saved) -> list[RenderJob]:
        t = saved.target
        p = cpu_rows(saved.params)
        n, count = p.shape
        cols = torch.tensor(t.differentiable_columns(), dtype=torch.long)
        d = len(cols)
        self.cols = cols
        if d == 0:
            self.skip = True
            return []
        self.skip = False
        pd = p[:, cols]
        h = torch.maximum(self.step * t.step_scale(p)[:, cols], t.step_floor(p)[:, cols])
        # Points a < b per (node, column); either may be the centre, whose output is y.
        if self.mode == "central":
            a, b = pd - h, pd + h
            a_centre = torch.zeros_like(pd, dtype=torch.bool)
        else:
            a, b = pd.clone(), pd + h
            a_centre = torch.ones_like(pd, dtype=torch.bool)
        b_centre = torch.zeros_like(a_centre)
        over = b > t.upper
        b, b_centre = torch.where(over, pd, b), over
        a, a_centre = torch.where(over, pd - h, a), a_centre & ~over
        under = a < t.lower
        a, a_centre = torch.where(under, pd, a), a_centre | under
        b = torch.where(under, pd + h, b)
        if bool(((a < t.lower) | (b > t.upper)).any()):
            raise EstimatorError(f"{t.name}: finite-difference step {self.step} does not fit the parameter range")

        grid = torch.arange(d)
        q_centre = t.quantise(p)

        def rows(values: torch.Tensor) -> torch.Tensor:
            r = p.unsqueeze(1).repeat(1, d, 1)
            r[:, grid, cols] = values
            return t.quantise(r.reshape(n * d, count)).reshape(n, d, count)

        q_a, q_b = rows(a), rows(b)
        va = torch.where(a_centre, q_centre[:, cols], q_a[:, grid, cols])
        vb = torch.where(b_centre, q_centre[:, cols], q_b[:, grid, cols])
        self.diff = vb - va
        if bool((self.diff <= 0).any()):
            node, j = (int(i) for i in (self.diff <= 0).nonzero()[0])
            raise EstimatorError(
                f"{t.name}, node row {node}: the finite-difference step for parameter {t.columns[int(cols[j])]!r} "
                f"at {float(pd[node, j]):.6g} is rounded away by the effect; increase the step (now {self.step})"
            )
        self.a_centre, self.b_centre = a_centre, b_centre
        nodes = torch.arange(n).unsqueeze(1).expand(n, d)
        jobs = []
        self.layout = []
        for q, centre in ((q_a, a_centre), (q_b, b_centre)):
            need = ~centre
            self.layout.append(need)
            if bool(need.any()):
                idx = nodes[need]
                jobs.append(RenderJob(saved.signals, q[need], idx, idx, "finite-difference"))
        return jobs

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        p = saved.params
        grad = torch.zeros(p.shape, dtype=torch.float64)
        if self.skip:
            return grad, ()
        n, d = self.diff.shape
        outputs_left = iter(outputs)
        y = saved.y.unsqueeze(1)  # [N, 1, ...]: the centre, broadcast over parameters

        def side(need: torch.Tensor) -> torch.Tensor:
            if not bool(need.any()):
                return y
            out = next(outputs_left)
            if bool(need.all()):
                return out.view(n, d, *out.shape[1:])
            full = y.expand(n, d, *y.shape[2:]).clone()
            full[need.to(full.device)] = out
            return full

        lower, upper = side(self.layout[0]), side(self.layout[1])
        # Difference in place, into whichever side is a fresh render: a new [N, P, C, L] tensor
        # cost about a third of a forward render per parameter (allocation and page faults).
        diff = upper.sub_(lower) if upper is not y else lower.sub_(upper).neg_()
        grad[:, self.cols] = directional_sums(grad_y, diff) / self.diff
        return grad, ()
