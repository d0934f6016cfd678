"""Fitting a console to a target mix: latent parameters, a spectral loss, Adam and a progress bar."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import torch
from torch import nn

from .console import is_black_box

__all__ = ["is_log_scaled", "LatentParameters", "SpectralLoss", "Progress", "FitResult", "fit"]

_DB_SCALE = 6.0  # one latent unit is 6 dB, so one Adam step moves a gain about as far as it moves a pan


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
    return value


def _from_latent(name: str, latent: torch.Tensor, black_box: bool) -> torch.Tensor:
    if black_box:
        return latent
    if is_log_scaled(name):
        return torch.exp(latent)
    if name.endswith("_db"):
        return latent * _DB_SCALE
    return latent


class LatentParameters(nn.Module):
    """What the optimiser moves: each parameter in a space where one step means about as much.

    Frequencies, times, Q and ratios are optimised as logarithms, decibels
    in units of 6 dB, black-box controls in their raw (sigmoid) space, and
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
            nn.ParameterDict({name: nn.Parameter(_to_latent(name, value.detach().clone(), self._black_box[t]))
                              for name, value in parameters[t].items()})
            for t in self._types
        )

    def values(self) -> dict[str, dict[str, torch.Tensor]]:
        """The parameters in the processors' units (differentiable with respect to the latents)."""
        return {t: {name: _from_latent(name, p, self._black_box[t]) for name, p in latent.items()}
                for t, latent in zip(self._types, self.latent)}

    def detached(self) -> nn.ModuleDict:
        """The current values as a fresh ``nn.ModuleDict`` of ``nn.ParameterDict`` (to save or render)."""
        return nn.ModuleDict({t: nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in p.items()})
                              for t, p in self.values().items()})


class SpectralLoss:
    """Multi-resolution STFT loss against a fixed target: spectral convergence plus log-magnitude L1.

    Each channel is compared on its own, so that level and panning both count.

    Args:
        target: ``[channels, samples]``.
        fft_sizes: STFT sizes (hop a quarter, Hann window).
    """

    def __init__(self, target: torch.Tensor, fft_sizes: tuple[int, ...] = (256, 1024, 4096)) -> None:
        self.fft_sizes = fft_sizes
        self._targets = [self._magnitude(target, n) for n in fft_sizes]

    @staticmethod
    def _magnitude(x: torch.Tensor, n: int) -> torch.Tensor:
        window = torch.hann_window(n, dtype=x.dtype, device=x.device)
        return torch.stft(x, n, hop_length=n // 4, window=window, return_complex=True).abs()

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """The loss of ``y`` (``[channels, samples]``), a scalar."""
        total = y.new_zeros(())
        for n, target in zip(self.fft_sizes, self._targets):
            magnitude = self._magnitude(y, n)
            convergence = torch.linalg.norm(magnitude - target) / torch.linalg.norm(target).clamp_min(1e-8)
            log_distance = (torch.log(magnitude + 1e-5) - torch.log(target + 1e-5)).abs().mean()
            total = total + convergence + log_distance
        return total / len(self.fft_sizes)


class Progress:
    """``fit [######......] 40/120  loss 0.512 (x0.43 of start)  1.05 s/step  eta 1:24``.

    Redrawn in place on a terminal (at most five times a second); elsewhere a
    line is printed at every tenth of the run, so logs stay readable.
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.width = total, width
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._last_tenth = -1

    def update(self, step: int, loss: float, first_loss: float, seconds_per_step: float) -> None:
        """Show that ``step`` of ``total`` steps are done."""
        done = step >= self.total
        tenth = 10 * step // max(self.total, 1)
        now = time.monotonic()
        if self.interactive and not done and now - self._last_draw < 0.2:
            return
        if not self.interactive and not done and tenth == self._last_tenth:
            return
        self._last_draw, self._last_tenth = now, tenth
        filled = self.width * step // max(self.total, 1)
        eta = seconds_per_step * (self.total - step)
        line = (f"fit [{'#' * filled}{'.' * (self.width - filled)}] {step}/{self.total}  loss {loss:.4f} "
                f"(x{loss / first_loss:.2f} of start)  {seconds_per_step:.2f} s/step  eta {int(eta // 60)}:{int(eta % 60):02d}")
        self.stream.write(("\r" + line) if self.interactive else line + "\n")
        if self.interactive and done:
            self.stream.write("\n")
        self.stream.flush()


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        losses: the loss before each step (``len == steps``), then the final loss.
        seconds_per_step: mean wall-clock time of one step (render, loss, backward, update).
    """

    losses: list[float]
    seconds_per_step: float


def fit(render: Callable[[Mapping[str, Any]], torch.Tensor], latent: LatentParameters,
        loss: Callable[[torch.Tensor], torch.Tensor], steps: int, learning_rate: float = 0.05,
        progress: Progress | None = None) -> FitResult:
    """Gradient descent (Adam, learning rate decaying tenfold over the run) on ``loss(render(values))``.

    Args:
        render: parameters in the processors' units -> ``[channels, samples]`` mix.
        latent: the parameters to train.
        loss: the mix -> a scalar.
        steps: optimiser steps.
        learning_rate: the initial learning rate in latent units.
        progress: shows step, loss and speed.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    optimiser = torch.optim.Adam(latent.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 0.1 ** (k / max(steps, 1)))
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        optimiser.zero_grad(set_to_none=True)
        value = loss(render(latent.values()))
        if not torch.isfinite(value):
            raise FloatingPointError(f"the loss became {value.item()} at step {step}")
        value.backward()
        optimiser.step()
        schedule.step()
        losses.append(value.item())
        if progress is not None:
            progress.update(step + 1, losses[-1], losses[0], (time.perf_counter() - start) / (step + 1))
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        losses.append(loss(render(latent.values())).item())
    return FitResult(losses, elapsed / max(steps, 1))
