"""Levenberg-Marquardt on black-box controls with finite-difference Jacobians, Adam on the analytic rest.

Finite differences pay ``P`` renders for the derivative of the mix with
respect to ``P`` black-box controls; Adam keeps only the gradient (one
vector-Jacobian product) of it. Here the whole Jacobian ``J`` of the loss's
residuals (``loss.residuals(mix)``, a vector whose sum of squares stands in for
the loss) is kept, and one step solves the damped Gauss-Newton system

    (JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr

in the controls' normalised space (``[0, 1]``, each control's range), projected
back into it. A step is accepted only if the real loss falls; otherwise λ
grows and the trust radius (the longest step, in normalised units) shrinks, so kinked controls (a compressor's
threshold) get short,
cautious steps and smooth ones long steps. Analytic parameters, whose
gradients autograd gives exactly, take Adam steps in between (with the black
boxes' controls frozen, so their estimators render nothing for them). Once
no step has lowered the loss for a few iterations in a row, the rest of the
run is Adam on everything, black boxes through their gradient estimators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._run import Loss, Render, Run

__all__ = ["gauss_newton", "damped_step"]

_MAX_TRIALS = 4
_MAX_RADIUS = 1.0  # normalised units: the whole range
_MIN_RADIUS = 1e-4
_STALLED = 3  # failed iterations in a row after which the rest of the run is Adam's
_EDGE = 1e-4  # normalised values are kept this far inside [0, 1]: within the bounds' margin, so bounds are reached


def damped_step(jacobian: torch.Tensor, residuals: torch.Tensor, damping: float) -> torch.Tensor:
    """The Levenberg-Marquardt step ``δ`` solving ``(JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr``.

    Args:
        jacobian: ``[residuals, controls]``, the derivative of ``residuals`` with respect to the controls.
        residuals: ``[residuals]`` at the current point.
        damping: ``λ >= 0``; 0 gives the Gauss-Newton step.

    Returns:
        ``[controls]``, in float64.
    """
    j = jacobian.double()
    normal = j.T @ j
    gradient = j.T @ residuals.double()
    scale = torch.diagonal(normal).clamp_min(1e-12 * float(torch.diagonal(normal).max().clamp_min(1e-30)))
    system = normal + damping * torch.diag(scale) + 1e-12 * torch.eye(len(scale), dtype=torch.float64)
    return torch.linalg.lstsq(system, -gradient.unsqueeze(1)).solution.squeeze(1)


class _Controls:
    """The black-box tensors of a latent as one flat vector of normalised values in ``[0, 1]``.

    Steps are taken in the normalised space, not the raw one the latent holds: a long raw step can
    park a control deep in the sigmoid's flat tail, where a finite difference no longer moves it
    (float32 controls) and it never comes back.
    """

    def __init__(self, tensors: list[torch.nn.Parameter]) -> None:
        self.tensors = tensors
        self.count = sum(t.numel() for t in tensors)

    def get(self) -> torch.Tensor:
        return torch.sigmoid(torch.cat([t.detach().reshape(-1) for t in self.tensors]).double())

    def set(self, vector: torch.Tensor) -> None:
        raw = torch.logit(vector.clamp(_EDGE, 1 - _EDGE))
        offset = 0
        with torch.no_grad():
            for t in self.tensors:
                t.copy_(raw[offset:offset + t.numel()].reshape(t.shape).to(t.dtype))
                offset += t.numel()


def gauss_newton(run: Run, render: Render, loss: Loss, learning_rate: float, options: Mapping[str, Any]) -> None:
    """Run the hybrid (see the module's description) until ``run`` is done.

    Raises:
        ValueError: the latent parameters hold no black-box controls.
    """
    parameters, flags = list(run.latent.parameters()), run.latent.black_box_flags()
    controls = _Controls([p for p, black in zip(parameters, flags) if black])
    analytic = [p for p, black in zip(parameters, flags) if not black]
    if not controls.count:
        raise ValueError("--optimizer gauss-newton steps black-box controls, and this graph has none: use adam")
    step = float(options.get("fd_step", 0.005))
    adam_steps = int(options.get("adam_steps", controls.count)) if analytic else 0
    adam = torch.optim.Adam(analytic, lr=learning_rate) if analytic else None
    damping, radius, stalled = 1e-2, 0.25, 0
    centre: tuple[torch.Tensor, float, torch.Tensor] | None = None  # residuals, loss and mix here, while valid
    while not run.done():
        if adam is not None and adam_steps:
            _adam_steps(run, render, loss, adam, controls, adam_steps, learning_rate)
            centre = None
        if centre is None:
            centre = _residuals(run, render, loss)
        run.record(centre[1], run.vector(), damping)
        if run.done() or (run.budget.limit is not None
                          and run.budget.limit - run.budget.renders < controls.count + 1):
            break
        x = controls.get()
        jacobian = _jacobian(run, render, loss, controls, x, centre[0], centre[2], step)
        accepted = False
        for _ in range(_MAX_TRIALS):
            delta = damped_step(jacobian, centre[0], damping)
            length = float(delta.norm())
            if length > radius:
                delta = delta * (radius / length)
            controls.set((x + delta).clamp(_EDGE, 1 - _EDGE))  # a bound-constrained step: projected into range
            trial = _residuals(run, render, loss)
            if trial[1] < centre[1]:
                centre, accepted = trial, True
                damping, radius = max(damping / 3, 1e-7), min(max(radius, 2 * min(length, radius)), _MAX_RADIUS)
                break
            damping, radius = damping * 4, max(radius / 2, _MIN_RADIUS)
            if run.budget.exhausted():
                break
        if not accepted:
            controls.set(x)
        stalled = 0 if accepted else stalled + 1
        if stalled >= _STALLED:
            _adam_to_the_end(run, render, loss, learning_rate)
            centre = None
    if centre is not None and (run.best_vector is None or centre[1] < run.best_loss):
        run.record(centre[1], run.vector(), damping)


def _residuals(run: Run, render: Render, loss: Loss,
               centre: torch.Tensor | None = None) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Residuals (weighted at ``centre``, default: here), loss and mix at the current parameters."""
    with torch.no_grad():
        mix = render(run.latent.values())
        value = float(loss(mix))
        return loss.residuals(mix, centre).detach(), value, mix  # type: ignore[attr-defined]


def _jacobian(run: Run, render: Render, loss: Loss, controls: _Controls, x: torch.Tensor, residuals: torch.Tensor,
              centre: torch.Tensor, step: float) -> torch.Tensor:
    """Forward differences (backward ones at the top of the range): one render per control."""
    columns = torch.empty(residuals.numel(), controls.count, dtype=residuals.dtype)
    for j in range(controls.count):
        moved = x.clone()
        signed = step if x[j] + step <= 1 - _EDGE else -step
        moved[j] += signed
        controls.set(moved)
        columns[:, j] = (_residuals(run, render, loss, centre)[0] - residuals) / signed
    controls.set(x)
    return columns


def _adam_to_the_end(run: Run, render: Render, loss: Loss, learning_rate: float) -> None:
    """Adam on every parameter (black boxes through their estimators) for the rest of the run.

    Where Levenberg-Marquardt stalls (no step lowers the loss: a local minimum of its model, or a
    control whose effect switches off, such as a compressor threshold above the signal), Adam's
    momentum has been measured to keep going.
    """
    parameters = list(run.latent.parameters())
    adam = torch.optim.Adam(parameters, lr=learning_rate)
    limit = run.budget.limit
    run.budget.next_step_exceeds()  # starts the measure of a step's cost here
    while not run.done():
        fraction = run.budget.renders / limit if limit else len(run.losses) / max(run.steps, 1)
        adam.param_groups[0]["lr"] = learning_rate * 0.1 ** min(fraction, 1.0)
        adam.zero_grad(set_to_none=True)
        before = run.vector()
        value = loss(render(run.latent.values()))
        run.record(float(value.detach()), before, adam.param_groups[0]["lr"])
        if run.done() or run.budget.next_step_exceeds():
            break
        value.backward()
        adam.step()


def _adam_steps(run: Run, render: Render, loss: Loss, adam: torch.optim.Optimizer, controls: _Controls, steps: int,
                learning_rate: float) -> None:
    limit = run.budget.limit
    fraction = run.budget.renders / limit if limit else len(run.losses) / max(run.steps, 1)
    for group in adam.param_groups:
        group["lr"] = learning_rate * 0.1 ** min(fraction, 1.0)  # tenfold decay over the run, as Adam's fit
    for t in controls.tensors:
        t.requires_grad_(False)
    try:
        for _ in range(steps):
            if run.budget.exhausted():
                break
            adam.zero_grad(set_to_none=True)
            value = loss(render(run.latent.values()))
            if not torch.isfinite(value):
                raise FloatingPointError(f"the loss became {value.item()} in an Adam step of the analytic parameters")
            value.backward()
            adam.step()
    finally:
        for t in controls.tensors:
            t.requires_grad_(True)
