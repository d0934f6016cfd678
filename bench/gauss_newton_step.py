"""Per-trial-step cost of gauss-newton's linear algebra: the old functions against the cached model.

Each trial step of ``--optimizer gauss-newton`` corrects its Jacobian with the render it just made (a
Broyden update) and solves the damped normal equations for the next step. Up to the fifth round that
was ``broyden_update`` on a float32 ``[residuals, controls]`` Jacobian and ``damped_step``, which copied
it to float64 and formed ``JᵀJ`` afresh, on every trial: on the console's 1,071,660 × 17 Jacobian
about 250 ms a trial, several times the render. Now the Jacobian is kept as ``[controls, residuals]``
in float64 (``grafx_core.fitting._linear.LinearModel``) with ``JᵀJ`` and ``Jᵀr`` cached and updated by
the Broyden term; only an accepted step, which reweights the rows, forms ``JᵀJ`` again.

Timed side by side (interleaved, best of ``--repeats``), on a random Jacobian of ``--rows`` residuals ×
``--controls`` controls whose columns differ in scale by 10⁴ (some controls barely heard):

- a failed trial: Broyden update, then the step at the next damping;
- an accepted trial: Broyden update, the rows' reweighting, then the next step.

Then the accuracy: over a sequence of trial steps (three failed, one accepted, repeated), the relative
difference ``|δ_new - δ_old| / |δ_old|`` and each one's against a float64 reference (the textbook
Broyden formula on a float64 Jacobian, the damped system solved by ``torch.linalg.lstsq`` on the
augmented least-squares problem).

Run: ``python bench/gauss_newton_step.py`` (200,000 rows: seconds), ``--rows 1071660`` (the console).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best  # noqa: E402

from grafx_core.fitting._linear import LinearModel  # noqa: E402


def old_damped_step(jacobian: torch.Tensor, residuals: torch.Tensor, damping: float,
                    floor: float = 1e-12) -> torch.Tensor:
    """The fifth round's ``damped_step`` (``jacobian`` ``[residuals, controls]``)."""
    j = jacobian.double()
    normal = j.T @ j
    gradient = j.T @ residuals.double()
    scale = torch.diagonal(normal).clamp_min(floor * float(torch.diagonal(normal).max().clamp_min(1e-30)))
    system = normal + damping * torch.diag(scale) + 1e-12 * torch.eye(len(scale), dtype=torch.float64)
    return torch.linalg.lstsq(system, -gradient.unsqueeze(1)).solution.squeeze(1)


