"""Levenberg-Marquardt's linear model of the residuals, kept so that a trial step costs O(P·R), not O(P²·R).

The Jacobian of ``R`` residuals with respect to ``P`` controls is stored transposed, ``[controls,
residuals]``, contiguous and in float64: each control's row is one long vector, so the Gram matrix
``JᵀJ`` is one BLAS product of a short, wide matrix (about 3× faster than the same product over a
``[residuals, controls]`` layout on the console's 1,071,660 × 17 Jacobian), and the residuals' float32
values are held exactly. ``JᵀJ`` and ``Jᵀr`` are cached: a Broyden update changes ``J`` by a rank-one
term, which changes them by terms computable in one pass over ``J``, so the trial steps at growing
damping reuse them instead of multiplying ``J`` by itself again. Only a reweighting of the rows (a new
centre) needs the Gram matrix afresh.
"""

from __future__ import annotations

import torch

__all__ = ["LinearModel", "solve_damped"]


def solve_damped(normal: torch.Tensor, gradient: torch.Tensor, damping: float, floor: float = 1e-12) -> torch.Tensor:
    """Solve ``(JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr`` given ``JᵀJ`` and ``Jᵀr``.

    Args:
        normal: ``[controls, controls]``, ``JᵀJ`` in float64.
        gradient: ``[controls]``, ``Jᵀr`` in float64.
        damping: ``λ >= 0``; 0 gives the Gauss-Newton step.
        floor: the least a control's damping scales with, as a fraction of ``diag(JᵀJ)``'s largest entry.

    Returns:
        ``δ``, ``[controls]``, in float64.
    """
    diagonal = torch.diagonal(normal)
    scale = diagonal.clamp_min(floor * float(diagonal.max().clamp_min(1e-30)))
    system = normal + damping * torch.diag(scale) + 1e-12 * torch.eye(len(scale), dtype=normal.dtype, device=normal.device)
    # The SVD driver: the CPU default, gelsy, gave a different solution on each call with the same inputs
    # (measured on badly scaled 14 x 14 systems), which made fits on the same seed part after their first step.
    return torch.linalg.lstsq(system, -gradient.unsqueeze(1), driver="gelsd" if system.device.type == "cpu"
                              else None).solution.squeeze(1)


class LinearModel:
    """``r(x + δ) ≈ r + Jδ`` at a centre, with ``JᵀJ`` and ``Jᵀr`` cached across Broyden updates.

    Args:
        rows: ``[controls, residuals]``, ``Jᵀ`` (any float dtype; copied into float64).
        residuals: ``[residuals]`` at the centre.
    """

    def __init__(self, rows: torch.Tensor, residuals: torch.Tensor) -> None:
        self.rows = rows.to(dtype=torch.float64, memory_format=torch.contiguous_format, copy=True)
        self.residuals = residuals.to(torch.float64)
        self._normal: torch.Tensor | None = None
        self._gradient: torch.Tensor | None = None

    def normal(self) -> torch.Tensor:
        """``JᵀJ``, ``[controls, controls]``, float64 (computed once per centre, then updated)."""
        if self._normal is None:
            self._normal = self.rows @ self.rows.T
        return self._normal

    def gradient(self) -> torch.Tensor:
        """``Jᵀr``, ``[controls]``, float64."""
        if self._gradient is None:
            self._gradient = self.rows @ self.residuals
        return self._gradient

    def step(self, damping: float, floor: float = 1e-12) -> torch.Tensor:
        """The damped step ``δ`` (see :func:`solve_damped`), ``[controls]``, float64."""
        return solve_damped(self.normal(), self.gradient(), damping, floor)

    def broyden(self, step: torch.Tensor, change: torch.Tensor) -> None:
        """Broyden's rank-one correction in place: ``J ← J + (Δr - Jδ) δᵀ / (δᵀδ)``, the Jacobian nearest
        ``J`` that maps ``step`` (``[controls]``) to ``change`` (``[residuals]``); a zero step changes nothing.
        ``JᵀJ`` and ``Jᵀr``, where cached, follow in O(P·R)."""
        delta = step.to(torch.float64)
        length = float(delta.square().sum())
        if length == 0.0:
            return
        miss = change.to(torch.float64) - delta @ self.rows  # Δr - Jδ, [residuals]
        miss /= length
        if self._normal is not None:
            # (J + m δᵀ)ᵀ(J + m δᵀ) = JᵀJ + (Jᵀm) δᵀ + δ (Jᵀm)ᵀ + (mᵀm) δδᵀ, with Jᵀm from the old J.
            seen = self.rows @ miss
            cross = torch.outer(seen, delta)
            self._normal = self._normal + cross + cross.T + float(miss @ miss) * torch.outer(delta, delta)
        if self._gradient is not None:
            self._gradient = self._gradient + float(miss @ self.residuals) * delta
        self.rows.addr_(delta, miss)

    def recentre(self, weights: torch.Tensor, residuals: torch.Tensor) -> None:
        """Move the centre: scale every residual's column of ``Jᵀ`` by ``weights`` (``[residuals]``; the
        residuals' weights move with the centre) and take ``residuals`` as the new centre's."""
        self.rows *= weights.to(torch.float64)
        self.residuals = residuals.to(torch.float64)
        self._normal = self._gradient = None
