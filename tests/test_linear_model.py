"""gauss-newton's cached linear model (``grafx_core.fitting._linear``) against float64 references.

Over random sequences of trial steps (Broyden updates, some followed by a reweighting of the rows, as an
accepted step does), the stored Jacobian must equal the textbook Broyden formula applied in float64, and
every damped step must equal ``numpy.linalg.lstsq`` on the augmented least-squares problem
``[J; sqrt(λ diag(JᵀJ))] δ = [-r; 0]``, however the cached ``JᵀJ`` and ``Jᵀr`` were updated.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grafx_core.fitting._linear import LinearModel, solve_damped
from grafx_core.fitting.gauss_newton import broyden_update, damped_step


def _reference_step(jacobian: np.ndarray, residuals: np.ndarray, damping: float) -> np.ndarray:
    scale = np.sqrt(damping * np.sum(jacobian**2, axis=0))
    augmented = np.vstack([jacobian, np.diag(scale)])
    return np.linalg.lstsq(augmented, np.concatenate([-residuals, np.zeros(jacobian.shape[1])]), rcond=None)[0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cached_model_equals_textbook_broyden_and_lstsq_over_a_trial_sequence(seed):
    generator = np.random.default_rng(seed)
    rows, controls = 3000, 7
    # Columns 10^3 apart in scale and mixed: a system whose conditioning matters.
    jacobian = generator.normal(size=(rows, controls)) @ (np.eye(controls) + 0.3 * generator.normal(
        size=(controls, controls))) * np.logspace(-1.5, 1.5, controls)
    jacobian = jacobian.astype(np.float32).astype(np.float64)  # the model holds float32 input exactly
    residuals = generator.normal(size=rows).astype(np.float32)
    model = LinearModel(torch.tensor(jacobian.T, dtype=torch.float32), torch.tensor(residuals))
    damping = 1e-2
    for trial in range(12):
        step = model.step(damping).numpy()
        np.testing.assert_allclose(step, _reference_step(jacobian, residuals.astype(np.float64), damping),
                                   rtol=1e-8, atol=1e-12 * np.abs(step).max())
        change = (jacobian @ step + 0.1 * np.linalg.norm(step) * generator.normal(size=rows)).astype(np.float32)
        model.broyden(torch.tensor(step), torch.tensor(change))
        jacobian = jacobian + np.outer(change - jacobian @ step, step) / (step @ step)
        np.testing.assert_allclose(model.rows.numpy().T, jacobian, rtol=1e-12, atol=1e-12 * np.abs(jacobian).max())
        if generator.random() < 0.4:  # an accepted step: the rows reweighted, the centre's residuals new
            weights = generator.uniform(0.5, 2.0, size=rows).astype(np.float32)
            residuals = (residuals + change).astype(np.float32)
            model.recentre(torch.tensor(weights), torch.tensor(residuals))
            jacobian = jacobian * weights[:, None].astype(np.float64)
            damping = max(damping / 3, 1e-7)
        else:
            damping *= 4
    # The caches, however updated, match the products of the stored Jacobian.
    stored = model.rows.numpy()
    np.testing.assert_allclose(model.normal().numpy(), stored @ stored.T, rtol=1e-10,
                               atol=1e-12 * np.abs(stored @ stored.T).max())
    np.testing.assert_allclose(model.gradient().numpy(), stored @ residuals.astype(np.float64), rtol=1e-10,
                               atol=1e-12 * np.abs(stored @ residuals).max())


def test_a_zero_step_changes_nothing_and_the_input_is_not_mutated():
    jacobian = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    kept = jacobian.clone()
    model = LinearModel(jacobian.T, torch.ones(100))
    before = model.step(0.1)
    model.broyden(torch.zeros(3), torch.randn(100))
    assert torch.equal(model.step(0.1), before)
    model.broyden(torch.ones(3), torch.randn(100))
    assert torch.equal(jacobian, kept)  # the model copied its rows
    assert broyden_update(jacobian, torch.zeros(3), torch.randn(100)) is jacobian


@pytest.mark.parametrize("seed", [5, 6])
def test_public_functions_equal_the_model_and_the_references(seed):
    generator = torch.Generator().manual_seed(seed)
    jacobian = torch.randn(500, 4, generator=generator, dtype=torch.float64) * torch.logspace(-2, 2, 4,
                                                                                               dtype=torch.float64)
    residuals, step = torch.randn(500, generator=generator, dtype=torch.float64), torch.randn(4, generator=generator,
                                                                                             dtype=torch.float64)
    change = torch.randn(500, generator=generator, dtype=torch.float64)
    updated = broyden_update(jacobian, step, change)
    textbook = jacobian + torch.outer(change - jacobian @ step, step) / (step @ step)
    torch.testing.assert_close(updated, textbook, rtol=1e-12, atol=1e-12)
    for damping in (0.0, 1e-4, 0.3):
        expected = _reference_step(updated.numpy(), residuals.numpy(), damping)
        np.testing.assert_allclose(damped_step(updated, residuals, damping).numpy(), expected, rtol=1e-8)
        normal, gradient = updated.T @ updated, updated.T @ residuals
        np.testing.assert_allclose(solve_damped(normal, gradient, damping).numpy(), expected, rtol=1e-8)


def test_the_damped_step_repeats_to_the_bit_on_a_badly_scaled_system():
    """The same fit on the same seed must take the same steps: LAPACK's default least-squares driver (gelsy)
    returned a different solution on each call for systems like this one, and fits on the LV2 chain parted
    after their first Levenberg-Marquardt step."""
    generator = torch.Generator().manual_seed(0)
    jacobian = torch.randn(200, 14, generator=generator, dtype=torch.float64)
    jacobian[:, 3] *= 1e-4  # one control the residuals hardly see, as a Jacobian's often is
    normal, gradient = jacobian.T @ jacobian, torch.randn(14, generator=generator, dtype=torch.float64)
    steps = [solve_damped(normal, gradient, damping) for damping in (0.0, 0.0, 0.0, 1e-3, 1e-3)]
    assert all(torch.equal(steps[0], s) for s in steps[1:3]) and torch.equal(steps[3], steps[4])
    reference = np.linalg.lstsq(normal.numpy(), -gradient.numpy(), rcond=None)[0]
    np.testing.assert_allclose(steps[0].numpy(), reference, rtol=1e-6, atol=1e-9 * np.abs(reference).max())
