"""Stand-ins that follow an effect's tangent, from a few renders at structured input changes.

The ratios of :mod:`~grafx_core.estimators.linearisation` are fitted to one
input and its output, so they map ``x`` to ``y`` exactly: a secant. Where the
effect reacts to its input's level (a compressor pulls a louder input back,
a saturator flattens it) the tangent differs from the secant, and the secant's
gradient is too large and points the wrong way (measured in ``bench/seam.py``).
The stand-ins here render the effect at a few changed inputs in the backward
pass and use the Jacobian-vector products ``J d ≈ (f(x + h d) - f(x)) / h``
those renders give.

``"gain-tangent"`` (one render)
    A dynamics processor's output is a time-varying gain ``g`` on its input,
    and its change is ``dy = g dx + x dg(dx)``. ``g`` is the smooth gain
    ``S[y x] / S[x^2]``; the gain's reaction comes from one render at the
    scaled input ``x (1 + h)``: ``q = S[r x] / S[x^2]`` with
    ``r = (f(x (1 + h)) - y) / h - y`` (the gain change per unit of relative
    level rise), and a change ``dx`` moves the level by the smoothed relative
    change ``rho = E[Σ_c x dx] / E[Σ_c x^2]`` (``E`` a causal exponential
    smoother of :data:`ENVELOPE_SAMPLES`): ``A dx = g dx + x q rho``.
``"band-tangent"`` (:data:`TANGENT_BANDS` renders)
    A low-rank correction of the spectral ratio ``B`` (see
    :mod:`~grafx_core.estimators.linearisation`): the input is split into
    :data:`TANGENT_BANDS` bands of equal energy (smooth masks that sum to one,
    so the bands add up to ``x``), one render per band gives ``J b_k``, and
    ``A v = B v + Σ_k (J b_k - B b_k) c_k(v)`` with ``c(v)`` the least-squares
    coordinates of ``v`` on the bands. ``A`` equals the effect's tangent on
    every band (so on ``x`` itself: what an upstream gain or EQ changes),
    and the spectral ratio elsewhere. Right for effects with filters around a
    nonlinearity, where neither a gain nor a ratio is a tangent.

Channels follow the linearisations' rule (each channel on its own where the
counts match; the channel mean otherwise). Everything is computed on the
signals' device in their dtype (float32 at least).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import EstimatorError
from ._rules import GradientRule, Gradients, Saved, cpu_rows, node_rows
from .linearisation import SHRINK, Linearisation, _fold, _moving_average, _pairs, _work_dtype, linearise
from .target import RenderJob

__all__ = ["TANGENTS", "TANGENT_BANDS", "ENVELOPE_SAMPLES", "GAIN_SAMPLES", "TangentStandIn", "GainTangent",
           "BandTangent", "tangent_directions", "renders_per_backward", "tangent_renders", "fit_tangent", "TangentSignalRule"]

TANGENTS = ("gain-tangent", "band-tangent")
"""The kinds of tangent stand-in, each also a ``signal_gradient`` name."""
TANGENT_BANDS = 4
"""Bands (so renders per node per backward) of ``"band-tangent"``."""
ENVELOPE_SAMPLES = 256
"""Time constant of ``"gain-tangent"``'s level smoother, in samples."""
GAIN_SAMPLES = 64
"""Moving-average length of ``"gain-tangent"``'s gains, in samples."""
_BAND_EDGE_OCTAVES = 0.5  # width of the raised-cosine crossover between neighbouring bands


def renders_per_backward(kind: str) -> int:
    """Extra renders per node per backward of a tangent stand-in."""
    return TANGENT_BANDS if kind == "band-tangent" else 1


