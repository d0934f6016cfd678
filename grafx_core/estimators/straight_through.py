"""Straight-through: the black box forward, a differentiable surrogate backward."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from ..errors import EstimatorError
from ._rules import GradientRule, Gradients, Saved, render_estimated
from .base import Estimator
from .target import RenderTarget

__all__ = ["StraightThrough"]


class StraightThrough(Estimator):
    """The true effect in the forward pass, a surrogate's VJP in the backward pass.

    Meant for quantisers, switches and other steps whose true gradient is zero
    almost everywhere. The input signal's gradient is the identity by default
    (``signal_gradient="straight-through"``); with ``signal_surrogate=True`` it
    is the surrogate's VJP instead.

    Args:
        surrogate: differentiable torch function ``surrogate(*signals, **params)
            -> [N, channels, samples]`` whose VJP stands in for the effect's.
            ``params`` are the processor's keyword parameters: natural units
            ``[N]`` per control for a black box, the module's own parameters for a
            wrapped torch module. Without one, only the signal has a gradient: a
            call whose parameters want one raises :class:`~grafx_core.errors.EstimatorError`.
        signal_surrogate: use the surrogate's VJP for the signal too.
        signal_samples, signal_step, seed: see :class:`Estimator`.
    """

    kind: ClassVar[str] = "straight-through"
    default_signal_gradient: ClassVar[str] = "straight-through"

    def __init__(self, surrogate: Callable[..., torch.Tensor] | None = None, *,
                 signal_surrogate: bool = False, **options: Any) -> None:
        super().__init__(**options)
        if surrogate is not None and not callable(surrogate):
            raise EstimatorError(f"StraightThrough: surrogate must be callable, got {surrogate!r}")
        if signal_surrogate and surrogate is None:
            raise EstimatorError("StraightThrough: signal_surrogate=True needs a surrogate function")
        self.surrogate, self.signal_surrogate = surrogate, bool(signal_surrogate)

    def parameter_rule(self, target: RenderTarget) -> GradientRule:
        if self.surrogate is None:
            raise EstimatorError(
                f"{target.name}: the straight-through estimator has no surrogate for the parameters "
                f"{list(target.columns)}; pass StraightThrough(surrogate=...) or mark them non-differentiable"
            )
        return _SurrogateRule(self.surrogate, params=True, signals=False)

    def apply(self, target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
              signal_gradient: str = "auto") -> torch.Tensor:
        choice = self.resolve_signal_gradient(signal_gradient)
        if not (self.signal_surrogate and choice == "straight-through"):
            return super().apply(target, signals, params, signal_gradient=choice)
        # One rule gives both VJPs from a single evaluation of the surrogate.
        want_params = params.requires_grad and bool(target.differentiable_columns())
        want_signals = any(s.requires_grad for s in signals)
        rule = _SurrogateRule(self.surrogate, params=want_params, signals=True)  # type: ignore[arg-type]
        return render_estimated(target, signals, params, rule if want_params else None,
                                rule if want_signals else None)

    def __repr__(self) -> str:
        return f"StraightThrough(surrogate={self.surrogate!r}, signal_surrogate={self.signal_surrogate})"


class _SurrogateRule(GradientRule):
    """VJPs of the surrogate, evaluated at the call's parameters and signals."""

    def __init__(self, surrogate: Callable[..., torch.Tensor], *, params: bool, signals: bool) -> None:
        self.surrogate, self.want_params, self.want_signals = surrogate, params, signals

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        t = saved.target
        with torch.enable_grad():
            p = saved.params.detach().requires_grad_(self.want_params and saved.need_params)
            xs = [s.detach().requires_grad_(self.want_signals and need)
                  for s, need in zip(saved.signals, saved.need_signals)]
            y = self.surrogate(*xs, **t.keyword_parameters(p))
            if isinstance(y, tuple):  # a processor used as surrogate: (outlet, aux)
                y = y[0]
            if not isinstance(y, torch.Tensor) or y.shape != grad_y.shape:
                shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise EstimatorError(
                    f"{t.name}: the straight-through surrogate returned {shape}; expected a tensor "
                    f"shaped like the effect's output {tuple(grad_y.shape)}"
                )
            inputs = [v for v in (p, *xs) if v.requires_grad]
            grads = list(torch.autograd.grad(y, inputs, grad_y, allow_unused=True)) if inputs else []
        grad_p = grads.pop(0) if p.requires_grad else None
        if grad_p is not None:
            mask = torch.tensor(t.differentiable, dtype=torch.bool, device=grad_p.device)
            grad_p = torch.where(mask, grad_p, torch.zeros_like(grad_p))
        grad_x = tuple(grads.pop(0) if x.requires_grad else None for x in xs)
        return grad_p, grad_x
