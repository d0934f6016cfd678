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
``"tangent-ratio"`` (two renders)
    A short-time spectral ratio of the effect's tangent, not of its output:
    ``T = Σ_k STFT(J d_k) STFT(d_k)* / Σ_k |STFT(d_k)|^2`` per STFT bin and
    frame, from central differences ``J d ≈ (f(x + h d) - f(x - h d)) / 2h``
    along ``d = x`` (what an upstream gain changes); ``A v = ISTFT(T STFT(v))``.
    Where the input is quiet ``T`` shrinks to the row's plain tangent gain. It
    follows the effect's filters bin by bin, and a dynamics processor's
    reaction to level (which the secant ratio ``Y / X`` misses), but not the
    harmonics a nonlinearity makes.
``"band-tangent"`` (``2 * TANGENT_BANDS`` renders)
    A low-rank correction of the tangent ratio: the input is split into
    :data:`TANGENT_BANDS` bands of equal energy (smooth masks that sum to one,
    so the bands add up to ``x``), central differences along each band give
    ``J b_k``, ``T`` is the tangent ratio fitted to those pairs, and
    ``A v = T v + Σ_k (J b_k - T b_k) c_k(v)`` with ``c(v)`` the least-squares
    coordinates of ``v`` on the bands. ``A`` equals the effect's tangent on
    every band (so on ``x`` itself: what an upstream gain or EQ changes),
    harmonics and the cross-band part of a time-varying gain included, and the
    tangent ratio elsewhere. Central, not one-sided, differences: a one-sided
    difference carries the second-order term ``h f''[d, d] / 2``, which lands
    in the quiet bins a log-spectral loss weighs most (measured: it flipped the
    sign of a limiter's upstream gradient).
``"fine-band-tangent"`` (``2 * TANGENT_BANDS`` renders)
    ``"band-tangent"`` from differences at :data:`FINE_JVP_STEP` instead of
    :data:`JVP_STEP`: the effect's tangent where it holds only within a tiny
    neighbourhood (a hard-knee, fast-attack limiter whose gain follows single
    peaks: its response along the input's level changes slope within a few
    hundredths of a percent). The automatic choice tries it only where its
    probe finds the effect's response not smooth at :data:`JVP_STEP`'s scale.

``"wide-band-tangent"`` (``2 * TANGENT_BANDS`` renders)
    ``"band-tangent"`` from differences at :data:`WIDE_JVP_STEP` of the row's RMS, along bands split
    linearly (a zero-padded split: nothing of the signal's end wraps round to its start): the slope that
    an effect driven far into clipping shows at the scale of a fit's steps, where its tangent at 1 % is
    rough (measured in ``bench/seam.py`` on ``lv2:calf_exciter`` at drawn settings, fixed: upstream cosine
    0.947 and norm ratio 0.98, against 0.896 and 1.01 for ``"band-tangent"``). A candidate of its own, not
    ``"band-tangent"``'s step: on a noise gate far into its range the circular split's band tangent was the
    only stand-in the probe measured above cosine 0.3, and the linear split's was not (its fit stopped).
    Its differences are a slope only where their one-sided halves ``f(x + h b) - f(x)`` and
    ``f(x) - f(x - h b)`` point the same way (:attr:`TangentStandIn.agreement`, at least
    :data:`SLOPE_AGREEMENT` on every row, :attr:`TangentStandIn.slope`): a quantiser's do not (a bitcrusher's
    tracks within a few steps of zero cross a step at different samples going up and going down: cosine
    0.000), and there the automatic choice does not consider it. It stands in for ``"band-tangent"``
    (:data:`FALLBACKS`): the automatic choice ranks it only where that one misses the aims, since a 5 %
    difference is a wider secant than a 1 % one wherever both hold.

The central stand-ins step by :data:`JVP_STEP` of the row's RMS: large enough
that a float32 effect's rounding stays far below the change in the quiet bins,
small enough that the third-order error does not matter (measured on the
probe's directions: the upstream gradient at steps ``1e-2`` and ``3e-2`` agreed
to cosine 0.999 on a saturator, and ``1e-3`` disagreed where the output was loud).

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
from .linearisation import SHRINK, Linearisation, _fold, _frame, _moving_average, _pairs, _work_dtype
from .target import RenderJob

__all__ = ["TANGENTS", "TANGENT_BANDS", "JVP_STEP", "FINE_JVP_STEP", "WIDE_JVP_STEP", "ENVELOPE_SAMPLES", "GAIN_SAMPLES",
           "TangentStandIn", "GainTangent", "TangentRatio", "BandTangent", "tangent_directions", "renders_per_backward",
           "tangent_renders", "fit_tangent", "central_jvps", "halves_agreement", "SLOPE_AGREEMENT", "FALLBACKS",
           "TangentSignalRule"]

TANGENTS = ("gain-tangent", "tangent-ratio", "band-tangent", "fine-band-tangent", "wide-band-tangent")
"""The kinds of tangent stand-in, each also a ``signal_gradient`` name."""
TANGENT_BANDS = 2
"""Bands of ``"band-tangent"`` (two renders each: ``2 * TANGENT_BANDS`` per node per backward)."""
JVP_STEP = 1e-2
"""Step of the central differences of ``"tangent-ratio"``, ``"band-tangent"`` and the automatic
choice's probe, relative to the row's RMS (see the module documentation)."""
FINE_JVP_STEP = 1.5e-4
"""Step of ``"fine-band-tangent"``'s central differences, relative to the row's RMS: under the scale where a
hard-knee limiter's response bends (measured on ``dsp:compressor`` at -12 dB, 20:1, 0.1 ms attack: its
float64 differences along the input's level equal autograd's derivative at steps up to 3e-4 and are 0.74 of
it at 1e-3), above float32's rounding (its float32 differences at 1e-4 gave cosine 0.997 with autograd, at
1e-5 0.70)."""
WIDE_JVP_STEP = 5e-2
"""Step of ``"wide-band-tangent"``'s central differences, relative to the row's RMS: each band carries about
half the row's energy, so each moves by about 7 % of its own level, a 0.6 dB change, the size of a fit's
steps on a gain (measured in ``bench/seam.py`` on ``lv2:calf_saturator`` at drawn settings, driven 24-34 dB
into clipping, fixed choices: upstream cosine 0.976 and norm ratio 0.89 at 5 %, against 0.865 and 1.51 at
1 %)."""
SLOPE_AGREEMENT = 0.7
"""The least cosine between ``"wide-band-tangent"``'s forward and backward one-sided differences, on every
row, for them to count as a slope (:attr:`TangentStandIn.slope`): below it the curvature over the step is
about as large as the slope, and the 5 % difference is a secant no fit's step of a fraction of a dB sees.
Measured in ``bench/seam.py``: 0.000 on ``pedalboard:bitcrush``'s tracks within a few steps of zero (a
quantiser: going up and going down, different samples cross a step); 0.94-1.00 on the drawn calf exciter;
0.82-1.00 on the drawn calf saturator but 0.54 at its fourth point, where the probe measured the wide band
tangent at cosine 0.944 / norm ratio 1.19 and the row 0.509 / 0.79."""
FALLBACKS = {"wide-band-tangent": "band-tangent"}
"""Stand-ins the automatic choice ranks only where the one named here misses the aims (at the call's own
parameters): ``"wide-band-tangent"`` took ``lv2:calf_exciter`` at its defaults from ``"band-tangent"``'s
0.999 / 0.99 (upstream cosine / norm ratio in ``bench/seam.py``) to 0.998 / 0.976, and ``"band-tangent"`` met
the aims there."""
_SLOPE_CHECKED = ("wide-band-tangent",)  # the stand-ins whose step is wide enough to straddle a quantiser's steps
ENVELOPE_SAMPLES = 256
"""Time constant of ``"gain-tangent"``'s level smoother, in samples."""
GAIN_SAMPLES = 64
"""Moving-average length of ``"gain-tangent"``'s gains, in samples."""
_BANDED = ("band-tangent", "fine-band-tangent", "wide-band-tangent")  # directions: the input's bands
_CENTRAL_STEPS = {"fine-band-tangent": FINE_JVP_STEP, "wide-band-tangent": WIDE_JVP_STEP}  # other than JVP_STEP
_LINEAR_SPLIT = ("wide-band-tangent",)  # the banded stand-ins whose bands are split without wrap-round
_BAND_EDGE_OCTAVES = 0.5  # width of the raised-cosine crossover between neighbouring bands


def renders_per_backward(kind: str) -> int:
    """Extra renders per node per backward of a tangent stand-in."""
    if kind in _BANDED:
        return 2 * TANGENT_BANDS
    return 2 if kind == "tangent-ratio" else 1


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

    ``"gain-tangent"`` and ``"tangent-ratio"``: ``x`` itself (``K = 1``). The banded stand-ins: ``x`` split into
    :data:`TANGENT_BANDS` bands of equal energy that add up to ``x`` (``"wide-band-tangent"``: split over twice
    the length, so that no band wraps the signal's end round to its start).
    """
    if kind in ("gain-tangent", "tangent-ratio"):
        return x.unsqueeze(1)
    if kind not in _BANDED:
        raise EstimatorError(f"unknown tangent stand-in {kind!r}; expected one of {TANGENTS}")
    length = x.shape[-1]
    padded = 2 * length if kind in _LINEAR_SPLIT else length
    work = _work_dtype(x.dtype)
    masks = _band_masks(torch.nn.functional.pad(x, (0, padded - length)), TANGENT_BANDS)  # [N, K, F]
    spectrum = torch.fft.rfft(x.to(work), n=padded)  # [N, C, F]
    bands = torch.fft.irfft(masks.unsqueeze(2) * spectrum.unsqueeze(1), n=padded)[..., :length]
    return bands.to(x.dtype)


def tangent_renders(kind: str, x: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs to render for ``kind``, their directions and steps.

    Args:
        kind: one of :data:`TANGENTS`.
        x: ``[N, C_in, L]`` input of the call.
        step: relative step of ``"gain-tangent"`` (its change has ``step`` times the row's RMS, at
            least ``step * 1e-3``); the central stand-ins step by :data:`JVP_STEP`
            (``"fine-band-tangent"`` by :data:`FINE_JVP_STEP`, ``"wide-band-tangent"`` by :data:`WIDE_JVP_STEP`).

    Returns:
        ``(moved, directions, h)``: ``directions`` ``[N, K, C_in, L]``, ``h`` ``[N, K, 1, 1]``;
        ``moved`` node-major: ``[N, C_in, L]`` at ``x (1 + h)`` for ``"gain-tangent"``, else
        ``[N * 2K, C_in, L]``, per node ``x + h_k d_k`` for every ``k``, then ``x - h_k d_k``.
    """
    directions = tangent_directions(kind, x)
    central = kind != "gain-tangent"
    h = _steps(x, directions, _CENTRAL_STEPS.get(kind, JVP_STEP) if central else step)
    if not central:
        return (x.unsqueeze(1) + h * directions).flatten(0, 1), directions, h
    return torch.cat([x.unsqueeze(1) + h * directions, x.unsqueeze(1) - h * directions], dim=1).flatten(0, 1), \
        directions, h


def _steps(x: torch.Tensor, directions: torch.Tensor, step: float) -> torch.Tensor:
    """``[N, K, 1, 1]`` steps giving each direction's change ``step`` times the row's RMS (at least ``step * 1e-3``)."""
    work = _work_dtype(x.dtype)
    rms = x.detach().to(work).pow(2).mean(dim=(1, 2)).sqrt().clamp(min=1e-3)  # [N]
    own = directions.to(work).pow(2).mean(dim=(2, 3)).sqrt()  # [N, K]
    h = (step * rms.unsqueeze(1) / own.clamp(min=1e-30)).where(own > 0, torch.full_like(own, step))
    return h.to(x.dtype).unsqueeze(-1).unsqueeze(-1)


def central_jvps(outputs: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``[N, K, C_out, L]`` Jacobian-vector products from the renders :func:`tangent_renders` asked for.

    Args:
        outputs: ``[N * 2K, C_out, L]`` node-major outputs (``+`` steps, then ``-`` steps, per node).
        h: ``[N, K, 1, 1]`` steps.
    """
    n, k = h.shape[:2]
    work = _work_dtype(outputs.dtype)
    pairs = outputs.detach().to(work).reshape(n, 2, k, *outputs.shape[1:])
    return (pairs[:, 0] - pairs[:, 1]) / (2 * h.to(work))


def halves_agreement(outputs: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """``[N]`` cosine between the forward and the backward one-sided changes of the renders :func:`tangent_renders`
    asked for, over every direction, channel and sample of a row: ``f(x + h d) - f(x)`` against
    ``f(x) - f(x - h d)``.

    Near one where the effect is smooth at the step; near zero where the two halves move different samples (a
    quantiser crossing a step going up and another going down). One where neither half moves (a silent or
    still row: nothing to disagree), zero where only one does.

    Args:
        outputs: ``[N * 2k, C_out, L]`` node-major outputs (``+`` steps, then ``-`` steps, per node).
        y: ``[N, C_out, L]`` the output at ``x``.
        k: directions per node.
    """
    work = _work_dtype(outputs.dtype)
    pairs = outputs.detach().to(work).reshape(y.shape[0], 2, k, *outputs.shape[1:])
    centre = y.detach().to(work).unsqueeze(1)
    up, down = (pairs[:, 0] - centre).flatten(1), (centre - pairs[:, 1]).flatten(1)
    tiny = torch.finfo(work).tiny
    # Each half scaled to a unit peak, then a unit norm: a quiet row's squares would underflow.
    up, down = (v / v.abs().amax(dim=1, keepdim=True).clamp(min=tiny) for v in (up, down))
    up_norm, down_norm = up.norm(dim=1, keepdim=True), down.norm(dim=1, keepdim=True)
    cosine = ((up / up_norm.clamp(min=tiny)) * (down / down_norm.clamp(min=tiny))).sum(dim=1)
    still = (up_norm == 0).squeeze(1) & (down_norm == 0).squeeze(1)
    return torch.where(still, torch.ones_like(cosine), cosine)


class TangentStandIn:
    """A linear operator ``A: [N, C_in, L] -> [N, C_out, L]`` fitted to renders along structured directions.

    Attributes:
        agreement: ``[N]`` :func:`halves_agreement` of its renders (``None`` where not measured).
    """

    kind: str = ""
    agreement: torch.Tensor | None = None

    @property
    def slope(self) -> bool:
        """Whether its differences are a slope of the effect: ``"wide-band-tangent"``'s halves agree to
        :data:`SLOPE_AGREEMENT` on every row (the other kinds: always)."""
        if self.kind not in _SLOPE_CHECKED or self.agreement is None:
            return True
        return bool((self.agreement >= SLOPE_AGREEMENT).all())

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


def _stft(v: torch.Tensor) -> torch.Tensor:
    """``[..., C, F, T]`` STFT of ``[..., C, L]`` with the spectral ratio's frames."""
    length = v.shape[-1]
    n_fft, hop = _frame(length)
    window = torch.hann_window(n_fft, dtype=v.dtype, device=v.device)
    spec = torch.stft(v.reshape(-1, length), n_fft, hop, window=window, center=True, return_complex=True)
    return spec.reshape(*v.shape[:-1], *spec.shape[-2:])


class TangentRatio(TangentStandIn):
    """The short-time spectral ratio of the effect's tangent (see the module documentation).

    Args:
        x: ``[N, C_in, L]`` input the effect saw.
        y: ``[N, C_out, L]`` its output.
        directions: ``[N, K, C_in, L]`` input changes.
        jvps: ``[N, K, C_out, L]`` the effect's change along each (:func:`central_jvps`).
    """

    kind = "tangent-ratio"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor, jvps: torch.Tensor) -> None:
        work = _work_dtype(y.dtype)
        n, k = directions.shape[:2]
        d = directions.detach().to(work)
        if d.shape[2] != y.shape[1]:
            d = d.mean(dim=2, keepdim=True).expand(-1, -1, y.shape[1], -1)
        j = jvps.to(work)
        sd, sj = _stft(d), _stft(j)  # [N, K, C_out, F, T]
        cross, power = (sj * sd.conj()).sum(dim=1), sd.abs().square().sum(dim=1)
        # Where the input is quiet the ratio says nothing: it shrinks to the row's plain tangent gain.
        gain = (j * d).sum(dim=(1, 3)) / d.square().sum(dim=(1, 3)).clamp(min=torch.finfo(work).tiny)
        eps = SHRINK * power.mean(dim=(2, 3), keepdim=True) + torch.finfo(work).tiny
        factor = (cross + eps * gain[..., None, None]) / (power + eps)
        self.ratio = Linearisation("spectral-ratio", factor, x.shape[1], x.shape[-1])

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        return self.ratio.apply(v)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        return self.ratio.adjoint(g)


class BandTangent(TangentStandIn):
    """The tangent ratio, corrected to the effect's tangent on the bands (see the module documentation).

    Args:
        x: ``[N, C_in, L]`` input the effect saw.
        y: ``[N, C_out, L]`` its output.
        directions: ``[N, K, C_in, L]`` the bands.
        jvps: ``[N, K, C_out, L]`` the effect's change along each (:func:`central_jvps`).
    """

    kind = "band-tangent"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor, jvps: torch.Tensor) -> None:
        work = _work_dtype(y.dtype)
        k = directions.shape[1]
        self.base = TangentRatio(x, y, directions, jvps)
        d = directions.detach().to(work)
        stand = torch.stack([self.base.apply(d[:, j]).to(work) for j in range(k)], dim=1)
        # Unit directions keep the least-squares system well scaled; a silent band (a silent row)
        # gets a zero direction and a unit diagonal, so it adds nothing.
        norms = d.flatten(2).norm(dim=-1)  # [N, K]
        live = norms > 0
        scale = torch.where(live, 1 / norms.clamp(min=torch.finfo(work).tiny), torch.zeros_like(norms))
        self.directions = d * scale[..., None, None]
        self.residual = (jvps.to(work) - stand) * scale[..., None, None]  # what the tangent adds, per band
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
                h: torch.Tensor, halves: bool = False) -> TangentStandIn:
    """Fit the stand-in ``kind`` from the renders :func:`tangent_renders` asked for.

    Args:
        kind: one of :data:`TANGENTS`.
        x, y: ``[N, C_in, L]`` input and ``[N, C_out, L]`` output of the call.
        moved: outputs at the moved inputs (node-major, as :func:`tangent_renders` ordered them).
        directions, h: as :func:`tangent_renders` returned them.
        halves: also measure :attr:`TangentStandIn.agreement` where it applies (``"wide-band-tangent"``):
            the probe asks for it; a backward pass, which only applies the stand-in, does not.

    Raises:
        EstimatorError: an unknown kind.
    """
    if kind == "gain-tangent":
        return GainTangent(x, y, moved, h)
    if kind == "tangent-ratio":
        return TangentRatio(x, y, directions, central_jvps(moved, h))
    if kind in _BANDED:
        stand_in = BandTangent(x, y, directions, central_jvps(moved, h))
        stand_in.kind = kind
        if halves and kind in _SLOPE_CHECKED:
            stand_in.agreement = halves_agreement(moved, y, directions.shape[1])
        return stand_in
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
        self.stand_in: TangentStandIn | None = None

    def jobs(self, saved: Saved) -> list[RenderJob]:
        if not saved.need_signals[0]:
            return []
        x = saved.signals[0].detach()
        moved, self.directions, self.h = tangent_renders(self.kind, x, self.step)
        count = moved.shape[0] // x.shape[0]
        others = tuple(s.detach().repeat_interleave(count, dim=0) for s in saved.signals[1:])
        params = cpu_rows(saved.params).repeat_interleave(count, dim=0)
        nodes = node_rows(x.shape[0], count)
        return [RenderJob((moved, *others), params, None, nodes, f"{self.kind} (signal)")]

    def prepare(self, saved: Saved, outputs: list[torch.Tensor]) -> None:
        if saved.need_signals[0]:
            assert self.directions is not None and self.h is not None
            self.stand_in = fit_tangent(self.kind, saved.signals[0], saved.y, outputs[0], self.directions, self.h)

    def finish(self, saved: Saved, outputs: Sequence[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        grads: list[torch.Tensor | None] = [None] * len(saved.signals)
        if saved.need_signals[0]:
            if self.stand_in is None:
                self.prepare(saved, list(outputs))
            assert self.stand_in is not None
            grads[0] = self.stand_in.adjoint(grad_y).to(saved.signals[0].dtype)
            self.stand_in = None  # a second backward (retain_graph) renders and fits again
        return None, tuple(grads)
