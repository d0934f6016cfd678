"""How the conformance kit draws a parameter and describes what it fed (rules in :mod:`grafx_core.testing`)."""

from __future__ import annotations

import math

import torch

from .control import Control

__all__ = ["draw_parameter", "describe_inputs"]


def draw_parameter(noise: torch.Tensor, bounds: Control | None, default: torch.Tensor | None,
                   perturbation: float) -> torch.Tensor:
    """One parameter's rows from standard normal ``noise`` ``[nodes, *shape]`` (float64).

    Around ``default`` (else the range's centre) with a spread of
    ``perturbation`` times the range's width, on its scale, folded back into
    ``[low, high]``; without a range, ``default + perturbation * noise``, or
    ``noise`` itself without a default either.
    """
    if bounds is None:
        return noise if default is None else default + perturbation * noise
    assert bounds.low is not None and bounds.high is not None
    centre = torch.full_like(noise, bounds.centre()) if default is None else default.expand_as(noise)
    log = bounds.scale == "log" and bounds.low > 0
    if log:
        low, high = math.log(bounds.low), math.log(bounds.high)
        centre = centre.clamp(bounds.low, bounds.high).log()
    else:
        low, high = bounds.low, bounds.high
        centre = centre.clamp(low, high)
    width = high - low
    value = centre + perturbation * width * noise
    # Fold into [low, high]: reflect at each end, the period being twice the width.
    phase = torch.remainder(value - low, 2 * width)
    value = low + torch.where(phase > width, 2 * width - phase, phase)
    return value.exp() if log else value


def describe_inputs(inlets: tuple[str, ...], names: list[str], signals: list[torch.Tensor],
                    params: list[torch.Tensor]) -> str:
    """The signal shapes and parameter values of a call, for a failure message:
    every row of a parameter of at most four values per node, the extent of larger ones."""
    shapes = ", ".join(f"{inlet} {list(x.shape)}" for inlet, x in zip(inlets, signals))
    values = []
    for name, value in zip(names, params):
        flat = value.detach().flatten(1)
        if flat.shape[1] <= 4:
            text = "[" + ", ".join("[" + ", ".join(f"{v:.4g}" for v in row.tolist()) + "]" for row in flat) + "]"
        else:
            text = f"{list(value.shape)} in [{float(flat.min()):.4g}, {float(flat.max()):.4g}]"
        values.append(f"{name}={text}")
    return f"signals {shapes or '(none)'}; parameters {', '.join(values) or '(none)'}"
