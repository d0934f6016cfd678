"""Delays: a feedback delay and a learnable multitap delay, each applied as an exact FFT
convolution with its impulse response."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ._base import DSPProcessor, Number, per_node
from ._ranges import Range
from ._stream import MAX_HISTORY, sparse_block
from grafx_core.errors import StreamingError
from .fft import fft_convolve

__all__ = ["delay_impulse_response", "feedback_delay", "echo_taps", "Delay", "multitap_impulse_response", "MultitapDelay"]


def _per_node_controls(delay_ms: Number, feedback: Number, mix: Number, sample_rate: float,
                       like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(delay in samples, feedback, mix)``, each ``[nodes]``, broadcast to one node count."""
    delay = per_node(delay_ms, like, trailing=0) * (sample_rate / 1000.0)
    feedback = per_node(feedback, like, trailing=0)
    mix = per_node(mix, like, trailing=0)
    nodes = max(delay.shape[0], feedback.shape[0], mix.shape[0])
    return delay.expand(nodes), feedback.expand(nodes), mix.expand(nodes)


def _echoes(delay: torch.Tensor, feedback: torch.Tensor, mix: torch.Tensor,
            echoes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``echoes`` echoes of each node: ``(index, fraction, amplitude)``, each ``[nodes, echoes]``.

    Echo ``k`` lands at ``k * delay`` samples, split between whole sample ``index``
    (long) and the next by ``fraction``, with gain ``mix * feedback ** (k - 1)``.
    """
    k = torch.arange(1, echoes + 1, dtype=delay.dtype, device=delay.device)
    position = delay.unsqueeze(1) * k
    index = position.detach().floor()
    fraction = position - index
    # feedback ** (k - 1) as a running product: pow's gradient is NaN at 0 ** 0.
    powers = torch.cat([torch.ones_like(feedback).unsqueeze(1), feedback.unsqueeze(1).expand(-1, echoes - 1)], 1)
    amplitude = mix.unsqueeze(1) * torch.cumprod(powers, dim=1)
    return index.long(), fraction, amplitude


def delay_impulse_response(delay_ms: Number, feedback: Number, mix: Number, length: int,
                           sample_rate: float, like: torch.Tensor) -> torch.Tensor:
    """Impulse response of the feedback delay, truncated to ``length`` samples.

    ``h = (1 - mix) * delta[n] + mix * sum_{k >= 1} feedback**(k - 1) * delta[n - k D]``
    with ``D = delay_ms * sample_rate / 1000`` samples. A fractional ``k D`` is
    split between its two neighbouring samples by linear interpolation, which
    makes the response differentiable with respect to ``delay_ms``.

    Args:
        delay_ms: per node, ``> 0``.
        feedback: per node, ``|feedback| < 1`` for a decaying response.
        mix: per node; 0 is dry only, 1 echoes only.
        length: number of samples.
        sample_rate: in Hz.
        like: a tensor whose dtype and device the response takes.

    Returns:
        ``[nodes, length]``.
    """
    delay, feedback, mix = _per_node_controls(delay_ms, feedback, mix, sample_rate, like)
    nodes = delay.shape[0]
    # At least one echo, even past the end (where it is cut off): the response
    # then still depends on delay and feedback, with a zero gradient.
    echoes = max(1, math.floor((length - 1) / float(delay.detach().min()))) if length > 1 else 0
    silence = torch.zeros(nodes, length + 1, dtype=like.dtype, device=like.device)
    response = torch.cat([(1.0 - mix).unsqueeze(1), silence], dim=1)
    if echoes == 0:
        return response[:, :length]
    index, fraction, amplitude = _echoes(delay, feedback, mix, echoes)
    # Echoes past the end land in the two spare slots, which are cut off.
    index = index.clamp(max=length)
    response = response.scatter_add(1, index, amplitude * (1 - fraction))
    response = response.scatter_add(1, index + 1, amplitude * fraction)
    return response[:, :length]


def feedback_delay(x: torch.Tensor, delay_ms: Number, feedback: Number, mix: Number,
                   sample_rate: float = 44100.0) -> torch.Tensor:
    """Feedback delay on ``x`` ``[nodes, channels, samples]`` (see
    :func:`delay_impulse_response`); every channel gets the same echoes.

    A moving ``mix``, ``[nodes, 1, samples]``, blends the dry signal and the
    echoes sample by sample at the output: ``(1 - mix[n]) x[n] + mix[n] e[n]``.
    """
    mix = torch.as_tensor(mix, dtype=x.dtype, device=x.device)
    if mix.dim() == 3:
        echoes = delay_impulse_response(delay_ms, feedback, 1.0, x.shape[-1], sample_rate, x)
        wet = fft_convolve(x, echoes.unsqueeze(1), mode="causal")
        return x + mix * (wet - x)
    response = delay_impulse_response(delay_ms, feedback, mix, x.shape[-1], sample_rate, x)
    return fft_convolve(x, response.unsqueeze(1), mode="causal")


ECHO_TOLERANCE = 1e-9
"""A block-wise feedback delay keeps the echoes down to this fraction of the input."""


def echo_taps(delay_ms: Number, feedback: Number, mix: Number, sample_rate: float,
              like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The feedback delay's impulse response as sparse taps, for block-wise renders.

    The same echoes as :func:`delay_impulse_response` (same positions and
    interpolation), down to :data:`ECHO_TOLERANCE` of the input instead of
    cut at a signal's length.

    Returns:
        ``(index [nodes, taps], weight [nodes, taps])``: whole-sample delays and gains.

    Raises:
        StreamingError: the echoes last longer than :data:`grafx_dsp._stream.MAX_HISTORY` samples.
    """
    delay, feedback, mix = _per_node_controls(delay_ms, feedback, mix, sample_rate, like)
    loudest = float(feedback.detach().abs().max())
    echoes = 1 if loudest == 0 else max(1, 1 + math.ceil(math.log(ECHO_TOLERANCE) / math.log(min(loudest, 0.999999))))
    span = echoes * float(delay.detach().max()) + 2
    if span > MAX_HISTORY:
        raise StreamingError(
            f"Delay: feedback {loudest:g} at delay {float(delay.detach().max()) * 1000.0 / sample_rate:g} ms "
            f"echoes for {span:.0f} samples; a stream keeps at most {MAX_HISTORY}"
        )
    index, fraction, amplitude = _echoes(delay, feedback, mix, echoes)
    zero = torch.zeros_like(index[:, :1])
    return (torch.cat([zero, index, index + 1], dim=1),
            torch.cat([(1.0 - mix).unsqueeze(1), amplitude * (1 - fraction), amplitude * fraction], dim=1))


class Delay(DSPProcessor):
    """Feedback delay with dry/wet mix.

    Parameters (each ``[nodes, 1]``):
        delay_ms: range [1, 2000] ms, default 250 (fractional delays are
            linearly interpolated).
        feedback: range [-0.95, 0.95], default 0.3: gain of each further echo.
        mix: range [0, 1], default 0.5: ``(1 - mix) * dry + mix * echoes``.

    Signals: any channel count in, the same out.
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "delay_ms": Range(low=1.0, high=2000.0, default=250.0, floor=0.5, ceiling=3000.0, scale="log"),
            "feedback": Range(low=-0.95, high=0.95, default=0.3, floor=-0.99, ceiling=0.99),
            "mix": Range(low=0.0, high=1.0, default=0.5, floor=-0.1, ceiling=1.1, time_varying=True),
        }

    def forward(self, x: torch.Tensor, delay_ms: torch.Tensor, feedback: torch.Tensor,
                mix: torch.Tensor) -> torch.Tensor:
        return feedback_delay(x, self.limit("delay_ms", delay_ms), self.limit("feedback", feedback),
                              self.limit("mix", mix), self.sample_rate)

    def initial_state(self, *signals: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """An empty delay line (made by the first block)."""
        return {}

    def forward_stateful(self, state: Mapping[str, torch.Tensor], x: torch.Tensor, delay_ms: torch.Tensor,
                         feedback: torch.Tensor, mix: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block, the delay line (the input's recent past) carried across blocks; a moving ``mix``
        (``[nodes, 1, samples]``) blends dry and echoes sample by sample, as :func:`feedback_delay` does."""
        mix = self.limit("mix", mix)
        moving = mix.dim() == 3
        index, weight = echo_taps(self.limit("delay_ms", delay_ms), self.limit("feedback", feedback),
                                  1.0 if moving else mix, self.sample_rate, x)
        y, line = sparse_block(x, state.get("line"), index, weight)
        return (x + mix * (y - x) if moving else y), {"line": line}


def multitap_impulse_response(delay_ms: torch.Tensor, gain: torch.Tensor, length: int, sample_rate: float,
                              like: torch.Tensor) -> torch.Tensor:
    """Impulse response ``sum_k gain_k * delta[n - D_k]``, ``D_k = delay_ms_k * sample_rate / 1000``,
    truncated to ``length`` samples; a fractional ``D_k`` is split between its
    two neighbouring samples by linear interpolation (differentiable in ``delay_ms``).

    Args:
        delay_ms: ``[nodes, taps]``, ``> 0``.
        gain: ``[nodes, taps]``.
        length: number of samples.
        sample_rate: in Hz.
        like: a tensor whose dtype and device the response takes.

    Returns:
        ``[nodes, length]``.
    """
    position = delay_ms.to(like.dtype) * (sample_rate / 1000.0)
    index = position.detach().floor()
    fraction = position - index
    # Taps past the end land in the two spare slots, which are cut off.
    index = index.long().clamp(max=length)
    response = torch.zeros(position.shape[0], length + 2, dtype=like.dtype, device=like.device)
    response = response.scatter_add(1, index, gain.to(like.dtype) * (1 - fraction))
    response = response.scatter_add(1, index + 1, gain.to(like.dtype) * fraction)
    return response[:, :length]


class MultitapDelay(DSPProcessor):
    """A learnable multitap delay: ``n_taps`` echoes, each with its own delay and gain.

    ``y[n] = sum_k gain_k * x[n - D_k]`` with fractional delays ``D_k``
    interpolated linearly, applied as one FFT convolution. Wet only: wrap it
    in :class:`~grafx_dsp.containers.DryWet` for a dry/wet mix.

    Args:
        n_taps: number of taps (>= 1).
        sample_rate: in Hz.

    Parameters (each ``[nodes, n_taps]``):
        delay_ms: range [1, 2000] ms, defaults ``100, 200, ...`` ms.
        gain: range [-1, 1], defaults halving from 0.5 (0.5, 0.25, ...).

    Signals: any channel count in, the same out.
    """

    def __init__(self, n_taps: int = 4, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        if n_taps < 1:
            raise ValueError(f"MultitapDelay: n_taps must be >= 1, got {n_taps!r}")
        self.n_taps = int(n_taps)
        taps = (self.n_taps,)
        self.ranges = {
            "delay_ms": Range(low=1.0, high=2000.0, default=100.0, floor=0.5, ceiling=3000.0, shape=taps,
                              scale="log"),
            "gain": Range(low=-1.0, high=1.0, default=0.5, floor=-1.1, ceiling=1.1, shape=taps),
        }

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        k = torch.arange(self.n_taps, dtype=dtype, device=device)
        return {"delay_ms": (100.0 * (k + 1)).expand(nodes, -1).clone(),
                "gain": (0.5 * 0.5 ** k).expand(nodes, -1).clone()}

    def forward(self, x: torch.Tensor, delay_ms: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        response = multitap_impulse_response(self.limit("delay_ms", delay_ms), self.limit("gain", gain),
                                             x.shape[-1], self.sample_rate, x)
        return fft_convolve(x, response.unsqueeze(1), mode="causal")

    def initial_state(self, *signals: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """An empty delay line (made by the first block)."""
        return {}

    def forward_stateful(self, state: Mapping[str, torch.Tensor], x: torch.Tensor, delay_ms: torch.Tensor,
                         gain: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block, the delay line (the input's recent past) carried across blocks."""
        position = self.limit("delay_ms", delay_ms).to(x.dtype) * (self.sample_rate / 1000.0)
        index = position.detach().floor()
        fraction = position - index
        amount = self.limit("gain", gain).to(x.dtype)
        index = index.long()
        y, line = sparse_block(x, state.get("line"), torch.cat([index, index + 1], dim=1),
                               torch.cat([amount * (1 - fraction), amount * fraction], dim=1))
        return y, {"line": line}

    def extra_repr(self) -> str:
        return f"n_taps={self.n_taps}, sample_rate={self.sample_rate:g}"
