"""Non-negative least squares through the normal equations: the solve every fit start shares."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["least_squares_weights"]


def least_squares_weights(basis: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Non-negative ``w`` minimising ``|| sum_i w_i basis_i - target ||^2``.

    Args:
        basis: ``[n, m]`` (one row per unknown).
        target: ``[m]``.

    Returns:
        ``[n]`` float64, each >= 0.
    """
    from scipy.optimize import nnls

    a = basis.detach().to("cpu", torch.float64)
    b = target.detach().to("cpu", torch.float64)
    gram = (a @ a.T).numpy()
    rhs = (a @ b).numpy()
    # The normal equations through a Cholesky factor: the same minimiser as nnls on [m, n], m/n times cheaper.
    scale = max(float(np.trace(gram)) / len(gram), 1e-300)
    factor = np.linalg.cholesky(gram + 1e-9 * scale * np.eye(len(gram)))
    return nnls(factor.T, np.linalg.solve(factor, rhs), maxiter=100 * len(gram))[0]
