"""Three small processors that follow the grafx-core processor protocol.

Each is a stateless ``nn.Module``: signals arrive as ``[nodes, channels,
samples]`` tensors (one per inlet), parameters as tensors whose first
dimension is ``nodes``, one row per node of the graph.
"""

from __future__ import annotations

import torch
from grafx_core import Control
from torch import nn

__all__ = ["SoftClip", "Crossfade", "MidSide"]


class SoftClip(nn.Module):
    """tanh saturation: ``y = tanh(x * 10 ** (drive_db / 20))``.

    The same curve as ``pedalboard.Distortion(drive_db)``, but differentiable.
    """

    gradient_kind = "autograd"

    def controls(self) -> dict[str, Control]:
        """One drive value per node: a mild default, and the drives worth exploring."""
        return {"drive_db": Control(low=-24.0, high=48.0, default=6.0, unit="dB")}

    def forward(self, x: torch.Tensor, drive_db: torch.Tensor) -> torch.Tensor:
        """Saturate each node's signal.

        Args:
            x: ``[nodes, channels, samples]``.
            drive_db: ``[nodes, 1]``, gain before the tanh in dB.

        Returns:
            ``[nodes, channels, samples]``.
        """
        gain = torch.pow(10.0, drive_db / 20.0)
        return torch.tanh(x * gain[:, :, None])


class Crossfade(nn.Module):
    """A weighted mix of two inlets: ``y = w * a + (1 - w) * b`` with ``w = sigmoid(mix_logit)``."""

    inlets = ("a", "b")
    gradient_kind = "autograd"

    def parameter_size(self) -> dict[str, int]:
        """One mix value per node."""
        return {"mix_logit": 1}

    def default_parameters(self) -> dict[str, float]:
        """An equal mix."""
        return {"mix_logit": 0.0}

    def forward(self, a: torch.Tensor, b: torch.Tensor, mix_logit: torch.Tensor) -> torch.Tensor:
        """Mix ``a`` and ``b``.

        Args:
            a: ``[nodes, channels, samples]``.
            b: ``[nodes, channels, samples]``, or mono ``[nodes, 1, samples]``
                (broadcast to ``a``'s channels).
            mix_logit: ``[nodes, 1]``, logit of the weight of ``a``
                (0: equal mix, large positive: only ``a``).

        Returns:
            ``[nodes, channels, samples]``.
        """
        weight = torch.sigmoid(mix_logit)[:, :, None]
        return weight * a + (1.0 - weight) * b


class MidSide(nn.Module):
    """Stereo to mid/side: ``mid = (left + right) / 2``, ``side = (left - right) / 2``.

    No parameters; two outlets, returned in the order of ``outlets``. Stereo
    only: the engine raises :class:`~grafx_core.InletChannelError` for
    anything else, and the conformance kit feeds stereo.
    """

    outlets = ("mid", "side")
    inlet_channels = 2
    gradient_kind = "autograd"

    def parameter_size(self) -> dict[str, int]:
        """No parameters."""
        return {}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a stereo signal.

        Args:
            x: ``[nodes, 2, samples]``.

        Returns:
            ``(mid, side)``, each ``[nodes, 1, samples]``.
        """
        left, right = x[:, :1], x[:, 1:]
        return (left + right) / 2, (left - right) / 2
