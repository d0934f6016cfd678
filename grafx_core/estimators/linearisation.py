"""Linear stand-ins for a black box, fitted to what its forward pass saw.

A :class:`Linearisation` is a linear operator ``A`` from input signals
``[N, C_in, L]`` to output signals ``[N, C_out, L]`` built from one input
``x`` and the effect's output ``y`` (and, for ``"diagonal"``, two extra renders
at perturbed inputs). Its adjoint ``A^T`` applied to the output's gradient
is the input signal's estimated gradient; :meth:`Linearisation.apply` is what
the automatic choice compares against the effect's true response.

Kinds:

``"spectral-ratio"``
    Short-time spectral ratio ``M = (Y X* + eps) / (|X|^2 + eps)`` per STFT
    bin and frame, ``A v = ISTFT(M * STFT(v))``. ``eps`` is ``shrink`` times
    the row's mean ``|X|^2``, so ``M`` tends to 1 (identity) where the input
    is quiet. Right for time-varying effects (compressors, gates) and most
    filters.
``"fft-ratio"``
    A causal impulse response ``h`` of ``L`` samples, the least-squares fit of
    ``(x * h)[:L] = y`` by :data:`CAUSAL_ITERATIONS` conjugate-gradient steps,
    with ``A v = (v * h)[:L]`` computed as ``irfft(H rfft(v, 2L), 2L)[:L]``
    (``H = rfft(h, 2L)``, a linear, not circular, convolution). Right for
    time-invariant effects with long responses (delays, reverbs). The plain
    ratio ``Y X* / |X|^2`` over the zero-padded signals is not used: ``y``
    lacks the tail that rings on past its last sample, so the ratio fits an
    effect that cuts the tail off, and a reverb's tail is a large part of it
    on short signals (measured in ``bench/seam.py``, 0.25 s tracks: upstream
    cosine 0.77 and 2.3x the gradient's norm against 0.998 and 1.00 for the fit).
    What the fit leaves, ``r = y - (x * h)[:L]`` (all but nothing for a
    time-invariant effect; a compressor's gain changes), is added as the ratio
    ``R X* / (|X|^2 + eps)``, so that ``A x = y`` as for the other ratios. Rows
    with a silent input get the identity (``h`` a unit impulse).
``"smooth-gain"``
    A time-varying gain ``G = (S[y x] + eps) / (S[x^2] + eps)`` with ``S`` a
    moving average of ``window`` samples, ``A v = G v``.
``"diagonal"``
    The per-sample derivative of a memoryless effect, from two renders at
    ``x ± h s`` with random signs ``s``: ``d = (f(x + h s) - f(x - h s)) s / 2h``,
    ``A v = d v``. Exact (to second order in ``h``) for memoryless effects only,
    up to a latency: where the change follows the signs ``k`` samples late (up to
    :data:`MAX_LAG`; the lag with the largest correlation), ``d = (f(x + h s) - f(x - h s)) s_k / 2h``
    with ``s_k`` the signs delayed by ``k``, and ``A v = d v_k``. Central, not
    one-sided: a one-sided difference adds ``f'' h s / 2``, noise of random sign
    that is small next to ``d`` but not next to the derivative along ``x``
    itself, which a saturator all but flattens (measured on ``dsp:distortion``
    driven 22-40 dB: the upstream gain's gradient 8-16x too large, of either
    sign, one-sided; exact to 0.1 %, central).
    Differences within a few float32 roundings of the output count as zero:
    where a saturated effect's true change is below its output's resolution,
    ``d`` would otherwise be rounding noise divided by ``h``.

Channels: where the effect returns as many channels as it takes, each channel
is linearised on its own (cross-channel terms, such as a stereo-linked
compressor's, are left out). Where the counts differ (mono to stereo, stereo
to mono), every output channel is linearised against the mean of the input
channels, and each input channel receives ``1 / C_in`` of the mean's gradient
(exact for effects of the channel mean; for ``"diagonal"`` all input channels
get the same signs, so ``d`` is the response to a common-mode change).

Everything is computed on the signals' device, in their dtype (float32 at
least: half precision has no CPU FFT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import EstimatorError

__all__ = ["LINEARISATIONS", "Linearisation", "linearise", "diagonal_perturbation", "N_FFT", "HOP",
           "SHRINK", "GAIN_WINDOW", "CAUSAL_ITERATIONS", "MAX_LAG"]

LINEARISATIONS = ("spectral-ratio", "fft-ratio", "smooth-gain", "diagonal")
"""The kinds of :class:`Linearisation`, each also a ``signal_gradient`` name."""

N_FFT = 2048
"""STFT frame of ``"spectral-ratio"`` in samples (smaller for shorter signals)."""
HOP = 512
"""STFT hop of ``"spectral-ratio"`` in samples (a quarter of the frame)."""
SHRINK = 1e-3
"""``eps`` of the ratios relative to the row's mean input power."""
GAIN_WINDOW = 1024
"""Moving-average length of ``"smooth-gain"`` in samples."""
MAX_LAG = 64
"""Longest latency in samples that ``"diagonal"`` looks for (see the module documentation)."""
CAUSAL_ITERATIONS = 30
"""Conjugate-gradient steps of the ``"fft-ratio"`` impulse-response fit (measured on the
reverb in ``bench/seam.py``, the fit alone: upstream cosine 0.995 after 5, 0.997 after 30 and 60)."""


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _pairs(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The input each output channel is linearised against: ``[N, C_out, L]``."""
    if x.shape[1] == y.shape[1]:
        return x
    return x.mean(dim=1, keepdim=True).expand(-1, y.shape[1], -1)


def _fold(g: torch.Tensor, channels_in: int) -> torch.Tensor:
    """Adjoint of :func:`_pairs`: output-channel gradients ``[N, C_out, L]`` to ``[N, C_in, L]``."""
    if g.shape[1] == channels_in:
        return g
    return (g.sum(dim=1, keepdim=True) / channels_in).expand(-1, channels_in, -1).contiguous()


def _frame(length: int) -> tuple[int, int]:
    n_fft = N_FFT
    while n_fft > 16 and n_fft > length:
        n_fft //= 2
    return n_fft, max(1, n_fft // 4)


@dataclass
class Linearisation:
    """A linear operator ``A: [N, C_in, L] -> [N, C_out, L]`` standing in for an effect.

    Made by :func:`linearise`. ``factor`` is complex ``[N, C_out, F, T]``
    (spectral ratio), complex ``[N, C_out, L + 1]`` (FFT ratio, over ``2L`` samples) or real
    ``[N, C_out, L]`` (smooth gain, diagonal).
    """

    kind: str
    factor: torch.Tensor
    channels_in: int
    length: int
    lag: torch.Tensor | None = None

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for ``v`` shaped like the input; returns ``[N, C_out, L]`` in ``v``'s dtype."""
        dtype = v.dtype
        v = v.to(_work_dtype(dtype))
        if v.shape[1] != self.factor.shape[1]:
            v = v.mean(dim=1, keepdim=True).expand(-1, self.factor.shape[1], -1)
        return self._forward(v).to(dtype)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """``A^T g`` for ``g`` shaped like the output: the input's ``[N, C_in, L]`` gradient, ``g``'s dtype."""
        dtype = g.dtype
        g = g.to(_work_dtype(dtype))
        if self.kind == "spectral-ratio":
            # A is real-linear; autograd through it gives its exact transpose.
            with torch.enable_grad():
                v = torch.zeros_like(g, requires_grad=True)
                out = torch.autograd.grad(self._forward(v), v, g)[0]
        elif self.kind == "fft-ratio":
            n = 2 * self.length
            out = torch.fft.irfft(self.factor.conj() * torch.fft.rfft(g, n=n), n=n)[..., :self.length]
        elif self.lag is not None:
            out = _delay(self.factor * g, -self.lag)
        else:
            out = self.factor * g
        return _fold(out, self.channels_in).to(dtype)

    def _forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "spectral-ratio":
            n, c, length = v.shape
            n_fft, hop = _frame(length)
            window = torch.hann_window(n_fft, dtype=v.dtype, device=v.device)
            spec = torch.stft(v.reshape(n * c, length), n_fft, hop, window=window, center=True,
                              return_complex=True)
            z = spec * self.factor.reshape(n * c, *self.factor.shape[2:])
            out = torch.istft(z, n_fft, hop, window=window, center=True, length=length)
            return out.reshape(n, c, length)
        if self.kind == "fft-ratio":
            n = 2 * self.length
            return torch.fft.irfft(self.factor * torch.fft.rfft(v, n=n), n=n)[..., :self.length]
        if self.lag is not None:
            return self.factor * _delay(v, self.lag)
        return self.factor * v


def _ratio(cross: torch.Tensor, power: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    eps = SHRINK * power.mean(dim=dims, keepdim=True) + torch.finfo(power.dtype).tiny
    return (cross + eps) / (power + eps)


def _causal_response(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``rfft(h, 2L)`` for the ``L``-sample ``h`` that least-squares fits ``(ref * h)[:L] = out``, per row and channel."""
    length = ref.shape[-1]
    n = 2 * length
    fx = torch.fft.rfft(ref, n=n)

    def forward(h: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft(fx * torch.fft.rfft(h, n=n), n=n)[..., :length]

    def transpose(r: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft(fx.conj() * torch.fft.rfft(r, n=n), n=n)[..., :length]

    # CGLS from the best plain gain (1 for a silent input): stopping early keeps h to what the signal
    # pins down (no blow-up at spectral nulls) and leaves that gain in the bins where the input is quiet.
    tiny = torch.finfo(out.dtype).tiny
    power = ref.square().sum(-1, keepdim=True)
    gain = torch.where(power > 0, (ref * out).sum(-1, keepdim=True) / power.clamp(min=tiny), torch.ones_like(power))
    h = torch.zeros_like(out)
    h[..., :1] = gain
    r = out - gain * ref
    s = transpose(r)
    p, gamma = s, s.square().sum(-1, keepdim=True)
    for _ in range(CAUSAL_ITERATIONS):
        q = forward(p)
        alpha = gamma / q.square().sum(-1, keepdim=True).clamp(min=tiny)
        h, r = h + alpha * p, r - alpha * q
        s = transpose(r)
        following = s.square().sum(-1, keepdim=True)
        p, gamma = s + following / gamma.clamp(min=tiny) * p, following
    return torch.fft.rfft(h, n=n)


def _delay(v: torch.Tensor, lag: torch.Tensor) -> torch.Tensor:
    """``v`` ``[N, C, L]`` delayed by ``lag[n]`` samples per row (negative: advanced), zeros shifted in."""
    length = v.shape[-1]
    source = torch.arange(length, device=v.device).unsqueeze(0) - lag.to(v.device).unsqueeze(1)  # [N, L]
    inside = (source >= 0) & (source < length)
    picked = torch.gather(v, 2, source.clamp(0, length - 1).unsqueeze(1).expand(-1, v.shape[1], -1))
    return torch.where(inside.unsqueeze(1), picked, torch.zeros_like(picked))


def _latency(change: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Per row, the delay in ``[0, MAX_LAG]`` samples at which the output's change follows the signs most closely.

    A memoryless effect answers at lag 0; one with a few samples of latency (an oversampling
    saturator's filters) at its latency, where a lag-0 diagonal would be uncorrelated noise.
    """
    length = change.shape[-1]
    n = 2 * length
    correlation = torch.fft.irfft(torch.fft.rfft(change, n=n) * torch.fft.rfft(signs, n=n).conj(), n=n)
    window = correlation.sum(dim=1)[:, :min(MAX_LAG, length - 1) + 1].abs()
    return window.argmax(dim=1)


def _moving_average(v: torch.Tensor, window: int) -> torch.Tensor:
    """Centred moving average of ``window`` samples along the last axis (edges average what exists)."""
    length = v.shape[-1]
    window = max(1, min(window, length))
    c = torch.nn.functional.pad(v.to(torch.float64).cumsum(-1), (1, 0))
    lo = (torch.arange(length, device=v.device) - window // 2).clamp(0, length)
    hi = (lo + window).clamp(max=length)
    return ((c[..., hi] - c[..., lo]) / (hi - lo).to(torch.float64)).to(v.dtype)


def diagonal_perturbation(x: torch.Tensor, signs: torch.Tensor, step: float,
                          channels_out: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A perturbed input of ``"diagonal"`` and the per-row step ``h`` (the other is made with ``-signs``).

    Args:
        x: ``[N, C_in, L]`` input.
        signs: ``[N, C_in, L]`` random signs (any dtype); where the effect
            changes the channel count, channel 0's signs are used on every channel.
        step: relative step; ``h = step * max(rms(x), 1e-3)`` per row.
        channels_out: the effect's output channels (default: ``C_in``).

    Returns:
        ``(x + h s, h)`` with ``h`` shaped ``[N, 1, 1]``, in ``x``'s dtype and device.
    """
    s = signs.to(device=x.device, dtype=x.dtype)
    if channels_out is not None and channels_out != x.shape[1]:
        s = s[:, :1].expand_as(x)
    rms = x.detach().to(_work_dtype(x.dtype)).pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    h = (step * rms.clamp(min=1e-3)).to(x.dtype)
    return x + h * s, h


def linearise(kind: str, x: torch.Tensor, y: torch.Tensor, *, perturbed: torch.Tensor | None = None,
              signs: torch.Tensor | None = None, h: torch.Tensor | None = None,
              opposite: torch.Tensor | None = None) -> Linearisation:
    """Fit a :class:`Linearisation` of ``kind`` to the effect's input ``x`` and output ``y``.

    Args:
        kind: one of :data:`LINEARISATIONS`.
        x: ``[N, C_in, L]`` input the effect saw.
        y: ``[N, C_out, L]`` its output.
        perturbed, signs, h: for ``"diagonal"`` only: the output at the input
            :func:`diagonal_perturbation` made, its signs and its step.
        opposite: for ``"diagonal"``: the output at the input made with ``-signs`` (a central
            difference, as the estimators use); without it, a one-sided difference from ``y``.

    Raises:
        EstimatorError: an unknown kind, mismatched shapes, or ``"diagonal"``
            without its perturbed render.
    """
    if kind not in LINEARISATIONS:
        raise EstimatorError(f"unknown linearisation {kind!r}; expected one of {LINEARISATIONS}")
    if x.dim() != 3 or y.dim() != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        raise EstimatorError(f"{kind}: input {tuple(x.shape)} and output {tuple(y.shape)} must be "
                             "[nodes, channels, samples] with the same nodes and samples")
    work = _work_dtype(y.dtype)
    channels_in, length = x.shape[1], x.shape[2]
    ref, out = _pairs(x.detach(), y.detach()).to(work), y.detach().to(work)
    if kind == "spectral-ratio":
        n, c = out.shape[:2]
        n_fft, hop = _frame(length)
        window = torch.hann_window(n_fft, dtype=work, device=x.device)

        def stft(v: torch.Tensor) -> torch.Tensor:
            spec = torch.stft(v.reshape(n * c, length), n_fft, hop, window=window, center=True,
                              return_complex=True)
            return spec.reshape(n, c, *spec.shape[1:])

        sx, sy = stft(ref), stft(out)
        factor = _ratio(sy * sx.conj(), sx.abs().square(), (2, 3))
    elif kind == "fft-ratio":
        fx = torch.fft.rfft(ref, n=2 * length)
        fitted = _causal_response(ref, out)
        # What the fit leaves (a time-varying effect's gain changes) goes to the ratio, so that A x = y still.
        rest = torch.fft.rfft(out - torch.fft.irfft(fx * fitted, n=2 * length)[..., :length], n=2 * length)
        power = fx.abs().square()
        eps = SHRINK * power.mean(dim=2, keepdim=True) + torch.finfo(work).tiny
        factor = fitted + rest * fx.conj() / (power + eps)
    elif kind == "smooth-gain":
        power = ref.square()
        eps = SHRINK * power.mean(dim=2, keepdim=True) + torch.finfo(work).tiny
        factor = (_moving_average(out * ref, GAIN_WINDOW) + eps) / (_moving_average(power, GAIN_WINDOW) + eps)
    else:
        if perturbed is None or signs is None or h is None:
            raise EstimatorError("diagonal: needs the perturbed render, its signs and its step")
        s = signs.to(device=y.device, dtype=work)
        if s.shape[1] != out.shape[1]:
            s = s[:, :1].expand_as(out)
        moved = perturbed.detach().to(work)
        base = out if opposite is None else opposite.detach().to(work)
        change = moved - base
        resolution = 4 * torch.finfo(torch.float32).eps * torch.maximum(moved.abs(), base.abs())
        change = torch.where(change.abs() > resolution, change, torch.zeros_like(change))
        lag = _latency(change, s)
        factor = change * _delay(s, lag) / (h.to(work) * (1 if opposite is None else 2))
        return Linearisation(kind, factor, channels_in, length, lag)
    return Linearisation(kind, factor, channels_in, length)
