"""Fixed linear-interpolation matrices (built once in numpy, applied as a matmul)."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolation_matrix"]


def interpolation_matrix(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``[len(grid), len(points)]`` matrix ``M`` with ``M @ v == numpy.interp(grid, points, v)``
    for every ``v`` (values beyond the ends are held at the end values)."""
    eye = np.eye(len(points))
    return np.stack([np.interp(grid, points, eye[k]) for k in range(len(points))], axis=1)
