"""What an optimiser moves when it fits a console: each parameter in a space where one step means about as much."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._tree import ParameterModules, ParameterTree
from ..processor import ProcessorLike
from ..control import Control
from ..description import describe
from ..unconstrained import from_unconstrained, to_unconstrained, trainable_start

__all__ = ["is_black_box", "is_log_scaled", "LatentParameters"]


def is_black_box(processor: ProcessorLike) -> bool:
    """Whether ``processor``'s parameter tensors hold unconstrained values (its controls say so), as black boxes'."""
    return any(control.unconstrained for control in describe(processor).controls.values())


def is_log_scaled(name: str) -> bool:
    """Deprecated: read the declared scale instead (``describe(processor).control(name).scale == "log"``)."""
    warnings.warn("is_log_scaled guesses a scale from a parameter's name; read the declared one instead "
                  "(grafx_core.describe(processor).control(name).scale)", DeprecationWarning, stacklevel=2)
    return name.endswith(("_hz", "_ms", "_s")) or name in ("q", "ratio") or name.endswith(("_q", "_ratio"))


def _to_latent(control: Control | None, value: torch.Tensor) -> torch.Tensor:
    if control is None:
        return value
    if control.unconstrained:  # already unconstrained; a start in a sigmoid tail could not move
        return trainable_start(control, value) if control.differentiable else value
    return to_unconstrained(control, value, enforce_range=False)


def _from_latent(control: Control | None, latent: torch.Tensor) -> torch.Tensor:
    if control is None or control.unconstrained:
        return latent
    return from_unconstrained(control, latent, enforce_range=False)


class LatentParameters(nn.Module):
    """The trainable parameters of a fit, each in a space where one step means about as much.

    Each parameter moves in the open unconstrained space its declared
    :class:`~grafx_core.Control` gives (:mod:`grafx_core.unconstrained`):
    ``"log"`` controls (frequencies, times, Q, ratios) as logarithms, controls
    in dB in units of 6 dB, gate logits in units of 4, black-box controls in
    their raw (sigmoid) space, started out of the sigmoid's tails, and the
    rest as they are. :meth:`values` maps back to the processors' units.

    Args:
        parameters: ``{node_type: {name: [nodes, *shape]}}`` start values.
        processors: the processors by node type (their controls are read).
    """

    def __init__(self, parameters: Mapping[str, Mapping[str, torch.Tensor]], processors: Mapping[str, ProcessorLike]) -> None:
        super().__init__()
        self._types = list(parameters.keys())
        controls = {t: describe(processors[t]).controls for t in self._types}
        self._black_box = {t: is_black_box(processors[t]) for t in self._types}
        self._controls = {t: {name: controls[t].get((name,)) for name in parameters[t].keys()} for t in self._types}
        self.latent = nn.ModuleList(
            ParameterTree({name: nn.Parameter(_to_latent(self._controls[t][name], value.detach().clone()))
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
        trees: list[nn.ParameterDict] = list(self.latent)  # type: ignore[arg-type]
        return {t: {name: _from_latent(self._controls[t][name], p) for name, p in latent.items()}
                for t, latent in zip(self._types, trees)}

    def black_box_flags(self) -> list[bool]:
        """Per tensor of :meth:`parameters`, in its order: whether it holds black-box controls."""
        trees: list[nn.ParameterDict] = list(self.latent)  # type: ignore[arg-type]
        return [self._black_box[t] for t, latent in zip(self._types, trees) for _ in latent.values()]

    def controls(self) -> list[tuple[str, str, Control | None]]:
        """Per tensor of :meth:`parameters`, in its order: ``(node_type, name, declared control or None)``.

        A tensor is ``[nodes, *shape]``: its row ``n`` (flattened row-major) belongs to the type's ``n``-th node.
        """
        trees: list[nn.ParameterDict] = list(self.latent)  # type: ignore[arg-type]
        return [(t, name, self._controls[t][name]) for t, latent in zip(self._types, trees) for name in latent.keys()]

    def detached(self) -> nn.ModuleDict:
        """The current values as a fresh ``nn.ModuleDict`` of ``nn.ParameterDict`` (to save or render)."""
        # Escaping containers: a plug-in's control may be named like a container method (``clear``, ``type``).
        return ParameterModules({t: ParameterTree({k: nn.Parameter(v.detach().clone()) for k, v in p.items()})
                                 for t, p in self.values().items()})
