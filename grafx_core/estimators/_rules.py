"""The autograd glue shared by every estimator.

A call renders the unperturbed rows in the forward pass. The backward pass
asks each :class:`GradientRule` which extra rows it needs (perturbed
parameters, perturbed signals), renders all of them in a single
:meth:`RenderTarget.render` call, so that a black box submits the whole lot to
its thread pool at once, and lets each rule turn its outputs and the incoming
gradient into a vector-Jacobian product.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ..errors import EstimatorError
from . import _pool
from .target import RenderJob, RenderTarget

__all__ = [
    "Saved",
    "GradientRule",
    "IdentitySignalRule",
    "SignalSPSARule",
    "rademacher",
    "render_estimated",
    "node_rows",
    "cpu_rows",
    "directional_sums",
]

Gradients = tuple[Optional[torch.Tensor], tuple[Optional[torch.Tensor], ...]]


@dataclass(frozen=True)
class Saved:
    """What the backward pass knows about one call.

    Attributes:
        target: the render target.
        params: ``[N, columns]`` parameters of the call.
        signals: one ``[N, channels, samples]`` tensor per inlet.
        y: ``[N, channels', samples]`` unperturbed output.
        need_params: whether the parameters want a gradient.
        need_signals: per inlet, whether it wants a gradient.
    """

    target: RenderTarget
    params: torch.Tensor
    signals: tuple[torch.Tensor, ...]
    y: torch.Tensor
    need_params: bool
    need_signals: tuple[bool, ...]


class GradientRule(ABC):
    """One way to obtain (part of) the gradient; created afresh for every call."""

    def jobs(self, saved: Saved) -> list[RenderJob]:
        """The extra renders this rule needs (none by default)."""
        return []

    def prepare(self, saved: Saved, outputs: list[torch.Tensor]) -> None:
        """Work on the rendered ``outputs`` that needs no incoming gradient (fitting a stand-in).

        Runs right after the renders, on the thread that rendered them: in a pooled backward
        (:func:`~grafx_core.estimators.backward_pooling`) every call's runs at once, beside the others'
        renders, not one after another in autograd's order. Nothing by default.
        """

    @abstractmethod
    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        """Turn the rendered ``outputs`` (one per job) and ``grad_y`` into VJPs.

        Returns:
            ``(grad_params, grad_signals)``; ``grad_params`` is ``[N, columns]``
            or ``None``, ``grad_signals`` has one entry (or ``None``) per inlet.
        """


def cpu_rows(params: torch.Tensor) -> torch.Tensor:
    """Parameter rows as float64 on the CPU, where all perturbation arithmetic happens.

    Rows are small; keeping them off the accelerator avoids device syncs and
    works where float64 is unsupported (MPS). Targets move rows where they need them.
    """
    return params.detach().to("cpu", torch.float64)


def node_rows(count: int, repeats: int) -> torch.Tensor:
    """``[count * repeats]`` node indices ``0,0,..,1,1,..`` (each node ``repeats`` times), on the CPU."""
    return torch.arange(count).repeat_interleave(repeats)


def directional_sums(grad_y: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` float64 CPU sums of ``grad_y[n] * diff[n, k]``; ``diff`` is ``[N, K, *grad_y.shape[1:]]``.

    Callers difference outputs before this dot product (not two dot products
    after), so that nothing large cancels; one batched matrix product does the
    rest without copying ``grad_y`` per perturbation.
    """
    n, k = diff.shape[:2]
    g = grad_y.reshape(n, -1, 1).to(diff.dtype)
    return torch.bmm(diff.reshape(n, k, -1), g).squeeze(-1).to("cpu", torch.float64)


def rademacher(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """``shape`` random signs (int8, CPU) drawn from ``rng``, never from a global RNG."""
    draws = rng.integers(0, 2, size=shape, dtype=np.int8)
    return torch.from_numpy(draws * np.int8(2) - np.int8(1))


class IdentitySignalRule(GradientRule):
    """Straight-through for the signal: the first inlet receives the output's gradient as is."""

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        grads: list[torch.Tensor | None] = [None] * len(saved.signals)
        if saved.need_signals and saved.need_signals[0]:
            grads[0] = grad_y
        return None, tuple(grads)


class SignalSPSARule(GradientRule):
    """SPSA for the input signals: ``samples`` Rademacher perturbations of every sample value.

    Each inlet that wants a gradient is perturbed by ``± step * delta``; the
    estimate ``mean_k <g, y+ - y-> / (2 step) * delta_k`` is an unbiased VJP for
    smooth effects, with variance growing with the signal length.
    """

    def __init__(self, samples: int, step: float, rng: np.random.Generator) -> None:
        self.samples, self.step, self.rng = samples, step, rng
        self.deltas: list[torch.Tensor | None] = []

    def jobs(self, saved: Saved) -> list[RenderJob]:
        n, k = saved.params.shape[0], self.samples
        plus, minus = [], []
        self.deltas = []
        for x, need in zip(saved.signals, saved.need_signals):
            rep = x.repeat_interleave(k, dim=0)
            if not need:
                self.deltas.append(None)
                plus.append(rep)
                minus.append(rep)
                continue
            delta = rademacher(self.rng, tuple(rep.shape)).to(x.device)
            self.deltas.append(delta)
            shift = delta.to(x.dtype) * self.step
            plus.append(rep + shift)
            minus.append(rep - shift)
        params = cpu_rows(saved.params).repeat_interleave(k, dim=0)
        nodes = node_rows(n, k)
        return [
            RenderJob(tuple(plus), params, None, nodes, "spsa (signal)"),
            RenderJob(tuple(minus), params, None, nodes, "spsa (signal)"),
        ]

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        n, k = saved.params.shape[0], self.samples
        slope = directional_sums(grad_y, outputs[0].sub_(outputs[1]).view(n, k, *grad_y.shape[1:]))
        slope = (slope / (2.0 * self.step)).to(grad_y.device)
        grads = []
        for x, delta in zip(saved.signals, self.deltas):
            if delta is None:
                grads.append(None)
                continue
            # 1/delta == delta for signs; averaging over k keeps it unbiased.
            est = (slope.view(n, k, *([1] * (x.dim() - 1))) * delta.view(n, k, *x.shape[1:])).mean(1)
            grads.append(est.to(x.dtype))
        return None, tuple(grads)


def _plan(saved: Saved, rules: Sequence[GradientRule]) -> Callable[[], tuple[list[list[RenderJob]], list[torch.Tensor]]]:
    """Ask every rule for its jobs now; the function returned renders them (all in one target call) and
    lets each rule prepare its outputs."""
    planned = [rule.jobs(saved) for rule in rules]
    flat = [job for jobs in planned for job in jobs]

    def render() -> tuple[list[list[RenderJob]], list[torch.Tensor]]:
        outputs = saved.target.render(flat) if flat else []
        start = 0
        for rule, jobs in zip(rules, planned):
            rule.prepare(saved, outputs[start:start + len(jobs)])
            start += len(jobs)
        return planned, outputs

    return render


class _Estimated(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, target: RenderTarget, rules: Sequence[GradientRule], params: torch.Tensor,
                *signals: torch.Tensor) -> torch.Tensor:
        nodes = torch.arange(params.shape[0])
        job = RenderJob(tuple(signals), cpu_rows(params), None, nodes, "forward")
        y = target.render([job])[0]
        ctx.target, ctx.rules = target, rules
        ctx.save_for_backward(params, y, *signals)
        ctx.pending = None
        if getattr(target, "concurrent", False) and _pool.pooling_enabled():
            saved = Saved(target, params.detach(), tuple(s.detach() for s in signals), y,
                          bool(ctx.needs_input_grad[2]), tuple(bool(b) for b in ctx.needs_input_grad[3:]))
            ctx.pending = _pool.PendingRenders(lambda: _plan(saved, rules))
            _pool.register(ctx.pending)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[Any, ...]:
        params, y, *signals = ctx.saved_tensors
        need_params = bool(ctx.needs_input_grad[2])
        need_signals = tuple(bool(b) for b in ctx.needs_input_grad[3:])
        saved = Saved(ctx.target, params, tuple(signals), y, need_params, need_signals)
        pending, ctx.pending = ctx.pending, None  # a second backward (retain_graph) renders on its own
        planned, outputs = pending.result() if pending is not None else _plan(saved, ctx.rules)()
        grad_params: torch.Tensor | None = None
        grad_signals: list[torch.Tensor | None] = [None] * len(signals)
        start = 0
        for rule, jobs in zip(ctx.rules, planned):
            gp, gs = rule.finish(saved, outputs[start:start + len(jobs)], grad_y)
            start += len(jobs)
            if gp is not None:
                grad_params = gp if grad_params is None else grad_params + gp
            for i, g in enumerate(gs):
                if g is not None:
                    grad_signals[i] = g if grad_signals[i] is None else grad_signals[i] + g
        if grad_params is not None:
            grad_params = grad_params.to(dtype=params.dtype, device=params.device)
        if not need_params:
            grad_params = None
        grad_signals = [g if need else None for g, need in zip(grad_signals, need_signals)]
        return (None, None, grad_params, *grad_signals)


def render_estimated(target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor,
                     parameter_rule: GradientRule | None, signal_rule: GradientRule | None) -> torch.Tensor:
    """Render the unperturbed rows with gradients supplied by the given rules.

    ``params`` is ``[N, columns]``, each signal ``[N, channels, samples]``.
    Inputs without a rule are detached, so they receive no gradient.
    """
    if params.dim() != 2:
        raise EstimatorError(f"{target.name}: parameters must be [nodes, columns], got {tuple(params.shape)}")
    rules = list(dict.fromkeys(r for r in (parameter_rule, signal_rule) if r is not None))
    params_in = params if parameter_rule is not None else params.detach()
    signals_in = [s if signal_rule is not None else s.detach() for s in signals]
    if not rules or not (params_in.requires_grad or any(s.requires_grad for s in signals_in)):
        nodes = torch.arange(params.shape[0])
        with torch.no_grad():
            job = RenderJob(tuple(s.detach() for s in signals), cpu_rows(params), None, nodes, "forward")
            return target.render([job])[0]
    return _Estimated.apply(target, rules, params_in, *signals_in)
