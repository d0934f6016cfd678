"""Automated black-box controls: per-block values for the effect, gradients by knots.

A :class:`~grafx_core.blackbox.ParameterSpec` declared ``time_varying=True``
may be given to a :class:`~grafx_core.blackbox.BlackBoxProcessor` as a curve
``[nodes, 1, samples]`` of raw values (the engine expands control frames to
samples, :mod:`grafx_core.curves`). The effect then receives the control as a
float32 array of natural values, one per block of ``control_block`` samples
(the curve's value at the block's first sample), and renders the whole item
in one call, its state carried through the clip: a ``function`` or
``process`` gets the array and applies value ``b`` to samples
``[b * block, (b + 1) * block)``; an effect object without ``process`` gets
its attribute set before each block and is called on consecutive blocks.

**Gradients** cost renders per knot, not per frame. Each automated control
adds ``knots`` columns to what the estimator perturbs: column ``k`` moves the
whole curve by ``SPAN * (c_k - 1/2)`` times a hat function centred on knot
``k`` (knots evenly spaced over the blocks, the hats a partition of unity), so
that central differences estimate ``d_k``, the derivative of the loss along
hat ``k``, with 2 renders per knot. The curve's gradient is the smallest one
consistent with those derivatives, ``H^T (H H^T)^-1 d`` (``H`` the hats per
block): exact for every curve the knots can express, the projection of the
true gradient onto them otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._row_labels import current_row_labels
from ..errors import ParameterError
from ..estimators.auto import scaled_signals, settle_signal_gradient
from .target import BlackBoxTarget, _unit

if TYPE_CHECKING:
    from .processor import BlackBoxProcessor

__all__ = ["moving_forward", "hat_functions", "MovingTarget", "SPAN"]

SPAN = 4.0
"""Raw units per normalised unit of a knot column: about a static control's sensitivity at its centre
(the sigmoid's slope there is 1/4), so one estimator step means as much for both."""


def hat_functions(blocks: int, knots: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[knots, blocks]`` piecewise-linear hats at evenly spaced knots; every column sums to 1."""
    knots = max(1, min(knots, blocks))
    if knots == 1:
        return torch.ones(1, blocks, dtype=dtype)
    position = torch.arange(blocks, dtype=dtype) * (knots - 1) / max(blocks - 1, 1)
    centres = torch.arange(knots, dtype=dtype).unsqueeze(1)
    return (1.0 - (position - centres).abs()).clamp(min=0.0)


def _block_values(curve: torch.Tensor, block: int) -> torch.Tensor:
    """``[nodes, 1, samples]`` raw curve to ``[nodes, blocks]``: its value at each block's first sample."""
    return curve[:, 0, ::block]


def moving_forward(processor: BlackBoxProcessor, x: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``processor(x, **params)`` where some time-varying controls are curves (see the module's description)."""
    nodes, samples = x.shape[0], x.shape[-1]
    block = processor.control_block
    blocks = math.ceil(samples / block)
    moving = [s for s in processor.specs
              if s.time_varying and isinstance(params.get(s.name), torch.Tensor) and params[s.name].dim() == 3]
    for spec in moving:
        if tuple(params[spec.name].shape) != (nodes, 1, samples):
            raise ParameterError(f"black box {processor.name!r}: automated parameter {spec.name!r} has shape "
                                 f"{tuple(params[spec.name].shape)}; expected [{nodes}, 1, {samples}]")
    static = {k: v for k, v in params.items() if k not in {s.name for s in moving}}
    fixed = {s.name: torch.zeros(nodes, 1, dtype=x.dtype, device=x.device) for s in moving}
    columns = _unit(processor._raw_columns({**static, **fixed}, nodes).to(x.device))
    hats = hat_functions(blocks, processor.knots).to(x.device)
    projection = torch.linalg.solve(hats @ hats.T, hats)  # [knots, blocks]: least-squares knot coordinates
    raw_blocks, knot_columns = [], []
    for spec in moving:
        values = _block_values(params[spec.name], block).to(torch.float64)
        raw_blocks.append(values.detach())
        coordinates = values @ projection.T  # [nodes, knots]
        # Zero-valued offsets (the curve as given), whose gradient maps back onto the curve.
        knot_columns.append(0.5 + (coordinates - coordinates.detach()) / SPAN)
    kept = [j for j, s in enumerate(processor.specs) if s not in moving]
    normalised = torch.cat([columns[:, kept].to(torch.float64), *knot_columns], dim=1)
    target = MovingTarget(processor, current_row_labels() or processor.node_labels, moving,
                          torch.stack(raw_blocks, dim=1), hats, x.dtype)
    processor._warn(normalised[:, :len(kept)])
    choice = settle_signal_gradient(processor, target, (x,), normalised, f"black box {processor.name!r}")
    return processor.estimator.apply(target, scaled_signals(processor, (x,)), normalised, signal_gradient=choice)


class MovingTarget(BlackBoxTarget):
    """A black box with automated controls as a render target: the static controls' columns, then
    ``knots`` offset columns per automated control (see the module's description)."""

    def __init__(self, processor: BlackBoxProcessor, labels: Any, moving: list[Any], raw_blocks: torch.Tensor,
                 hats: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(processor, labels)
        self.moving = moving
        self.static = [s for s in processor.specs if s not in moving]
        self.raw_blocks = raw_blocks.cpu().numpy()  # [nodes, automated, blocks]
        self.dtype = dtype
        self.hats = hats.cpu().numpy()
        knots = self.hats.shape[0]
        self.columns = tuple(s.name for s in self.static) + tuple(
            f"{s.name}@knot{k}" for s in moving for k in range(knots))
        self.differentiable = tuple(bool(s.differentiable) for s in self.static) + tuple(
            bool(s.differentiable) for s in moving for _ in range(knots))

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = len(self.static)
        return params[:, :count], params[:, count:]

    def keyword_parameters(self, params: torch.Tensor) -> dict[str, Any]:
        static, _ = self._split(params)
        return {s.name: s.to_natural(static[:, j]) for j, s in enumerate(self.static)}

    def _natural(self, params: torch.Tensor) -> torch.Tensor:
        static, knots = self._split(params.to(torch.float64))
        cols = [s.to_natural(static[:, j]) for j, s in enumerate(self.static)]
        natural = torch.stack(cols, dim=1).to(torch.float32).to(torch.float64) if cols else static
        return torch.cat([natural, knots], dim=1)

    def quantise(self, params: torch.Tensor) -> torch.Tensor:
        static, knots = self._split(params.to(torch.float64))
        natural = self._natural(params)[:, :len(self.static)]
        cols = [s.to_normalised(natural[:, j]) for j, s in enumerate(self.static)]
        return torch.cat([torch.stack(cols, dim=1) if cols else static, knots], dim=1)

    def random_rows(self, params: torch.Tensor, rng: Any) -> torch.Tensor:
        rows = params.to(torch.float64).clone()
        for j, spec in enumerate(self.static):
            if spec.differentiable:
                rows[:, j] = torch.from_numpy(rng.uniform(0.1, 0.9, size=rows.shape[0]))
        return rows

    def step_floor(self, params: torch.Tensor) -> torch.Tensor:
        static, knots = self._split(params)
        cols = [s.step_floor(static[:, j]) for j, s in enumerate(self.static)]
        floor = torch.stack(cols, dim=1) if cols else torch.zeros_like(static, dtype=torch.float64)
        return torch.cat([floor.to(torch.float64), torch.zeros_like(knots, dtype=torch.float64)], dim=1)

    def _item_natural(self, natural: np.ndarray, row: int, params: torch.Tensor) -> dict[str, Any]:
        count, knots = len(self.static), self.hats.shape[0]
        values: dict[str, Any] = {s.name: float(v) for s, v in zip(self.static, natural[:count])}
        offsets = natural[count:].reshape(len(self.moving), knots) - 0.5
        for m, spec in enumerate(self.moving):
            raw = self.raw_blocks[row, m] + SPAN * (offsets[m] @ self.hats)
            # The map a static control takes (_unit), so a constant curve gets its exact values.
            normalised = _unit(torch.from_numpy(raw).to(self.dtype)).to(torch.float64)
            values[spec.name] = spec.to_natural(normalised).numpy().astype(np.float32)
        return values
