"""Neural proxy: the true effect forward, a trained network's gradient backward."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..errors import EstimatorError
from ._rules import GradientRule, render_estimated
from .base import Estimator
from .proxy_network import ProxyNetwork
from .target import RenderTarget
from .training import load_proxy

__all__ = ["NeuralProxy"]

MODES = ("gradient", "full")


class NeuralProxy(Estimator):
    """Gradients from a parameter-conditioned network trained to imitate the effect.

    In ``"gradient"`` mode (the default) the output is the true effect's, and the
    backward pass is the proxy's VJP: ``y.detach() + proxy - proxy.detach()``.
    In ``"full"`` mode the proxy replaces the effect in both passes (no renders
    at all, so it is as fast as the network). The proxy is conditioned on the
    target's parameter columns (normalised ``[0, 1]`` for black boxes); train one
    with :func:`~grafx_core.estimators.train_proxy`. Its weights are frozen
    here; they receive no gradient.

    Args:
        proxy: a :class:`ProxyNetwork`, or the path of one saved by
            :func:`~grafx_core.estimators.save_proxy`.
        mode: ``"gradient"`` or ``"full"``.
        signal_samples, signal_step, seed: see :class:`Estimator`.
    """

    kind: ClassVar[str] = "neural-proxy"
    default_signal_gradient: ClassVar[str] = "proxy"

    def __init__(self, proxy: ProxyNetwork | str | os.PathLike[str] | None = None, mode: str = "gradient",
                 **options: Any) -> None:
        super().__init__(**options)
        if mode not in MODES:
            raise EstimatorError(f"NeuralProxy: mode {mode!r} is not one of {MODES}")
        if isinstance(proxy, (str, os.PathLike)):
            proxy = load_proxy(proxy)
        if proxy is not None and not isinstance(proxy, torch.nn.Module):
            raise EstimatorError(f"NeuralProxy: proxy must be a ProxyNetwork or a path, got {proxy!r}")
        self.mode = mode
        self.proxy = proxy
        if proxy is not None:
            proxy.requires_grad_(False)
            proxy.eval()

    def parameter_rule(self, target: RenderTarget) -> GradientRule | None:
        return None  # the proxy's autograd graph supplies the parameters' VJP

    def apply(self, target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
              signal_gradient: str = "auto") -> torch.Tensor:
        choice = self.resolve_signal_gradient(signal_gradient)
        if self.mode == "full" and choice not in ("proxy", "none"):
            raise EstimatorError(
                f"{target.name}: in 'full' mode the signal gradient is the proxy's or none, not {choice!r}"
            )
        if len(signals) != 1:
            raise EstimatorError(f"{target.name}: the neural proxy handles one inlet, got {len(signals)}")
        x = signals[0]
        want_params = params.requires_grad and bool(target.differentiable_columns())
        want_signal = x.requires_grad and choice == "proxy"
        proxy_needed = self.mode == "full" or want_params or want_signal
        y_proxy = self._proxy(target, x if want_signal else x.detach(), params) if proxy_needed else None
        if self.mode == "full":
            return y_proxy  # type: ignore[return-value]
        s_rule = self.signal_rule(choice, target) if x.requires_grad else None
        y = render_estimated(target, signals, params, None, s_rule)
        if y_proxy is None:
            return y
        if y_proxy.shape != y.shape:
            raise EstimatorError(
                f"{target.name}: the proxy returned {tuple(y_proxy.shape)}, the effect {tuple(y.shape)}; "
                "train a proxy with matching output channels"
            )
        return y + (y_proxy - y_proxy.detach())

    def _proxy(self, target: RenderTarget, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        net = self.proxy
        if net is None:
            raise EstimatorError(
                f"{target.name}: the neural-proxy estimator has no proxy; train one with "
                "grafx_core.estimators.train_proxy(...) and pass NeuralProxy(proxy=...)"
            )
        expected = getattr(net, "config", {}).get("parameters", params.shape[1])
        if expected != params.shape[1]:
            raise EstimatorError(
                f"{target.name}: the proxy is conditioned on {expected} parameters, the processor has "
                f"{params.shape[1]} ({list(target.columns)})"
            )
        weight = next(net.parameters())
        if weight.device != x.device:
            net.to(x.device)
        mask = torch.tensor(target.differentiable, dtype=torch.bool, device=params.device)
        if params.requires_grad and not bool(mask.all()):
            params = torch.where(mask, params, params.detach())
        out = net(x.to(weight.dtype), params.to(device=x.device, dtype=weight.dtype))
        return out.to(x.dtype)

    def __repr__(self) -> str:
        return f"NeuralProxy(mode={self.mode!r}, proxy={'set' if self.proxy is not None else None})"