def old_broyden_update(jacobian: torch.Tensor, step: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """The fifth round's ``broyden_update``."""
    length = float(step.double().square().sum())
    if length == 0.0:
        return jacobian
    miss = change.to(jacobian.dtype) - jacobian @ step.to(jacobian.dtype)
    return jacobian + torch.outer(miss, step.to(jacobian.dtype)) / length


def reference_step(jacobian: torch.Tensor, residuals: torch.Tensor, damping: float) -> torch.Tensor:
    """``lstsq`` on ``[J; sqrt(λ diag(JᵀJ))] δ = [-r; 0]`` in float64."""
    j, r = jacobian.double(), residuals.double()
    scale = (damping * j.square().sum(0)).sqrt()
    augmented = torch.cat([j, torch.diag(scale)])
    right = torch.cat([-r, torch.zeros(j.shape[1], dtype=torch.float64)])
    return torch.linalg.lstsq(augmented, right.unsqueeze(1), driver="gelsd").solution.squeeze(1)


def problem(rows: int, controls: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-2, 2, controls)
    mixing = torch.eye(controls) + 0.3 * torch.randn(controls, controls, generator=generator)
    jacobian = (torch.randn(rows, controls, generator=generator) @ mixing) * scales
    residuals = torch.randn(rows, generator=generator)
    return jacobian.float(), residuals.float(), generator


def timings(rows: int, controls: int, repeats: int) -> None:
    jacobian, residuals, generator = problem(rows, controls, 0)
    step = 0.01 * torch.randn(controls, generator=generator, dtype=torch.float64)
    change = jacobian @ step.float() + 1e-3 * torch.randn(rows, generator=generator)
    weights = 1 + 0.01 * torch.rand(rows, generator=generator)
    model = LinearModel(jacobian.T, residuals)
    model.step(1e-2)

    def old_failed() -> None:
        updated = old_broyden_update(jacobian, step, change)
        old_damped_step(updated, residuals, 4e-2)

    def new_failed() -> None:
        model.broyden(step, change)
        model.step(4e-2)

    def old_accepted() -> None:
        updated = old_broyden_update(jacobian, step, change) * weights.unsqueeze(1)
        old_damped_step(updated, residuals, 3e-3)

    def new_accepted() -> None:
        model.broyden(step, change)
        model.recentre(weights, residuals)
        model.step(3e-3)

    def old_broyden() -> None:
        old_broyden_update(jacobian, step, change)

    def new_broyden() -> None:
        model.broyden(step, change)

    def old_step() -> None:
        old_damped_step(jacobian, residuals, 1e-2)

    def new_step() -> None:
        model.step(1e-2)

    pairs = {"failed trial (update + step)": (old_failed, new_failed),
             "accepted trial (update + reweight + step)": (old_accepted, new_accepted),
             "Broyden update alone": (old_broyden, new_broyden),
             "step alone, cached JᵀJ": (old_step, new_step)}
    print(f"{rows:,} residuals x {controls} controls, {torch.get_num_threads()} threads, best of {repeats}")
    print(f"{'':44s} {'old ms':>9s} {'new ms':>9s} {'old/new':>8s}")
    for name, (old, new) in pairs.items():
        times = best({"old": old, "new": new}, repeats)
        print(f"{name:44s} {1e3 * times['old']:9.1f} {1e3 * times['new']:9.1f} {times['old'] / times['new']:8.2f}")


def accuracy(rows: int, controls: int, rounds: int) -> None:
    jacobian, residuals, generator = problem(rows, controls, 1)
    exact = jacobian.double()  # the textbook Broyden formula in float64
    old = jacobian.clone()
    model = LinearModel(jacobian.T, residuals)
    worst = {"new vs old": 0.0, "new vs reference": 0.0, "old vs reference": 0.0}
    damping = 1e-2
    for trial in range(4 * rounds):
        new_step, old_step = model.step(damping), old_damped_step(old, residuals, damping)
        reference = reference_step(exact, residuals, damping)
        for name, (a, b) in {"new vs old": (new_step, old_step), "new vs reference": (new_step, reference),
                             "old vs reference": (old_step, reference)}.items():
            worst[name] = max(worst[name], float((a - b).norm() / b.norm()))
        step = new_step.clone()
        change = (exact @ step + 1e-2 * float(step.norm())
                  * torch.randn(rows, generator=generator, dtype=torch.float64)).float()
        model.broyden(step, change)
        old = old_broyden_update(old, step, change)
        exact = exact + torch.outer(change.double() - exact @ step, step) / float(step @ step)
        if trial % 4 == 3:  # accepted: the rows are reweighted and the centre's residuals change
            weights = (1 + 0.05 * torch.rand(rows, generator=generator)).float()
            residuals = (residuals + change).float()
            model.recentre(weights, residuals)
            old = old * weights.unsqueeze(1)
            exact = exact * weights.double().unsqueeze(1)
            damping = max(damping / 3, 1e-7)
        else:
            damping *= 4
    print(f"accuracy over {4 * rounds} trial steps ({rows:,} x {controls}), largest |Δδ| / |δ|:")
    for name, value in worst.items():
        print(f"  {name:18s} {value:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="residuals (the console: 1071660)")
    parser.add_argument("--controls", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="accuracy: rounds of 3 failed and 1 accepted trial")
    args = parser.parse_args()
    timings(args.rows, args.controls, args.repeats)
    accuracy(args.rows, args.controls, args.rounds)


if __name__ == "__main__":
    main()
