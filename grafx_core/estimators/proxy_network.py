"""A parameter-conditioned convolutional network that imitates an effect."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ProxyNetwork"]


class ProxyNetwork(nn.Module):
    """A dilated temporal convolution network conditioned on parameters by FiLM.

    Each layer applies a dilated convolution (dilation ``2**i``), scales and
    shifts its channels by an affine map of the parameters (FiLM), applies a
    GELU and adds a 1x1 projection back to the residual stream. The output adds
    a 1x1 mix of the input, and the last projection starts at zero, so an
    untrained proxy is the identity (when channel counts agree).

    Args:
        channels: input channels.
        parameters: number of parameter columns it is conditioned on (normalised
            ``[0, 1]`` for black boxes).
        out_channels: output channels (default ``channels``).
        hidden: channels of the residual stream.
        layers: number of dilated layers; receptive field is
            ``1 + (kernel_size - 1) * (2**layers - 1)`` samples.
        kernel_size: odd kernel size of the dilated convolutions.
        condition: width of the conditioning MLP.
    """

    def __init__(self, channels: int, parameters: int, *, out_channels: int | None = None, hidden: int = 32,
                 layers: int = 6, kernel_size: int = 5, condition: int = 64) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("hidden", hidden), ("layers", layers),
                            ("kernel_size", kernel_size), ("condition", condition)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ProxyNetwork: {name} must be a positive int, got {value!r}")
        if not isinstance(parameters, int) or parameters < 0:
            raise ValueError(f"ProxyNetwork: parameters must be a non-negative int, got {parameters!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"ProxyNetwork: kernel_size must be odd, got {kernel_size}")
        out_channels = channels if out_channels is None else out_channels
        self.config: dict[str, Any] = dict(channels=channels, parameters=parameters, out_channels=out_channels,
                                           hidden=hidden, layers=layers, kernel_size=kernel_size,
                                           condition=condition)
        self.input = nn.Conv1d(channels, hidden, 1)
        self.film = nn.Sequential(nn.Linear(max(parameters, 1), condition), nn.GELU(),
                                  nn.Linear(condition, 2 * layers * hidden))
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size, dilation=2**i, padding=(kernel_size - 1) // 2 * 2**i)
            for i in range(layers)
        )
        self.mixes = nn.ModuleList(nn.Conv1d(hidden, hidden, 1) for _ in range(layers))
        self.output = nn.Conv1d(hidden, out_channels, 1)
        self.skip = nn.Conv1d(channels, out_channels, 1, bias=False)
        with torch.no_grad():
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)
            if out_channels == channels:
                self.skip.weight.copy_(torch.eye(channels).unsqueeze(-1))

    @property
    def receptive_field(self) -> int:
        """Samples of input that one output sample depends on."""
        k, n = self.config["kernel_size"], self.config["layers"]
        return 1 + (k - 1) * (2**n - 1)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Imitate the effect.

        Args:
            x: ``[N, channels, samples]`` input.
            params: ``[N, parameters]`` conditioning.

        Returns:
            ``[N, out_channels, samples]``.
        """
        n = x.shape[0]
        if params.shape != (n, self.config["parameters"]):
            raise ValueError(
                f"ProxyNetwork: params must be [{n}, {self.config['parameters']}], got {tuple(params.shape)}"
            )
        if x.dim() != 3 or x.shape[1] != self.config["channels"]:
            raise ValueError(
                f"ProxyNetwork: x must be [N, {self.config['channels']}, samples], got {tuple(x.shape)}"
            )
        cond = params if params.shape[1] else params.new_zeros(n, 1)
        film = self.film(cond).view(n, self.config["layers"], 2, self.config["hidden"], 1)
        h = self.input(x)
        for i, (conv, mix) in enumerate(zip(self.convs, self.mixes)):
            z = conv(h) * (1.0 + film[:, i, 0]) + film[:, i, 1]
            h = h + mix(F.gelu(z))
        return self.skip(x) + self.output(h)