def _band_masks(x: torch.Tensor, bands: int) -> torch.Tensor:
    """``[N, bands, F]`` real masks over ``rfft`` bins that sum to one, splitting each row's energy evenly."""
    spectrum = torch.fft.rfft(x.to(_work_dtype(x.dtype)))
    power = spectrum.abs().square().sum(dim=1).to(torch.float64)  # [N, F]
    bins = power.shape[-1]
    cumulative = power.cumsum(-1)
    total = cumulative[:, -1:].clamp(min=1e-300)
    fractions = torch.arange(1, bands, dtype=torch.float64, device=x.device) / bands
    edges = torch.searchsorted(cumulative / total, fractions.expand(power.shape[0], -1).contiguous())
    log_bin = torch.log2(torch.arange(bins, dtype=torch.float64, device=x.device).clamp(min=0.5))
    log_edge = torch.log2(edges.to(torch.float64).clamp(min=1.0))  # [N, bands - 1]
    # steps[k]: 1 below edge k, 0 above, a raised cosine across it; band k is steps[k] - steps[k - 1],
    # with 0 below the first band and 1 above the last, so that the bands add up to one.
    t = ((log_bin.unsqueeze(0).unsqueeze(0) - log_edge.unsqueeze(-1)) / _BAND_EDGE_OCTAVES + 0.5).clamp(0, 1)
    steps = 0.5 * (1 + torch.cos(math.pi * t))  # [N, bands - 1, F]
    ones = torch.ones_like(steps[:, :1])
    zeros = torch.zeros_like(steps[:, :1])
    return (torch.cat([steps, ones], dim=1) - torch.cat([zeros, steps], dim=1)).to(spectrum.real.dtype)


def tangent_directions(kind: str, x: torch.Tensor) -> torch.Tensor:
    """The input changes ``kind`` renders along: ``[N, K, C_in, L]`` in ``x``'s dtype.

    ``"gain-tangent"``: ``x`` itself (``K = 1``). ``"band-tangent"``: ``x`` split into
    :data:`TANGENT_BANDS` bands of equal energy that add up to ``x``.
    """
    if kind == "gain-tangent":
        return x.unsqueeze(1)
    if kind != "band-tangent":
        raise EstimatorError(f"unknown tangent stand-in {kind!r}; expected one of {TANGENTS}")
    length = x.shape[-1]
    work = _work_dtype(x.dtype)
    masks = _band_masks(x, TANGENT_BANDS)  # [N, K, F]
    spectrum = torch.fft.rfft(x.to(work))  # [N, C, F]
    bands = torch.fft.irfft(masks.unsqueeze(2) * spectrum.unsqueeze(1), n=length)
    return bands.to(x.dtype)


