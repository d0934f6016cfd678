"""What an optimiser moves when it fits a console: each parameter in a space where one step means about as much."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._tree import ParameterModules, ParameterTree
from ..structure import GATE_PARAMETER

__all__ = ["is_black_box", "is_log_scaled", "LatentParameters"]

_DB_SCALE = 6.0  # one latent unit is 6 dB, so one Adam step moves a gain about as far as it moves a pan
_GATE_SCALE = 4.0  # one latent unit is 4 logit units: a few dozen steps can shut a gate that starts open


def is_black_box(processor: Any) -> bool:
    """Whether ``processor`` keeps raw (sigmoid-mapped) parameters, as black-box processors do."""
    return callable(getattr(processor, "raw_parameters", None)) and hasattr(processor, "specs")


def is_log_scaled(name: str) -> bool:
    """Whether a parameter named ``name`` is positive and best moved in ratios (Hz, ms, Q, ratio)."""
    return name.endswith(("_hz", "_ms", "_s")) or name in ("q", "ratio") or name.endswith(("_q", "_ratio"))


def _to_latent(name: str, value: torch.Tensor, black_box: bool) -> torch.Tensor:
    if black_box:
        return value  # already unconstrained (sigmoid-mapped into each control's range)
    if is_log_scaled(name):
        return torch.log(value)
    if name.endswith("_db"):
        return value / _DB_SCALE
    if name == GATE_PARAMETER:
        return value / _GATE_SCALE
    return value


def _from_latent(name: str, latent: torch.Tensor, black_box: bool) -> torch.Tensor:
    if black_box:
        return latent
    if is_log_scaled(name):
        return torch.exp(latent)
    if name.endswith("_db"):
        return latent * _DB_SCALE
    if name == GATE_PARAMETER:
        return latent * _GATE_SCALE
    return latent


class LatentParameters(nn.Module):
    """The trainable parameters of a fit, each in a space where one step means about as much.

    Frequencies, times, Q and ratios are optimised as logarithms, decibels
    in units of 6 dB, gate logits in units of 4, black-box controls in their raw (sigmoid) space, and
    the rest as they are. :meth:`values` maps back to the processors' units.

    Args:
        parameters: ``{node_type: {name: [nodes, *shape]}}`` start values.
        processors: the processors by node type (to tell black boxes apart).
    """

    def __init__(self, parameters: Mapping[str, Mapping[str, torch.Tensor]], processors: Mapping[str, Any]) -> None:
        super().__init__()
        self._types = list(parameters.keys())
        self._black_box = {t: is_black_box(processors[t]) for t in self._types}
        self.latent = nn.ModuleList(
            ParameterTree({name: nn.Parameter(_to_latent(name, value.detach().clone(), self._black_box[t]))
                           for name, value in parameters[t].items()})
            for t in self._types
        )

    def freeze(self, fixed: Mapping[str, Any]) -> list[str]:
        """Leave ``{node_type: (name, ...)}`` at their start values (no gradient, so the optimiser skips them);
        returns the ``"type.name"`` of those present."""
        frozen = []
        for node_type, latent in zip(self._types, self.latent):
            for name in fixed.get(node_type, ()):
                if name in latent:
                    latent[name].requires_grad_(False)
                    frozen.append(f"{node_type}.{name}")
        return frozen

    def values(self) -> dict[str, dict[str, torch.Tensor]]:
        """The parameters in the processors' units (differentiable with respect to the latents)."""
        return {t: {name: _from_latent(name, p, self._black_box[t]) for name, p in latent.items()}
                for t, latent in zip(self._types, self.latent)}

    def black_box_flags(self) -> list[bool]:
        """Per tensor of :meth:`parameters`, in its order: whether it holds black-box controls."""
        return [self._black_box[t] for t, latent in zip(self._types, self.latent) for _ in latent.values()]

    def detached(self) -> nn.ModuleDict:
        """The current values as a fresh ``nn.ModuleDict`` of ``nn.ParameterDict`` (to save or render)."""
        # Escaping containers: a plug-in's control may be named like a container method (``clear``, ``type``).
        return ParameterModules({t: ParameterTree({k: nn.Parameter(v.detach().clone()) for k, v in p.items()})
                                 for t, p in self.values().items()})
