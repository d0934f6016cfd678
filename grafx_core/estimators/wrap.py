"""Route any torch processor through any estimator.

``with_estimator(processor, estimator)`` returns a processor whose forward
pass is the wrapped module's and whose backward pass is the estimator's. All
perturbed renders of a call go into one batched call of the module on its
device (no thread pool). Use it to test estimators against exact gradients,
and to train through torch code that has no useful gradient (quantisers,
argmax switches).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..processor import ProcessorLike
from ..errors import EstimatorError, ParameterError, ProcessorOutputError
from ..description import describe
from ._warnings import NonDifferentiableParameterWarning, warn_once
from .auto import scaled_signals, settle_signal_gradient
from .base import SIGNAL_GRADIENTS, Estimator, resolve_estimator
from .target import RenderJob, RenderTarget

__all__ = ["with_estimator", "EstimatedProcessor", "TorchTarget", "render_target"]


def _columns(layout: Sequence[tuple[tuple[str, ...], tuple[int, ...]]]) -> tuple[str, ...]:
    names = []
    for path, shape in layout:
        base = ".".join(path)
        size = math.prod(shape)
        names.extend([base] if size == 1 else [f"{base}[{i}]" for i in range(size)])
    return tuple(names)


class TorchTarget(RenderTarget):
    """A torch processor as a render target: every job's rows in one batched no-grad call.

    Columns are the processor's parameters flattened in ``parameter_size()``
    order; they are unbounded, and steps are relative to ``max(|p|, 1)``.

    Args:
        module: the processor (single outlet).
        dtype: the dtype its parameters are given in.
        frozen: parameter names (top level or dotted paths) that get no gradient.
        name: used in error messages.
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.float32, frozen: Sequence[str] = (),
                 name: str | None = None) -> None:
        self.module, self.dtype = module, dtype
        self.device = torch.device("cpu")  # where a processor without inlets renders; set per call
        self.name = name or type(module).__name__
        self.controls = describe(module).controls
        self.layout = [(path, control.shape) for path, control in self.controls.items()]
        self.columns = _columns(self.layout)
        diff: list[bool] = []
        for path, shape in self.layout:
            dotted = ".".join(path)
            keep = not any(dotted == f or dotted.startswith(f + ".") for f in frozen)
            diff.extend([keep] * math.prod(shape))
        self.differentiable = tuple(diff)
        dotted_paths = [".".join(path) for path, _ in self.layout]
        unknown = [f for f in frozen if not any(d == f or d.startswith(f + ".") for d in dotted_paths)]
        if unknown:
            raise EstimatorError(f"{self.name}: frozen names {unknown} are not parameters; it has {dotted_paths}")

    def flatten(self, params: Mapping[str, Any], nodes: int | None) -> torch.Tensor:
        """Keyword parameters (leaves ``[N, *shape]``) to ``[N, columns]``.

        Raises:
            ParameterError: a parameter is missing, unexpected or misshapen.
        """
        leaves = []
        for path, shape in self.layout:
            value: Any = params
            for key in path:
                if not isinstance(value, Mapping) or key not in value:
                    raise ParameterError(f"{self.name}: missing parameter {'.'.join(path)!r} of shape [nodes, *{shape}]")
                value = value[key]
            if not isinstance(value, torch.Tensor):
                raise ParameterError(f"{self.name}: parameter {'.'.join(path)!r} must be a tensor, got {type(value).__name__}")
            if nodes is None and value.dim():
                nodes = value.shape[0]
            ok_shape = tuple(value.shape[1:]) == shape or (shape == (1,) and value.dim() == 1)
            if value.dim() == 0 or value.shape[0] != nodes or not ok_shape:
                raise ParameterError(
                    f"{self.name}: parameter {'.'.join(path)!r} has shape {tuple(value.shape)}; "
                    f"expected [{nodes}, *{shape}]"
                )
            leaves.append(value.reshape(nodes, -1))
        expected = {path[0] for path, _ in self.layout}
        extra = sorted(set(params) - expected)
        if extra:
            raise ParameterError(f"{self.name}: unexpected parameters {extra}; expected {sorted(expected)}")
        if not leaves:
            return torch.zeros(nodes or 0, 0, dtype=self.dtype)
        return torch.cat(leaves, dim=1)

    def keyword_parameters(self, params: torch.Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        start = 0
        for path, shape in self.layout:
            size = math.prod(shape)
            leaf = params[:, start:start + size].reshape(params.shape[0], *shape)
            start += size
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = leaf
        return out

    def quantise(self, params: torch.Tensor) -> torch.Tensor:
        return params.to(self.dtype).to(torch.float64)

    def step_scale(self, params: torch.Tensor) -> torch.Tensor:
        return params.to(torch.float64).abs().clamp(min=1.0)

    def distance(self, params: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Over the declared range's span (log-aware; the bounded controls); ``max(|r|, 1)`` elsewhere."""
        out = super().distance(params, reference)
        start = 0
        for path, shape in self.layout:
            size = math.prod(shape)
            found = self.controls[path]
            if found.bounded and not found.unconstrained:
                assert found.low is not None and found.high is not None
                now, then = params[:, start:start + size].double(), reference[:, start:start + size].double()
                if found.scale == "log" and found.low > 0:
                    floor = found.low
                    gap = (now.clamp(min=floor).log() - then.clamp(min=floor).log()).abs()
                    out[:, start:start + size] = gap / math.log(found.high / found.low)
                else:
                    out[:, start:start + size] = (now - then).abs() / (found.high - found.low)
            start += size
        return out

    def random_rows(self, params: torch.Tensor, rng: Any) -> torch.Tensor | None:
        """Declared ranges (bounded controls): uniform in their middle 80% (log-uniform on log scales).

        Columns without a declared range keep their values; ``None`` when the module declares none.
        """
        ranges = {path: c for path, c in self.controls.items() if c.bounded and not c.unconstrained
                  and (c.scale != "log" or c.low > 0)}  # type: ignore[operator]
        if not ranges:
            return None
        rows = params.to(torch.float64).clone()
        start = 0
        for path, shape in self.layout:
            size = math.prod(shape)
            found = ranges.get(path)
            if found is not None and self.differentiable[start]:
                assert found.low is not None and found.high is not None
                log = found.scale == "log"
                low, high = (math.log(found.low), math.log(found.high)) if log else (found.low, found.high)
                span = high - low
                draw = rng.uniform(low + 0.1 * span, high - 0.1 * span, size=(rows.shape[0], size))
                rows[:, start:start + size] = torch.from_numpy(np.exp(draw) if log else draw)
            start += size
        return rows

    def render(self, jobs: Sequence[RenderJob]) -> list[torch.Tensor]:
        inlets = len(jobs[0].signals)
        signals = [torch.cat([job.signal_rows()[i] for job in jobs]) for i in range(inlets)]
        device = signals[0].device if signals else self.device
        params = torch.cat([job.params for job in jobs]).to(device=device, dtype=self.dtype)
        with torch.no_grad():
            out = self.module(*signals, **self.keyword_parameters(params))
        if isinstance(out, tuple):
            out = out[0]
        rows = sum(len(job) for job in jobs)
        if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != rows:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ProcessorOutputError(f"{self.name}: returned {shape} for {rows} rows; expected [{rows}, ...]")
        return list(out.split([len(job) for job in jobs]))


class EstimatedProcessor(nn.Module):
    """A torch processor whose gradients come from an estimator (see :func:`with_estimator`).

    Follows the processor protocol: same inlets, parameters and output as the
    wrapped module; ``gradient_kind`` is the estimator's. Aux values of the
    wrapped module are not returned (their gradient could not be estimated).

    ``signal_gradient="auto"`` takes the wrapped module's declaration when it
    has one (a ``signal_gradient`` attribute naming one of
    :data:`~grafx_core.estimators.SIGNAL_GRADIENTS`), else it is settled by a
    probe at the first call whose input wants a gradient (see
    :mod:`grafx_core.estimators.auto`); the choice stays in ``signal_gradient``
    and the probe in ``signal_probe``.
    """

    def __init__(self, processor: nn.Module, estimator: Estimator, signal_gradient: str = "auto",
                 frozen: Sequence[str] = ()) -> None:
        super().__init__()
        description = describe(processor)
        if len(description.outlets) != 1:
            raise EstimatorError(
                f"{type(processor).__name__}: estimators handle one outlet, it has {description.outlets}"
            )
        self.processor = processor
        self.estimator = estimator
        declared = getattr(processor, "signal_gradient", None)
        if signal_gradient == "auto" and declared in SIGNAL_GRADIENTS and declared != "proxy":
            signal_gradient = declared
        self.signal_gradient = estimator.resolve_signal_gradient(signal_gradient)
        self.signal_probe: Any = None
        self.frozen = tuple(frozen)
        self.inlets = description.inlets
        self.outlets = description.outlets
        self.inlet_channels = dict(description.inlet_channels)
        self.gradient_kind = estimator.kind
        self._warned: set[Any] = set()
        TorchTarget(processor, frozen=self.frozen)  # check the frozen names and parameter_size now

    def controls(self) -> dict[str, Any]:
        """The wrapped processor's controls."""
        return describe(self.processor).control_tree()

    def parameter_size(self) -> Any:
        """The wrapped processor's parameter sizes."""
        return self.processor.parameter_size() if hasattr(self.processor, "parameter_size") else {}

    def default_parameters(self) -> Any:
        """The wrapped processor's ``default_parameters()``, if it has one (kept for callers; the
        engine reads :meth:`controls`)."""
        method = getattr(self.processor, "default_parameters", None)
        return method() if callable(method) else None

    def render_target(self, dtype: torch.dtype = torch.float32) -> TorchTarget:
        """The wrapped processor as a :class:`TorchTarget`."""
        return TorchTarget(self.processor, dtype, self.frozen, type(self.processor).__name__)

    def forward(self, *signals: torch.Tensor, **params: Any) -> torch.Tensor:
        """Render with the wrapped processor; gradients from the estimator.

        Args:
            signals: one ``[N, channels, samples]`` tensor per inlet.
            params: the wrapped processor's parameters, each ``[N, *shape]``.

        Returns:
            ``[N, channels', samples]``.
        """
        nodes = signals[0].shape[0] if signals else None
        target = self.render_target()
        columns = target.flatten(params, nodes)
        if columns.is_floating_point():
            # Renders get the parameters in their own dtype (nested leaves included), not float32.
            target.dtype = columns.dtype
        if signals:
            columns = columns.to(signals[0].device)
        target.device = columns.device
        self._warn(target, columns)
        choice = settle_signal_gradient(self, target, signals, columns, target.name)
        return self.estimator.apply(target, scaled_signals(self, signals), columns, signal_gradient=choice)

    def _warn(self, target: RenderTarget, columns: torch.Tensor) -> None:
        if columns.requires_grad:
            for name, diff in zip(target.columns, target.differentiable):
                if not diff:
                    warn_once(self._warned, name,
                              f"{target.name}: parameter {name!r} is not differentiable; its gradient is zero",
                              NonDifferentiableParameterWarning, stacklevel=4)


def with_estimator(processor: ProcessorLike, estimator: Estimator | str, *, signal_gradient: str = "auto",
                   frozen: Sequence[str] = (), **options: Any) -> nn.Module:
    """Route ``processor`` through ``estimator``.

    Args:
        processor: a torch processor (any module with ``forward`` and
            ``parameter_size``), or a black-box processor (which gets a copy using
            the new estimator).
        estimator: an :class:`Estimator` or a registered name such as ``"spsa"``.
        signal_gradient: ``"auto"`` or one of
            :data:`~grafx_core.estimators.SIGNAL_GRADIENTS` (see
            :mod:`grafx_core.estimators.base`).
        frozen: parameter names of a torch processor that get no gradient (a
            one-time :class:`NonDifferentiableParameterWarning` when asked).
        options: options for the estimator when given by name.

    Returns:
        A processor with the same inlets, outlet and parameters.

    Raises:
        EstimatorError: an unknown estimator, a bad option, or several outlets.
    """
    est = resolve_estimator(estimator, **options)
    swap = getattr(processor, "with_estimator", None)
    if callable(swap):
        if frozen:
            raise EstimatorError("frozen= applies to torch processors; mark black-box parameters "
                                 "non-differentiable in their ParameterSpec")
        return swap(est, signal_gradient=signal_gradient)
    if not isinstance(processor, nn.Module):
        raise EstimatorError(f"with_estimator: expected a torch module or a black-box processor, got {processor!r}")
    return EstimatedProcessor(processor, est, signal_gradient, frozen)


def render_target(processor: ProcessorLike, dtype: torch.dtype = torch.float32) -> RenderTarget:
    """The render target of a black-box processor, an estimated processor or a plain torch module."""
    method = getattr(processor, "render_target", None)
    if callable(method):
        return method(dtype)
    if isinstance(processor, nn.Module):
        return TorchTarget(processor, dtype)
    raise EstimatorError(f"expected a processor, got {processor!r}")