def tangent_renders(kind: str, x: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs to render for ``kind``, their directions and steps.

    Args:
        kind: one of :data:`TANGENTS`.
        x: ``[N, C_in, L]`` input of the call.
        step: relative step: each direction is scaled so that its change has
            ``step`` times the row's RMS (at least ``step * 1e-3``).

    Returns:
        ``(moved, directions, h)``: ``moved`` ``[N * K, C_in, L]`` (node-major,
        ``x + h_k d_k``), ``directions`` ``[N, K, C_in, L]``, ``h`` ``[N, K, 1, 1]``.
    """
    directions = tangent_directions(kind, x)
    work = _work_dtype(x.dtype)
    rms = x.detach().to(work).pow(2).mean(dim=(1, 2)).sqrt().clamp(min=1e-3)  # [N]
    own = directions.to(work).pow(2).mean(dim=(2, 3)).sqrt()  # [N, K]
    h = (step * rms.unsqueeze(1) / own.clamp(min=1e-30)).where(own > 0, torch.full_like(own, step))
    h = h.to(x.dtype).unsqueeze(-1).unsqueeze(-1)
    moved = (x.unsqueeze(1) + h * directions).flatten(0, 1)
    return moved, directions, h


class TangentStandIn:
    """A linear operator ``A: [N, C_in, L] -> [N, C_out, L]`` fitted to renders along structured directions."""

    kind: str = ""

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for ``v`` shaped like the input; ``[N, C_out, L]`` in ``v``'s dtype."""
        raise NotImplementedError

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """``A^T g`` for ``g`` shaped like the output; the input's ``[N, C_in, L]`` gradient in ``g``'s dtype."""
        raise NotImplementedError


def _smoother(length: int, samples: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``rfft`` over ``2 length`` of a causal, unit-sum exponential kernel of time constant ``samples``."""
    taps = min(length, int(8 * samples) + 1)
    kernel = torch.exp(-torch.arange(taps, device=device, dtype=dtype) / samples)
    return torch.fft.rfft(kernel / kernel.sum(), n=2 * length)


def _convolve(v: torch.Tensor, kernel: torch.Tensor, adjoint: bool = False) -> torch.Tensor:
    length = v.shape[-1]
    k = kernel.conj() if adjoint else kernel
    return torch.fft.irfft(torch.fft.rfft(v, n=2 * length) * k, n=2 * length)[..., :length]


class GainTangent(TangentStandIn):
    """``A dx = g dx + x q rho(dx)`` (see the module documentation).

    Args:
        x: ``[N, C_in, L]`` input the effect saw.
        y: ``[N, C_out, L]`` its output.
        moved: ``[N, C_out, L]`` output at ``x (1 + h)``.
        h: ``[N, 1, 1, 1]`` (or ``[N, 1, 1]``) relative steps.
    """

    kind = "gain-tangent"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, moved: torch.Tensor, h: torch.Tensor) -> None:
        work = _work_dtype(y.dtype)
        self.channels_in = x.shape[1]
        ref = _pairs(x.detach().to(work), y)
        out = y.detach().to(work)
        h = h.reshape(-1, 1, 1).to(device=out.device, dtype=work)
        power = ref.square()
        eps = SHRINK * power.mean(dim=2, keepdim=True) + torch.finfo(work).tiny
        spread = _moving_average(power, GAIN_SAMPLES) + eps
        self.gain = (_moving_average(out * ref, GAIN_SAMPLES) + eps) / spread
        reaction = (moved.detach().to(work) - out) / h - out
        self.reaction = _moving_average(reaction * ref, GAIN_SAMPLES) / spread
        self.ref = ref
        self.kernel = _smoother(ref.shape[-1], ENVELOPE_SAMPLES, ref.device, work)
        level = power.sum(dim=1, keepdim=True)
        self.level = _convolve(level, self.kernel) + SHRINK * level.mean(dim=2, keepdim=True) + torch.finfo(work).tiny

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        dtype = v.dtype
        v = v.to(self.ref.dtype)
        if v.shape[1] != self.ref.shape[1]:
            v = v.mean(dim=1, keepdim=True).expand(-1, self.ref.shape[1], -1)
        rho = _convolve((self.ref * v).sum(dim=1, keepdim=True), self.kernel) / self.level
        return (self.gain * v + self.ref * self.reaction * rho).to(dtype)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        dtype = g.dtype
        g = g.to(self.ref.dtype)
        sensitivity = (g * self.ref * self.reaction).sum(dim=1, keepdim=True)
        back = _convolve(sensitivity / self.level, self.kernel, adjoint=True)
        return _fold(self.gain * g + self.ref * back, self.channels_in).to(dtype)


class BandTangent(TangentStandIn):
    """The spectral ratio, corrected to the effect's tangent on the bands (see the module documentation).

    Args:
        x: ``[N, C_in, L]`` input the effect saw.
        y: ``[N, C_out, L]`` its output.
        moved: ``[N * K, C_out, L]`` outputs at ``x + h_k d_k`` (node-major).
        directions: ``[N, K, C_in, L]``.
        h: ``[N, K, 1, 1]`` steps.
    """

    kind = "band-tangent"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, moved: torch.Tensor, directions: torch.Tensor,
                 h: torch.Tensor) -> None:
        work = _work_dtype(y.dtype)
        n, k = directions.shape[:2]
        self.base: Linearisation = linearise("spectral-ratio", x.detach(), y.detach())
        self.channels_in = x.shape[1]
        d = directions.detach().to(work)
        out = y.detach().to(work)
        moved = moved.detach().to(work).reshape(n, k, *out.shape[1:])
        jvp = (moved - out.unsqueeze(1)) / h.to(work)  # [N, K, C_out, L]
        stand = torch.stack([self.base.apply(d[:, j]).to(work) for j in range(k)], dim=1)
        # Unit directions keep the least-squares system well scaled; a silent band (a silent row)
        # gets a zero direction and a unit diagonal, so it adds nothing.
        norms = d.flatten(2).norm(dim=-1)  # [N, K]
        live = norms > 0
        scale = torch.where(live, 1 / norms.clamp(min=torch.finfo(work).tiny), torch.zeros_like(norms))
        self.directions = d * scale[..., None, None]
        self.residual = (jvp - stand) * scale[..., None, None]  # what the tangent adds to the ratio, per band
        flat = self.directions.flatten(2)
        eye = torch.eye(k, dtype=work, device=d.device)
        gram = flat @ flat.transpose(1, 2) + torch.diag_embed((~live).to(work)) + 1e-6 * eye
        self.inverse = torch.linalg.inv(gram)

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        dtype = v.dtype
        work = self.directions.dtype
        v = v.to(work)
        coords = self.inverse @ (self.directions.flatten(2) @ v.flatten(1).unsqueeze(-1))  # [N, K, 1]
        correction = (self.residual * coords.unsqueeze(-1)).sum(dim=1)
        return (self.base.apply(v).to(work) + correction).to(dtype)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        dtype = g.dtype
        work = self.directions.dtype
        g = g.to(work)
        along = self.residual.flatten(2) @ g.flatten(1).unsqueeze(-1)  # [N, K, 1]
        coords = self.inverse.transpose(1, 2) @ along
        correction = (self.directions * coords.unsqueeze(-1)).sum(dim=1)
        return (self.base.adjoint(g).to(work) + correction).to(dtype)


def fit_tangent(kind: str, x: torch.Tensor, y: torch.Tensor, moved: torch.Tensor, directions: torch.Tensor,
                h: torch.Tensor) -> TangentStandIn:
    """Fit the stand-in ``kind`` from the renders :func:`tangent_renders` asked for.

    Args:
        kind: one of :data:`TANGENTS`.
        x, y: ``[N, C_in, L]`` input and ``[N, C_out, L]`` output of the call.
        moved: ``[N * K, C_out, L]`` outputs at the moved inputs.
        directions, h: as :func:`tangent_renders` returned them.

    Raises:
        EstimatorError: an unknown kind.
    """
    if kind == "gain-tangent":
        return GainTangent(x, y, moved, h)
    if kind == "band-tangent":
        return BandTangent(x, y, moved, directions, h)
    raise EstimatorError(f"unknown tangent stand-in {kind!r}; expected one of {TANGENTS}")


class TangentSignalRule(GradientRule):
    """The first inlet's VJP ``A^T g`` from a tangent stand-in of ``kind`` (other inlets get none).

    Args:
        kind: one of :data:`TANGENTS`.
        step: relative size of the input changes (see :func:`tangent_renders`).
    """

    def __init__(self, kind: str, step: float) -> None:
        if kind not in TANGENTS:
            raise EstimatorError(f"unknown tangent stand-in {kind!r}; expected one of {TANGENTS}")
        self.kind, self.step = kind, step
        self.directions: torch.Tensor | None = None
        self.h: torch.Tensor | None = None

    def jobs(self, saved: Saved) -> list[RenderJob]:
        if not saved.need_signals[0]:
            return []
        x = saved.signals[0].detach()
        moved, self.directions, self.h = tangent_renders(self.kind, x, self.step)
        count = self.directions.shape[1]
        others = tuple(s.detach().repeat_interleave(count, dim=0) for s in saved.signals[1:])
        params = cpu_rows(saved.params).repeat_interleave(count, dim=0)
        nodes = node_rows(x.shape[0], count)
        return [RenderJob((moved, *others), params, None, nodes, f"{self.kind} (signal)")]

    def finish(self, saved: Saved, outputs: Sequence[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        grads: list[torch.Tensor | None] = [None] * len(saved.signals)
        if saved.need_signals[0]:
            x = saved.signals[0]
            assert self.directions is not None and self.h is not None
            stand_in = fit_tangent(self.kind, x, saved.y, outputs[0], self.directions, self.h)
            grads[0] = stand_in.adjoint(grad_y).to(x.dtype)
        return None, tuple(grads)
