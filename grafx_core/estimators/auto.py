"""Signal gradients from linearisations, and the automatic choice among them and the tangent stand-ins.

:class:`LinearisedSignalRule` gives the input signal's VJP as ``A^T g``, with
``A`` the :class:`~grafx_core.estimators.linearisation.Linearisation` fitted to
the call's input and output: no extra render, or two (``"diagonal"``). The
tangent stand-ins of :mod:`~grafx_core.estimators.tangent` render one
(``"gain-tangent"``), two (``"tangent-ratio"``) or four (``"band-tangent"``)
times per node per backward.

:func:`probe_signal_gradient` decides what ``signal_gradient="auto"`` means for
a processor, at its first call whose input wants a gradient, and again when a
later call's parameters have moved more than :data:`REVISIT_DISTANCE` from the
probed ones. It scores what reaches the nodes upstream: the vector-Jacobian
product, not how well a stand-in predicts the output. It takes up to
:data:`PROBE_ROWS` rows spread over the call's levels (quietest to loudest
sounding row) and renders them in one batch at several operating points: the
call's parameters and, where the target knows its parameter ranges
(:meth:`~grafx_core.estimators.RenderTarget.random_rows`), random ones; the
input as given and :data:`PROBE_LEVELS` louder. At each point the effect's
directional derivatives ``J u = (f(x + h u) - f(x - h u)) / 2h`` (central
differences, ``h u`` :data:`TEST_STEP` of ``u``'s own RMS) along
:data:`TEST_DIRECTIONS` upstream-like changes ``u``: the input itself (an
upstream gain) and its lows, mids and highs (what an upstream EQ's gains
move). A node upstream whose parameter moves the input along ``u`` receives
``<g, J u>`` from an output gradient ``g``; a stand-in ``A`` passes it
``<A^T g, u>``. The output gradients are :data:`TEST_GRADIENTS` gradients of
the multi-resolution STFT loss (:func:`~grafx_core.spectral_loss.multi_resolution_stft_loss`)
of the probed rows' sum (as a mix node sums tracks) against that sum
recoloured, so that the quiet bins a log-spectral loss weighs most count as
they do in a fit. Per output gradient,
the vectors ``<A^T g, u_j>`` and ``<g, J u_j>`` over the rows and directions
give a cosine and a norm ratio (along the input and its zero-phase bands, and again along the input and the
:data:`CAUSAL_DIRECTIONS`, which a causal equaliser upstream moves it along), and the score is the cosine less
:data:`NORM_PENALTY` times ``|log2(norm ratio)|`` (a gradient twice too large
or too small loses a quarter); the means over the output gradients and the
operating points rank the candidates. Among the candidates that meet the aims
(:attr:`SignalProbe.trusted`) at the call's own parameters, or all where none
does, the best one wins (ranked along the bands; where their verdict is in doubt, by the worse of the two sets'
scores, and trusted where either set meets the aims: see :attr:`SignalProbe.causal`); one that renders in
the backward pass only by a margin of :data:`RENDER_MARGIN` per render, and
``"straight-through"`` by :data:`IDENTITY_MARGIN`; candidates over
:data:`RENDER_BUDGET` renders are not tried.

A choice is trusted when its measured cosine reaches :data:`TRUSTED_COSINE`
and its norm ratio lies within :data:`TRUSTED_NORM`. An untrusted best one is
still passed on, with a :class:`~grafx_core.estimators.WeakSignalGradientWarning`
stating its measured cosine and norm ratio, unless its cosine is below
:data:`FALLBACK_COSINE` (then the gradient stops, with a
:class:`~grafx_core.estimators.StoppedSignalGradientWarning` stating the same);
an estimator made with ``strict_signal_gradient=True`` raises
:class:`~grafx_core.errors.SignalGradientQualityError` instead of either. An
effect whose output does not move at all (below :data:`MUTE` of the input
change, at every point) gets ``"none"``, silently: its input gradient is (close to) zero.

At the call's own point the probe also differentiates at :data:`FINE_TEST_STEP`. Where that reference
(the effect's tangent) and the :data:`TEST_STEP` one (the slope a fit's steps see) disagree beyond the
aims, the response is rough (:attr:`SignalProbe.rough`): no choice is trusted, the warning is a
:class:`~grafx_core.estimators.RoughSignalGradientWarning` with both references' figures, and the
:data:`ROUGH_CANDIDATES` are tried; where a candidate meets the aims against the fine reference, the choice
follows the tangent (:attr:`SignalProbe.tangent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SignalGradientQualityError
from ._warnings import (RoughSignalGradientWarning, StoppedSignalGradientWarning, WeakSignalGradientWarning,
                        warn_once)
from ._directions import eq_gain_directions
from ._rules import GradientRule, Gradients, Saved, cpu_rows, node_rows, rademacher
from .linearisation import LINEARISATIONS, diagonal_perturbation, linearise
from ..spectral_loss import multi_resolution_stft_loss
from .tangent import FALLBACKS, JVP_STEP, TANGENTS, central_jvps, fit_tangent, renders_per_backward, tangent_renders
from .target import RenderJob, RenderTarget

__all__ = ["LinearisedSignalRule", "SignalProbe", "probe_signal_gradient", "PROBE_ROWS", "TRUSTED_COSINE",
           "TRUSTED_NORM", "FALLBACK_COSINE", "PROBE_LEVELS", "RENDER_MARGIN", "IDENTITY_MARGIN", "NORM_PENALTY", "MUTE",
           "CANDIDATES", "REVISIT_DISTANCE", "RENDER_BUDGET", "TEST_DIRECTIONS", "TEST_GRADIENTS", "TEST_STEP",
           "TEST_FLOOR", "CAUSAL_DIRECTIONS", "FINE_TEST_STEP", "ROUGH_CANDIDATES", "EQ_EDGES", "PROBE_SEED", "CALIBRATION_LIMIT",
           "CALIBRATION_COSINE", "CALIBRATION_AGREEMENT", "CALIBRATIONS", "WHITE_GRADIENTS", "scaled_signals",
           "settle_signal_gradient", "probe_generator", "renders_per_node", "probe_renders"]

PROBE_ROWS = 4
"""Node rows the automatic choice renders (spread over the levels of the first call's rows)."""
PROBE_LEVELS = (1.0, 4.0)
"""Input gains the automatic choice probes at (as given, and 12 dB louder: a dynamics processor or a
saturator that a quiet first call leaves alone still gets a stand-in that follows it when it works)."""
TRUSTED_COSINE = 0.9
"""A choice whose measured upstream-gradient cosine is below this is not trusted: it is passed on with a
warning (or the gradient stops, see :data:`FALLBACK_COSINE`), or, with ``strict_signal_gradient``, the
call raises."""
TRUSTED_NORM = (0.8, 1.25)
"""A trusted choice's measured norm ratio lies within these bounds."""
TEST_DIRECTIONS = 4
"""Upstream-like input changes the probe differentiates the effect along (two renders each, per point): the
input itself (a gain) and its lows, mids and highs (see :data:`EQ_EDGES`)."""
CAUSAL_DIRECTIONS = 3
"""Further test directions, two renders each per point: what a flat equaliser's low shelf, peak and high shelf
gains upstream move the input by (causal filters at :data:`EQ_EDGES`, from
:func:`~grafx_core.estimators._directions.eq_gain_directions`). Every candidate is also measured along the input
and these. They are consulted only where the zero-phase bands' verdict is in doubt: the bands' trusted choice
misses the aims along them, or no candidate reaches :data:`TRUSTED_COSINE` along the bands. There the candidates
rank by the worse of their two scores and are trusted where either set meets the aims (measured in
``bench/seam.py``: on a limiter-like compressor the bands trusted the gain tangent at 0.935 / 1.00, the causal
directions measured it at 0.845 / 0.79 and the graph at 0.874 / 0.89, where the wide band tangent, 0.929 / 0.84
along them, gave 0.974 / 0.86; on a resonant high-pass every candidate measured below cosine 0.6 along the
bands, which ring ahead of the signal's end where the loss's gradient is largest, while the graph gave 1.000).
Not in their place: with the causal directions alone the parametric EQ's probe picked the tangent ratio
(0.962 / 1.41 in the graph), and a notch's, where the bands measure every candidate at the same norm
error, the smoothed gain over the FFT ratio."""
TEST_STEP = 2 * JVP_STEP
"""Step of the probe's central differences, relative to each test direction's own RMS (at least
:data:`TEST_FLOOR` of the row's): what an upstream gain or EQ gain moves by 0.17 dB, the size of a fit's
steps. Not relative to the row's RMS: the highs of a loud row are a few percent of it, and a step of 2 % of
the row is a change of the highs by their whole level, a secant across a saturator's knee, not its tangent
(measured on ``dsp:distortion``: relative errors of 0.5-3.4 in those products, and every candidate scored
cosine 0.4-0.6). Not the stand-ins' own step either, or a stand-in differencing along the same directions
at the same step would reproduce the reference's rounding and quantisation noise and look exact on an
effect that is not smooth (measured: a bitcrusher's band-tangent, chosen so, passed on cosine 0.006 in a
graph)."""
TEST_FLOOR = 1e-3
"""The smallest change along a test direction, relative to the row's RMS: a band all but absent from the
input is stepped by more than :data:`TEST_STEP` of its own level, so that the effect's float32 rounding
stays far below the change it makes."""
FINE_TEST_STEP = 3e-4
"""Step of the probe's second reference: the same central differences along the test directions, at the
call's own point (its parameters, its input as given), relative to each direction's own RMS (and at least
``TEST_FLOOR * FINE_TEST_STEP / TEST_STEP`` of the row's): the effect's tangent, what autograd through it
gives. Where the :data:`TEST_STEP` reference (the slope a fit's steps see) and this one disagree beyond
:data:`TRUSTED_COSINE` and :data:`TRUSTED_NORM`, and this one's forward and backward one-sided differences
agree within them (else its own error, float32 rounding over a tiny step or a quantiser's steps, is as
large as what it measures), the response is not smooth at the scale of a fit's steps (measured on
``dsp:compressor`` as a limiter, -12 dB, 20:1, hard knee, 0.1 ms attack: along a loud row's level the
loss-weighted change was autograd's -9.8 at 0.01 % and 0.03 %, -7.3 at 0.1 %, -0.5 at 0.6 % and +0.07 at
2 %). Then no choice is trusted: it is passed on with a
:class:`~grafx_core.estimators.RoughSignalGradientWarning` stating both references' figures. Twice
:data:`~grafx_core.estimators.tangent.FINE_JVP_STEP`, so that a stand-in from differences at that step does
not share this reference's rounding."""
ROUGH_CANDIDATES = ("fine-band-tangent",)
"""Candidates rendered and scored only where the probe finds the response rough (at the call's own
point): if one of them, or another candidate, meets the aims against the fine reference, the choice
follows the effect's tangent, ranked against that reference; else (a quantiser, whose fine differences are
its rounding) the probe's own reference ranks, without these candidates."""
TEST_GRADIENTS = 4
"""Loss gradients the probe scores each candidate's vector-Jacobian product with (they cost no renders)."""
PROBE_SEED = 28
"""Seed of the probe's own generator (its signs, test gradients and random operating points): every
probe of the same input and parameters measures the same figures and makes the same choice, whatever the
estimator's seed or how many calls came before (measured: with the estimator's next generator, one
compressor's choice scored cosine 0.82 on one draw and 0.97 on another)."""
FALLBACK_COSINE = 0.3
"""An untrusted best stand-in is still passed on when its measured cosine reaches this; below it the
estimate is closer to noise than to a direction, and the gradient stops (with a warning)."""
MUTE = 1e-4
"""A parameter point whose output change is below this fraction of the input change is not scored."""
NORM_PENALTY = 0.25
"""Score lost per factor of two between the predicted and the true change's norms."""
RENDER_MARGIN = 0.005
"""How much better a candidate must score per extra render it costs in every backward
(``"gain-tangent"`` one, ``"diagonal"`` and ``"tangent-ratio"`` two, ``"band-tangent"`` four) than the
render-free ones. At 0.02 the render-free FFT ratio kept the drawn Calf saturator and exciter at
0.913 / 0.80 and 0.893 / 0.79 where the band tangents give 0.952 / 0.98 and 0.936 / 0.92 in the graph
(``bench/seam.py --standard``); 0.005 moved no other row out of the aims."""
RENDER_BUDGET = 4
"""The most extra renders per node per backward the automatic choice spends on the input signal."""
REVISIT_DISTANCE = 0.25
"""A settled automatic choice is probed again when a call's parameters have moved this far from the
probed point, in the target's :meth:`~grafx_core.estimators.RenderTarget.distance` (a fraction of a
control's range: normalised units for black boxes, the declared range for torch modules)."""
IDENTITY_MARGIN = 0.05
"""How much better ``"straight-through"`` must score: it ignores the effect, and where the effect
is close to the identity the ratios are too (measured: a noise gate's probe favoured it by 0.03,
while its upstream cosine was 0.40 against 0.99 for the spectral ratio in ``bench/seam.py``)."""
CALIBRATION_LIMIT = 4.0
"""The most a choice's gradient is scaled by (either way) to bring its measured norm ratio to one."""
CALIBRATION_COSINE = 0.95
"""A choice's gradient is scaled only where its measured cosine reaches this: the probe's cosine is taken
over a few rows and directions, and a stand-in of the wrong effect can reach 0.9 by chance (measured: a
time-reversing effect's gain tangent, cosine 0.94 at half the norm)."""
CALIBRATION_AGREEMENT = 1.25
"""A choice's gradient is scaled only where random output gradients measure its norm ratio within this
factor of the loss's gradients (see :attr:`SignalProbe.scale`)."""
CALIBRATIONS = ("agreeing", "loss", "off")
"""When a choice's gradient is scaled to the norm the probe measured (the estimators' ``signal_calibration``):
``"agreeing"`` where random output gradients see the same norm error as the loss's (the default: a scale
right under any loss), ``"loss"`` wherever the loss's gradients see one (right for log-spectral losses like
the probe's, wrong for others: a notch's FFT ratio passes 0.67 of a random gradient's norm), ``"off"`` never."""
WHITE_GRADIENTS = 1
"""Random (white) output gradients the probe also scores the candidates with, per operating point."""
CANDIDATES = (*LINEARISATIONS, *TANGENTS, "straight-through")
"""What the automatic choice compares (straight-through is the identity)."""


def probe_renders(candidates: Sequence[str] = CANDIDATES, at_call: bool = False, rough: bool = False) -> int:
    """Renders per probed row and operating point: the centre, the test directions and the candidates' own;
    at the call's own point (``at_call``: its parameters, its input as given) also the test directions at
    :data:`FINE_TEST_STEP`, and where the response is ``rough`` the :data:`ROUGH_CANDIDATES`' own."""
    tried = [kind for kind in candidates if renders_per_node(kind) <= RENDER_BUDGET]
    own = sum(renders_per_node(kind) for kind in tried if kind not in ROUGH_CANDIDATES)
    fine = sum(renders_per_node(kind) for kind in tried if kind in ROUGH_CANDIDATES) if at_call and rough else 0
    return 1 + 2 * (TEST_DIRECTIONS + CAUSAL_DIRECTIONS) + own + (2 * TEST_DIRECTIONS + fine if at_call else 0)


def probe_generator() -> np.random.Generator:
    """A fresh generator seeded with :data:`PROBE_SEED`, for one probe."""
    return np.random.default_rng(PROBE_SEED)


def renders_per_node(choice: str, signal_samples: int = 4) -> int:
    """Extra renders per node per backward that the signal gradient ``choice`` costs."""
    if choice == "diagonal":
        return 2
    if choice in TANGENTS:
        return renders_per_backward(choice)
    if choice == "spsa":
        return 2 * signal_samples
    return 0


class LinearisedSignalRule(GradientRule):
    """The first inlet's VJP ``A^T g`` from a linearisation of ``kind`` (other inlets get none).

    Args:
        kind: one of :data:`~grafx_core.estimators.linearisation.LINEARISATIONS`.
        step: relative perturbation of ``"diagonal"`` (see
            :func:`~grafx_core.estimators.linearisation.diagonal_perturbation`).
        rng: the estimator's per-call generator (draws the signs).
    """

    def __init__(self, kind: str, step: float, rng: np.random.Generator) -> None:
        self.kind, self.step, self.rng = kind, step, rng
        self.signs: torch.Tensor | None = None
        self.h: torch.Tensor | None = None
        self.fitted: Any = None

    def jobs(self, saved: Saved) -> list[RenderJob]:
        if self.kind != "diagonal" or not saved.need_signals[0]:
            return []
        x = saved.signals[0]
        self.signs = rademacher(self.rng, tuple(x.shape))
        moved, self.h = diagonal_perturbation(x, self.signs, self.step, saved.y.shape[1])
        opposite, _ = diagonal_perturbation(x, -self.signs, self.step, saved.y.shape[1])
        rows = torch.arange(x.shape[0])
        others = tuple(s for s in saved.signals[1:])
        return [RenderJob((v, *others), cpu_rows(saved.params), None, rows, "diagonal (signal)")
                for v in (moved, opposite)]

    def prepare(self, saved: Saved, outputs: list[torch.Tensor]) -> None:
        if saved.need_signals[0]:
            extra = {} if self.kind != "diagonal" else {"perturbed": outputs[0], "opposite": outputs[1],
                                                        "signs": self.signs, "h": self.h}
            self.fitted = linearise(self.kind, saved.signals[0], saved.y, **extra)

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        grads: list[torch.Tensor | None] = [None] * len(saved.signals)
        if saved.need_signals[0]:
            if self.fitted is None:
                self.prepare(saved, outputs)
            assert self.fitted is not None
            grads[0] = self.fitted.adjoint(grad_y).to(saved.signals[0].dtype)
            self.fitted = None  # a second backward (retain_graph) fits again
        return None, tuple(grads)


@dataclass
class SignalProbe:
    """The outcome of :func:`probe_signal_gradient`.

    Attributes:
        choice: the chosen ``signal_gradient`` name: the best-scoring candidate, or ``"none"`` when the
            output does not move (``still``) or when even the best one's cosine is below
            :data:`FALLBACK_COSINE`.
        scores: score per candidate (see the module documentation).
        cosines: per candidate, the cosine between the upstream gradient it passes on and the one the
            effect's directional derivatives give (mean over the test gradients and the operating points
            at the call's own parameters, where its gradients are used; ``scores`` rank over every point).
        norm_ratios: per candidate, that gradient's norm over the true one's (geometric mean).
        still: whether the effect's output did not move at all (its input gradient is zero).
        point: ``[rows, columns]`` the parameters probed (CPU float64), to tell when they moved far.
        scale: what the choice's input gradient is multiplied by: one over its measured norm ratio where its
            direction is clearly right (cosine :data:`CALIBRATION_COSINE`), its norm ratio is outside
            :data:`TRUSTED_NORM` (within :data:`CALIBRATION_LIMIT`) and random output gradients measure the
            same ratio (within :data:`CALIBRATION_AGREEMENT`: the error is a scale whatever the loss), else one
            (see :data:`CALIBRATIONS` for the other rules).
        white_norm_ratio: the choice's norm ratio under random output gradients (``nan`` where not measured).
        fine_cosines: per candidate, the cosine against the fine reference (:data:`FINE_TEST_STEP`, at the
            call's own point; empty where nothing was measured).
        fine_norm_ratios: per candidate, the norm ratio against the fine reference.
        beside_cosines: per candidate, the cosine against the probe's own reference at the same point and
            under the same output gradients as ``fine_cosines`` (to set the two side by side).
        beside_norm_ratios: the norm ratio there.
        smoothness: the probe's own reference's cosine and norm ratio against the fine one (``None`` where not
            measured): outside :data:`TRUSTED_COSINE` and :data:`TRUSTED_NORM`, the response is ``rough``,
            provided the fine reference holds (``fine_agreement``).
        fine_agreement: the fine reference's forward one-sided differences' cosine and norm ratio against its
            backward ones: outside the aims, its own error (float32 rounding over a tiny step, a quantiser's
            steps) is as large as what it measures, and it judges nothing.
        tangent: whether the choice was ranked, trusted and reported against the fine reference (the response
            is rough and a stand-in follows its tangent), not the probe's own.
        causal_cosines: per candidate, the cosine measured along the causal test directions
            (:data:`CAUSAL_DIRECTIONS`, with the input itself) instead of the zero-phase bands, at the call's
            own parameters (``cosines`` are the zero-phase bands').
        causal_norm_ratios: the norm ratio there.
        causal: whether the causal directions were consulted (where the bands' verdict is in doubt), so that a
            candidate meeting the aims along either set is trusted.
    """

    choice: str
    scores: dict[str, float] = field(default_factory=dict)
    still: bool = False
    cosines: dict[str, float] = field(default_factory=dict)
    norm_ratios: dict[str, float] = field(default_factory=dict)
    point: torch.Tensor | None = None
    scale: float = 1.0
    white_norm_ratio: float = math.nan
    fine_cosines: dict[str, float] = field(default_factory=dict)
    fine_norm_ratios: dict[str, float] = field(default_factory=dict)
    beside_cosines: dict[str, float] = field(default_factory=dict)
    beside_norm_ratios: dict[str, float] = field(default_factory=dict)
    smoothness: tuple[float, float] | None = None
    fine_agreement: tuple[float, float] | None = None
    tangent: bool = False
    causal_cosines: dict[str, float] = field(default_factory=dict)
    causal_norm_ratios: dict[str, float] = field(default_factory=dict)
    causal: bool = False

    @property
    def rough(self) -> bool:
        """Whether the effect's response is not smooth at the scale of a fit's steps: the probe's reference
        and the fine one disagree beyond :data:`TRUSTED_COSINE` or :data:`TRUSTED_NORM`."""
        if self.smoothness is None or self.fine_agreement is None or not _meets_figures(self.fine_agreement):
            return False
        return not _meets_figures(self.smoothness)

    def measured(self, kind: str) -> tuple[float, float]:
        """``(cosine, norm ratio)`` of ``kind`` against the reference it was ranked by (the fine one where
        :attr:`tangent`), the norm ratio after :attr:`scale` for the choice (``nan`` where not measured): along
        the zero-phase bands, or along the causal directions where only those meet the aims."""
        scale = self.scale if kind == self.choice else 1.0
        if self.tangent:
            return self.fine_cosines.get(kind, math.nan), self.fine_norm_ratios.get(kind, math.nan) * scale
        bands = self.cosines.get(kind, math.nan), self.norm_ratios.get(kind, math.nan) * scale
        causal = self.causal_cosines.get(kind, math.nan), self.causal_norm_ratios.get(kind, math.nan) * scale
        return causal if self.causal and _meets_figures(causal) and not _meets_figures(bands) else bands

    @property
    def stepped(self) -> bool:
        """Whether the effect's response is stepped at the fine scale: the fine reference's forward and
        backward one-sided differences (:attr:`fine_agreement`) disagree beyond :data:`TRUSTED_COSINE` or
        :data:`TRUSTED_NORM` (a quantiser's steps, a codec's frames, or float32 rounding over the tiny step)."""
        return self.fine_agreement is not None and not _meets_figures(self.fine_agreement)

    def stepping(self) -> str:
        """What the fine reference's halves measured, for a :attr:`stepped` response (``""`` otherwise): the
        probe's own reference is then a secant across those steps, and the loss's slope in a graph can depend
        on how many of them a fit's steps cross (measured on ``pedalboard:bitcrush`` with tracks within a few
        quantiser steps of zero: the whole graph's differences at 0.3-3 dB were 3.6-5.9 times as long as at
        0.03-0.15 dB)."""
        if not self.stepped or self.fine_agreement is None:
            return ""
        cosine, ratio = self.fine_agreement
        return (f"the effect's response is stepped: at {FINE_TEST_STEP:.2%} of the input's level its forward and "
                f"backward differences agree only to cosine {cosine:.3g}, norm ratio {ratio:.3g} (a quantiser's "
                f"steps, a codec's frames or rounding), so the slope at {TEST_STEP:.0%} these figures are measured "
                f"against is a secant across those steps, and the loss's slope can change with the size of a fit's "
                f"steps")

    @property
    def trusted(self) -> bool:
        """Whether the response is smooth (not :attr:`rough`) and the choice measured
        :data:`TRUSTED_COSINE` and, once scaled by :attr:`scale`, a norm ratio within :data:`TRUSTED_NORM`
        (or nothing needed one)."""
        if self.still:
            return True
        return not self.rough and _meets_figures(self.measured(self.choice))  # nan fails

    @property
    def best(self) -> str:
        """The best-scoring candidate (``"none"`` where nothing was scored)."""
        return max(self.scores, key=lambda kind: self.scores[kind]) if self.scores else "none"

    def describe(self) -> str:
        """``"fft-ratio 0.998, spectral-ratio 0.97, ..."``, best first."""
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v:.3g}" for k, v in ranked)

    def quality(self, kind: str) -> str:
        """``"score 0.41: cosine 0.72, norm ratio 1.9"`` for ``kind``, as measured by the probe (and the
        scale applied to the choice, where it is not one)."""
        scaled = f", scaled by {self.scale:.3g}" if kind == self.choice and self.scale != 1.0 else ""
        cosine, ratio = self.measured(kind)
        ratio /= self.scale if kind == self.choice else 1.0
        return f"score {self.scores.get(kind, math.nan):.3g}: cosine {cosine:.3g}, norm ratio {ratio:.3g}{scaled}"

    def roughness(self, kind: str) -> str:
        """What the two references measured, for a :attr:`rough` response (``""`` for a smooth one)."""
        if not self.rough or self.smoothness is None:
            return ""
        fine = (f"cosine {self.fine_cosines.get(kind, math.nan):.3g}, norm ratio "
                f"{self.fine_norm_ratios.get(kind, math.nan):.3g}")
        coarse = (f"cosine {self.beside_cosines.get(kind, math.nan):.3g}, norm ratio "
                  f"{self.beside_norm_ratios.get(kind, math.nan):.3g}")
        return (f"the effect's response is not smooth at the scale of a fit's steps: its directional derivatives "
                f"at steps of {FINE_TEST_STEP:.2%} and {TEST_STEP:.0%} of the input's level agree only to "
                f"cosine {self.smoothness[0]:.3g}, norm ratio {self.smoothness[1]:.3g} (the larger step's over "
                f"the smaller's); {kind} measured {fine} against the {FINE_TEST_STEP:.2%} step's (the tangent, "
                f"what autograd through the effect gives) and {coarse} against the {TEST_STEP:.0%} step's (the "
                f"slope a fit's steps see)")


def _measure(passed: torch.Tensor, true: torch.Tensor) -> tuple[float, float, float]:
    """``(score, cosine, norm ratio)`` of the upstream gradient a stand-in passes on against the true one.

    Both are ``[rows, directions]``; ``nan``s where the true one is zero.
    """
    p, t = passed.double().flatten(), true.double().flatten()
    pn, tn = float(p.norm()), float(t.norm())
    if not tn > 0 or not math.isfinite(pn):
        return math.nan, math.nan, math.nan
    cos = float(p @ t) / max(pn * tn, 1e-300)
    log_ratio = math.log2(max(pn / tn, 1e-12))
    return cos - NORM_PENALTY * abs(log_ratio), cos, log_ratio


def _upstream_like(x: torch.Tensor, rng: np.random.Generator, taps: int = 64) -> torch.Tensor:
    """``x`` through a random decaying FIR filter, per row, scaled to unit RMS (random signs for silence)."""
    rows, channels, length = x.shape
    taps = min(taps, length)
    decay = np.exp(-np.arange(taps) / 24.0)  # ~1 ms: time-local, yet no single tap dominates
    kernels = rng.standard_normal((rows, taps)) * decay
    work = torch.promote_types(x.dtype, torch.float32)
    k = torch.from_numpy(kernels[:, ::-1].copy()).to(device=x.device, dtype=work)
    padded = torch.nn.functional.pad(x.to(work), (taps - 1, 0))
    # one grouped convolution: every row (and each of its channels) with its own kernel
    out = torch.nn.functional.conv1d(padded.reshape(1, rows * channels, -1),
                                     k.repeat_interleave(channels, dim=0).unsqueeze(1), groups=rows * channels)
    out = out.reshape(rows, channels, length)
    rms = out.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    noise = rademacher(rng, tuple(x.shape)).to(device=x.device, dtype=work)
    return torch.where(rms > 0, out / rms.clamp(min=1e-30), noise).to(x.dtype)


EQ_EDGES = (1 / 64, 1 / 8)
"""Crossovers of the probe's EQ-like test directions, as fractions of the Nyquist frequency (about 345 Hz and
2.8 kHz at 44.1 kHz): the lows, mids and highs of the input, as an upstream shelf or peak gain moves them."""


def _test_steps(x: torch.Tensor, tests: torch.Tensor, step: float = TEST_STEP) -> torch.Tensor:
    """``[N, K, 1, 1]`` steps along the test directions ``[N, K, C, L]``: ``step`` (:data:`TEST_STEP`) of each
    one's own RMS, and a change of at least :data:`TEST_FLOOR` of the row's RMS (in proportion for another
    ``step``)."""
    work = torch.promote_types(x.dtype, torch.float32)
    row = x.detach().to(work).pow(2).mean(dim=(1, 2)).sqrt()  # [N]
    own = tests.detach().to(work).pow(2).mean(dim=(2, 3)).sqrt()  # [N, K]
    change = torch.maximum(step * own, TEST_FLOOR * step / TEST_STEP * row.unsqueeze(1))
    return (change / own.clamp(min=1e-30)).to(x.dtype)[..., None, None]


def _eq_like(x: torch.Tensor) -> torch.Tensor:
    """``[N, 3, C, L]``: the lows, mids and highs of ``x`` (smooth crossovers an octave wide, adding up to ``x``).

    At their own scale, not normalised: an upstream EQ's gains move these parts of the input, and a
    log-spectral loss weighs the quiet highs as much as the loud lows.
    """
    length = x.shape[-1]
    work = torch.promote_types(x.dtype, torch.float32)
    bins = length // 2 + 1
    position = torch.log2(torch.linspace(0, 1, bins, dtype=torch.float64, device=x.device).clamp(min=1e-6))
    steps = [((position - math.log2(edge)) + 0.5).clamp(0, 1) for edge in EQ_EDGES]
    below = [0.5 * (1 + torch.cos(math.pi * t)) for t in steps]  # 1 below an edge, 0 above
    masks = torch.stack([below[0], below[1] - below[0], 1 - below[1]]).to(work)  # [3, F]
    spectrum = torch.fft.rfft(x.to(work))
    return torch.fft.irfft(masks[None, :, None] * spectrum.unsqueeze(1), n=length).to(x.dtype)


def _probe_rows(x: torch.Tensor) -> torch.Tensor:
    """Up to :data:`PROBE_ROWS` node rows spread over the call's levels, quietest to loudest sounding one.

    The first rows alone may all be quiet (a compressor they leave alone looks linear) or silent.
    """
    rms = x.detach().to(torch.float64).pow(2).mean(dim=(1, 2)).cpu()
    order = torch.argsort(rms, stable=True)
    order = torch.cat([order[rms[order] > 0], order[rms[order] == 0]])  # sounding rows first
    sounding = int((rms > 0).sum())
    if sounding <= PROBE_ROWS:
        return torch.sort(order[:PROBE_ROWS]).values
    spread = torch.linspace(0, sounding - 1, PROBE_ROWS).round().long()
    return torch.sort(order[spread]).values


def _adjoints(kinds: Sequence[str], x: torch.Tensor, y: torch.Tensor, diagonal: dict[str, torch.Tensor],
              tangent: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
              unsloped: set[str] | None = None) -> dict[str, Any]:
    """Per candidate, its vector-Jacobian product: a function from an output gradient to the input's; the tangent
    stand-ins whose differences are not a slope (:attr:`~grafx_core.estimators.tangent.TangentStandIn.slope`)
    are added to ``unsloped``."""
    out: dict[str, Any] = {}
    for kind in kinds:
        if kind == "straight-through":
            if y.shape == x.shape:
                out[kind] = lambda g: g
        elif kind in TANGENTS:
            stand_in = fit_tangent(kind, x, y, *tangent[kind], halves=unsloped is not None)
            out[kind] = stand_in.adjoint
            if unsloped is not None and not stand_in.slope:
                unsloped.add(kind)
        else:
            out[kind] = linearise(kind, x, y, **(diagonal if kind == "diagonal" else {})).adjoint
    return out


def _test_gradients(y: torch.Tensor, rng: np.random.Generator) -> list[torch.Tensor]:
    """:data:`TEST_GRADIENTS` output gradients, ``[rows, C, L]``, as a fit in a graph sends them.

    The probed rows are summed, as a mix node sums tracks, and the multi-resolution STFT loss compares the
    sum with itself recoloured by a random filter under a slow random gain; every row receives the sum's
    gradient. A row's own loss would not do: its gradient follows the row's own output, along which any
    secant is right (measured: with it every stand-in of ``calf_exciter`` scored 0.97-1.0, with a mix's
    gradient the smooth gain 0.6, as in a graph).
    """
    work = torch.promote_types(y.dtype, torch.float32)
    mix = y.detach().to(work).sum(dim=0, keepdim=True)
    level = mix.pow(2).mean().sqrt()
    grads = []
    for _ in range(TEST_GRADIENTS):
        # A fit's target differs in colour (some bands louder, some quieter: both signs of the log-spectral
        # gradient) and in level over time (what tells a dynamics processor's secant from its tangent).
        coloured = 0.5 * mix + level * _upstream_like(mix, rng, taps=16)
        slow = torch.from_numpy(rng.standard_normal((1, 1, 5))).to(mix)
        envelope = torch.nn.functional.interpolate(slow, size=mix.shape[-1], mode="linear", align_corners=True)
        target = coloured * torch.exp(0.35 * envelope)  # about ±3 dB, over a fifth of the signal
        with torch.enable_grad():
            leaf = mix.clone().requires_grad_()
            (grad,) = torch.autograd.grad(multi_resolution_stft_loss(leaf, target), leaf)
        grads.append(grad.expand_as(y).contiguous())
    return grads


def probe_signal_gradient(target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
                          step: float, rng: np.random.Generator,
                          candidates: Sequence[str] = CANDIDATES, calibration: str = "agreeing") -> SignalProbe:
    """Choose a signal gradient for ``target`` from a few batched renders of its first rows.

    Per operating point (the call's parameters, and random ones where the target
    knows its ranges; the input as given and louder): the input as given, at
    ``x ± h s`` (for ``"diagonal"``), at ``x ± h u`` for the
    :data:`TEST_DIRECTIONS` test directions, and along the directions of the
    tangent stand-ins: :func:`probe_renders` renders per probed row and point.
    Candidates are scored by the upstream gradient they pass on (see the module
    documentation).

    Args:
        target: the processor as a render target.
        signals: one ``[N, channels, samples]`` tensor per inlet (the call's).
        params: ``[N, columns]`` parameters of the call.
        step: relative step of ``"diagonal"`` and ``"gain-tangent"`` (the central differences step by
            :data:`~grafx_core.estimators.tangent.JVP_STEP`).
        rng: draws the signs, test gradients and random operating points (:func:`probe_generator` where
            the processor probes: the same for every probe).
        candidates: names to compare (default :data:`CANDIDATES`); candidates costing more than
            :data:`RENDER_BUDGET` renders per backward are left out.
        calibration: when the choice's norm is scaled (one of :data:`CALIBRATIONS`, see :attr:`SignalProbe.scale`).

    Returns:
        A :class:`SignalProbe`; nothing about the processor is changed.
    """
    candidates = [kind for kind in candidates if renders_per_node(kind) <= RENDER_BUDGET]
    chosen = _probe_rows(signals[0])
    rows = len(chosen)
    given = tuple(s.detach()[chosen.to(s.device)] for s in signals)
    points = [cpu_rows(params)[chosen]]
    elsewhere = target.random_rows(points[0], rng)
    if elsewhere is not None:
        points.append(elsewhere)
    nodes = torch.arange(rows)
    sounding = (given[0].flatten(1).abs().amax(dim=1) > 0).to(given[0].device)
    # Operating points: the parameters (the call's, random ones) and the input's level (as given, louder).
    operating = [((given[0] * level, *given[1:]), p) for level in PROBE_LEVELS for p in points]
    own = [k % len(points) == 0 for k in range(len(operating))]  # at the call's own parameters
    centres = target.render([RenderJob(xs, p, None, nodes, "signal-gradient probe") for xs, p in operating])
    jobs, plans = [], []
    for k, (xs, p) in enumerate(operating):
        x = xs[0]
        signs = rademacher(rng, tuple(x.shape))
        moved, h = diagonal_perturbation(x, signs, step, centres[0].shape[1])
        opposite, _ = diagonal_perturbation(x, -signs, step, centres[0].shape[1])
        tests = torch.cat([x.unsqueeze(1), _eq_like(x), eq_gain_directions(x, EQ_EDGES)], dim=1)  # [rows, K, C, L]
        ht = _test_steps(x, tests)
        tangents = {kind: tangent_renders(kind, x, step) for kind in TANGENTS
                    if kind in candidates and kind not in ROUGH_CANDIDATES}
        # At the call's own point (its parameters, its input as given), where the choice's gradients are used,
        # the same differences at the fine step too: where they disagree, the response is not smooth at the
        # scale of a fit's steps. Not at the louder level: a limiter driven 12 dB harder can be smooth there
        # and rough as called (measured), or the other way round.
        bands = tests[:, :TEST_DIRECTIONS]
        hf = _test_steps(x, bands, FINE_TEST_STEP) if k == 0 else None
        plans.append((x, {"signs": signs, "h": h}, tests, ht, tangents, hf))
        shifted = torch.cat([x.unsqueeze(1) + ht * tests, x.unsqueeze(1) - ht * tests], dim=1).flatten(0, 1)
        fine_shifts = [] if hf is None else [(torch.cat([x.unsqueeze(1) + hf * bands, x.unsqueeze(1) - hf * bands],
                                                 dim=1).flatten(0, 1), 2 * TEST_DIRECTIONS)]
        for v, count in ((torch.stack([moved, opposite], dim=1).flatten(0, 1), 2), (shifted, tests.shape[1] * 2),
                         *((t[0], t[0].shape[0] // rows) for t in tangents.values()), *fine_shifts):
            others = tuple(s.repeat_interleave(count, dim=0) for s in xs[1:])
            jobs.append(RenderJob((v, *others), p.repeat_interleave(count, dim=0), None, node_rows(rows, count),
                                  "signal-gradient probe"))
    outs = iter(target.render(jobs))
    noise = rng.spawn(1)[0]  # the random gradients' own stream: the test gradients stay as they were
    per_point: list[dict[str, list[tuple[float, float, float]]]] = []
    causal_points: list[dict[str, list[tuple[float, float, float]]]] = []  # the same, along the causal directions
    white: list[dict[str, list[tuple[float, float, float]]]] = []  # the same, under random output gradients
    fine_points: list[_Scoring] = []  # the call's own point, where the fine reference is measured
    unsloped: set[str] = set()  # tangent stand-ins whose differences were not a slope somewhere
    smooth: list[tuple[float, float, float]] = []  # the probe's reference against its fine one
    settled: list[tuple[float, float, float]] = []  # the fine reference's one-sided halves, one against the other
    at_call: list[bool] = []
    for y, (x, diagonal, tests, ht, tangents, hf), mine, (xs, p) in zip(centres, plans, own, operating):
        diagonal["perturbed"], diagonal["opposite"] = next(outs).unflatten(0, (rows, 2)).unbind(dim=1)
        jvps = central_jvps(next(outs), ht)  # [rows, K, C_out, L]
        rendered = {kind: (next(outs), directions, hk) for kind, (_, directions, hk) in tangents.items()}
        fine, sides = _fine_differences(next(outs), y, hf) if hf is not None else (None, None)
        moving = (jvps.flatten(2).norm(dim=2) > MUTE * tests.flatten(2).norm(dim=2)).any(dim=1)
        live = sounding & moving
        # A point where the effect is all but mute (a band-pass far from the signal) says nothing
        # about the gradient's direction, and would penalise every candidate's norm.
        if not bool(live.any()):
            continue
        measured: dict[str, list[tuple[float, float, float]]] = {}
        unweighted: dict[str, list[tuple[float, float, float]]] = {}
        causal: dict[str, list[tuple[float, float, float]]] = {}
        per_point.append(measured)
        white.append(unweighted)
        causal_points.append(causal)
        at_call.append(mine)
        gradients: list[tuple[torch.Tensor, Found, Found | None]] = [(g, measured, causal)
                                                                     for g in _test_gradients(y, rng)]
        gradients += [(torch.from_numpy(noise.standard_normal(tuple(y.shape))).to(y), unweighted, None)
                      for _ in range(WHITE_GRADIENTS)]
        scoring = _Scoring(xs, p, y, tests, live, gradients, jvps, fine)
        if fine is not None:
            fine_points.append(scoring)
            smooth += [_measure(t[:, :TEST_DIRECTIONS], f) for t, f in zip(scoring.truths, scoring.fine_truths)
                       if f is not None]
            assert sides is not None
            forward, backward = (scoring.products(side) for side in sides)
            settled += [_measure(a, b) for a, b in zip(forward, backward) if a is not None and b is not None]
        scoring.score(_adjoints([kind for kind in candidates if kind not in ROUGH_CANDIDATES], x, y, diagonal,
                                rendered, unsloped))
    smoothness, agreement = _mean_found(smooth), _mean_found(settled)
    # The fine reference says something only where its one-sided halves agree: where they do not, its own
    # error (float32 rounding over a tiny step, a quantiser's steps) is as large as what it measures
    # (measured: a float32 noise gate's fine reference met a float64 one's, and its 2 % reference, only to
    # cosine 0.74; its halves agreed to less).
    rough = smoothness is not None and agreement is not None and _meets(agreement) and not _meets(smoothness)
    finer = [kind for kind in candidates if kind in ROUGH_CANDIDATES]
    if rough and finer and fine_points:
        _score_fine(target, fine_points, finer, step, nodes)
    # A stand-in whose differences were not a slope at some point (a quantiser's steps) is not considered.
    kinds = [kind for kind in candidates if any(kind in p for p in per_point) and kind not in unsloped]
    if not kinds:  # silent inputs, or outputs that never move: no gradient to pass
        return SignalProbe("none", still=True, point=cpu_rows(params))
    # Ranked over every point (the choice must hold as the parameters move); trusted, and reported, at the
    # call's own parameters, where its gradients are used.
    mean = {kind: _means([p for p in per_point if kind in p], kind) for kind in kinds}
    here = {kind: _means([p for p, mine in zip(per_point, at_call) if mine and kind in p], kind) or mean[kind]
            for kind in kinds}
    causal_mean = {kind: _means([p for p in causal_points if kind in p], kind) for kind in kinds}
    causal_here = {kind: _means([p for p, mine in zip(causal_points, at_call) if mine and kind in p], kind)
                   or causal_mean[kind] for kind in kinds}
    at_fine = {kind: _means([f.fine_found for f in fine_points if kind in f.fine_found], kind) for kind in kinds
               if any(kind in f.fine_found for f in fine_points)}
    beside = {kind: _means([f.coarse_found for f in fine_points if kind in f.coarse_found], kind) for kind in at_fine}
    # Where the response is rough and a stand-in follows the fine reference (the effect's tangent, what
    # autograd through it would give), that is what the choice follows; else the probe's reference, as a
    # smooth effect's is, and a quantiser's (whose fine differences are rounding noise).
    tangent = rough and any(_meets(m) for m in at_fine.values())
    ranked = at_fine if tangent else {k: m for k, m in here.items() if k not in ROUGH_CANDIDATES} or here

    margins = {kind: RENDER_MARGIN * renders_per_node(kind) for kind in kinds}
    margins["straight-through"] = IDENTITY_MARGIN
    bands_scores = {kind: m[0] for kind, m in at_fine.items()} if tangent else {kind: mean[kind][0] for kind in ranked}
    worse_scores = {kind: min(mean[kind][0], *causal_mean[kind][:1]) for kind in ranked}

    def choose(meets: Any, scores: dict[str, float]) -> tuple[str, dict[str, float]]:
        # A fallback stand-in is ranked only where the one it stands in for misses the aims.
        pool = [k for k in ranked if not (FALLBACKS.get(k) in ranked and meets(FALLBACKS[k]))]
        # Among the candidates that meet the aims where they are used, the best; else the best of all.
        trusted = [kind for kind in pool if meets(kind)] or pool
        return max(trusted, key=lambda kind: scores[kind] - margins.get(kind, 0.0)), {k: scores[k] for k in pool}

    def causally(kind: str) -> bool:  # meets the aims along the causal directions
        return bool(causal_here.get(kind)) and _meets(causal_here[kind])

    best, scores = choose(lambda kind: _meets(ranked[kind]), bands_scores)
    # The causal directions are consulted where the bands' verdict is in doubt: their trusted choice misses the
    # aims along the causal directions, or no candidate reaches the cosine aim along the bands at all.
    consulted = not tangent and (
        (_meets(ranked[best]) and bool(causal_here.get(best)) and not causally(best))
        or all(m[1] < TRUSTED_COSINE for m in ranked.values()))
    if consulted:
        best, scores = choose(lambda kind: _meets(ranked[kind]) or causally(kind), worse_scores)
    choice = best if ranked[best][1] >= FALLBACK_COSINE or (consulted and causally(best)) else "none"
    plain = _means([p for p, mine in zip(white, at_call) if mine and choice in p], choice)
    return SignalProbe(choice, scores, cosines={k: m[1] for k, m in here.items()},
                       norm_ratios={k: float(2 ** m[2]) for k, m in here.items()}, point=cpu_rows(params),
                       scale=1.0 if tangent or (consulted and causally(choice)) else
                       _calibration(here.get(choice, []), plain, calibration),
                       white_norm_ratio=float(2 ** plain[2]) if plain else math.nan,
                       fine_cosines={k: m[1] for k, m in at_fine.items()},
                       fine_norm_ratios={k: float(2 ** m[2]) for k, m in at_fine.items()},
                       beside_cosines={k: m[1] for k, m in beside.items()},
                       beside_norm_ratios={k: float(2 ** m[2]) for k, m in beside.items()},
                       smoothness=None if smoothness is None else (smoothness[1], float(2 ** smoothness[2])),
                       fine_agreement=None if agreement is None else (agreement[1], float(2 ** agreement[2])),
                       tangent=tangent, causal_cosines={k: m[1] for k, m in causal_here.items() if m},
                       causal_norm_ratios={k: float(2 ** m[2]) for k, m in causal_here.items() if m},
                       causal=consulted)


Found = dict[str, list[tuple[float, float, float]]]
"""Per candidate, its ``(score, cosine, log2 norm ratio)`` under each output gradient."""


class _Scoring:
    """One scored operating point: its output gradients, the true upstream products under them (at the
    probe's step and, at the call's parameters, at the fine step), and what each candidate measured."""

    def __init__(self, xs: tuple[torch.Tensor, ...], params: torch.Tensor, y: torch.Tensor, tests: torch.Tensor,
                 live: torch.Tensor, gradients: list[tuple[torch.Tensor, Found, Found | None]],
                 jvps: torch.Tensor, fine: torch.Tensor | None) -> None:
        self.xs, self.params, self.y, self.tests, self.live, self.gradients = xs, params, y, tests, live, gradients
        loss_gradients = gradients[0][1]
        self.truths = [_products(g, jvps, live) for g, _, _ in gradients]
        # The fine reference under the loss's gradients only: what it is compared with is the loss's.
        self.fine_truths = [None if fine is None or into is not loss_gradients
                            else _products(g, fine, live) for g, into, _ in gradients]
        self.fine_found: dict[str, list[tuple[float, float, float]]] = {}
        self.coarse_found: dict[str, list[tuple[float, float, float]]] = {}  # the same gradients, coarse

    def products(self, jvps: torch.Tensor) -> list[torch.Tensor | None]:
        """``<g, J u>`` from ``jvps`` ``[rows, K, C_out, L]`` under the loss's gradients (``None`` for the others)."""
        return [None if fine is None else _products(g, jvps, self.live)
                for (g, _, _), fine in zip(self.gradients, self.fine_truths)]

    def score(self, adjoints: dict[str, Any]) -> None:
        """Measure each candidate's upstream products against the true ones, along the zero-phase bands (with
        the input itself) and along the causal directions (with the input itself)."""
        bands, causal = list(range(TEST_DIRECTIONS)), [0, *range(TEST_DIRECTIONS, self.tests.shape[1])]
        for kind, adjoint in adjoints.items():
            for (g, into, causal_into), whole, fine in zip(self.gradients, self.truths, self.fine_truths):
                passed = _products(adjoint(g.to(self.y.dtype)), self.tests, self.live)
                if causal_into is not None and len(causal) > 1:
                    along = _measure(passed[:, causal], whole[:, causal])
                    if not math.isnan(along[0]):
                        causal_into.setdefault(kind, []).append(along)
                passed, truth = passed[:, bands], whole[:, bands]
                found = _measure(passed, truth)
                if not math.isnan(found[0]):
                    into.setdefault(kind, []).append(found)
                if fine is None:
                    continue
                for found, where in ((_measure(passed, fine), self.fine_found), (found, self.coarse_found)):
                    if not math.isnan(found[0]):
                        where.setdefault(kind, []).append(found)


def _score_fine(target: RenderTarget, kept: Sequence[_Scoring], kinds: Sequence[str], step: float,
                nodes: torch.Tensor) -> None:
    """Render and score the :data:`ROUGH_CANDIDATES` ``kinds`` at the points ``kept``."""
    jobs, plans = [], []
    rows = len(nodes)
    for scoring in kept:
        x = scoring.xs[0]
        tangents = {kind: tangent_renders(kind, x, step) for kind in kinds}
        plans.append(tangents)
        for moved, _, _ in tangents.values():
            count = moved.shape[0] // rows
            others = tuple(s.repeat_interleave(count, dim=0) for s in scoring.xs[1:])
            jobs.append(RenderJob((moved, *others), scoring.params.repeat_interleave(count, dim=0), None,
                                  node_rows(rows, count), "signal-gradient probe (fine)"))
    outs = iter(target.render(jobs))
    for scoring, tangents in zip(kept, plans):
        rendered = {kind: (next(outs), directions, hk) for kind, (_, directions, hk) in tangents.items()}
        scoring.score(_adjoints(kinds, scoring.xs[0], scoring.y, {}, rendered))


def _fine_differences(outputs: torch.Tensor, y: torch.Tensor,
                      h: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The fine reference's central differences ``[rows, K, C_out, L]`` and its one-sided halves
    ``(f(x + h u) - f(x)) / h`` and ``(f(x) - f(x - h u)) / h``, from the ``outputs`` of
    :func:`central_jvps` and the centre ``y``."""
    rows, k = h.shape[:2]
    work = torch.promote_types(outputs.dtype, torch.float32)
    pairs = outputs.detach().to(work).reshape(rows, 2, k, *outputs.shape[1:])
    centre, step = y.detach().to(work).unsqueeze(1), h.to(work)
    return central_jvps(outputs, h), ((pairs[:, 0] - centre) / step, (centre - pairs[:, 1]) / step)


def _products(g: torch.Tensor, jvps: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """``<g, J u>`` per live row and test direction: ``g`` ``[rows, C_out, L]`` against ``jvps``
    ``[rows, K, C_out, L]`` (the directional derivatives ``J u``), in ``jvps``' dtype."""
    return torch.einsum("rcl,rkcl->rk", g.to(jvps.dtype), jvps)[live]


def _mean_found(found: Sequence[tuple[float, float, float]]) -> list[float] | None:
    """Mean score, cosine and log2 norm ratio of ``found`` (``None`` where nothing was measured)."""
    kept = [f for f in found if not math.isnan(f[0])]
    return [float(np.mean([f[i] for f in kept])) for i in range(3)] if kept else None


def _calibration(measured: Sequence[float], plain: Sequence[float], calibration: str = "agreeing") -> float:
    """One over the norm ratio of a choice whose direction is clearly right but whose norm is not; else one.

    A stand-in can follow the effect's direction and still pass on the wrong amount (measured: a
    bitcrusher's ratios pass on 0.53-0.66 of the upstream gradient at cosine 0.97-0.98, as its coarse steps
    grow faster than the signal); the probe measured that amount where the gradients are used. Only where
    random output gradients (``plain``) measure the same amount, within :data:`CALIBRATION_AGREEMENT`: then
    the error is the stand-in's, a scale, and one number corrects it under any loss. Where only the loss's
    gradients see it, it lies in the bins that loss weighs most (an LTI fit's quiet bins), and scaling every
    bin for it makes every other loss's gradient wrong (measured: a notch's exact-elsewhere FFT ratio,
    scaled so, passed 0.67 of a random gradient's norm). ``calibration="loss"`` scales by the loss's
    gradients alone, ``"off"`` never.
    """
    if calibration == "off" or not measured or measured[1] < CALIBRATION_COSINE:
        return 1.0
    ratio = 2 ** measured[2]
    if TRUSTED_NORM[0] <= ratio <= TRUSTED_NORM[1]:
        return 1.0
    if calibration == "agreeing" and (not plain or abs(plain[2] - measured[2]) > math.log2(CALIBRATION_AGREEMENT)):
        return 1.0
    return float(min(max(1 / ratio, 1 / CALIBRATION_LIMIT), CALIBRATION_LIMIT))


class _ScaleGradient(torch.autograd.Function):
    """The identity, whose backward multiplies the gradient by a constant."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scaled_signals(owner: object, signals: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``signals`` with the first one's gradient scaled by the automatic choice's :attr:`SignalProbe.scale`.

    ``owner`` is a processor that :func:`settle_signal_gradient` settled; where it uses its probe's choice
    and that choice has a scale other than one, the first inlet's gradient is multiplied by it (the
    identity in the forward pass; the parameters' gradients are untouched). Else ``signals`` as given.
    """
    probe = getattr(owner, "signal_probe", None)
    if (probe is None or probe.scale == 1.0 or getattr(owner, "signal_gradient", None) != probe.choice
            or not signals or not signals[0].requires_grad):
        return tuple(signals)
    return (_ScaleGradient.apply(signals[0], probe.scale), *signals[1:])


def _meets_figures(figures: tuple[float, float]) -> bool:
    """Whether ``(cosine, norm ratio)`` reaches :data:`TRUSTED_COSINE` within :data:`TRUSTED_NORM`."""
    return figures[0] >= TRUSTED_COSINE and TRUSTED_NORM[0] <= figures[1] <= TRUSTED_NORM[1]


def _meets(measured: Sequence[float]) -> bool:
    """Whether ``(score, cosine, log2 norm ratio)`` reaches :data:`TRUSTED_COSINE` within :data:`TRUSTED_NORM`."""
    return _meets_figures((measured[1], 2 ** measured[2]))


def _means(points: Sequence[dict[str, list[tuple[float, float, float]]]], kind: str) -> list[float]:
    """Mean score, cosine and log2 norm ratio of ``kind`` over ``points`` (empty where none)."""
    return _mean_found([f for p in points for f in p[kind]]) or []


_TRUST = f"cosine {TRUSTED_COSINE} with a norm ratio within {TRUSTED_NORM[0]}-{TRUSTED_NORM[1]}"


def _moved_far(probe: Any, target: RenderTarget, params: torch.Tensor) -> bool:
    """Whether ``params`` left the neighbourhood of the automatic choice's probed point."""
    point = getattr(probe, "point", None)
    if point is None or not target.differentiable_columns():
        return False
    rows = min(point.shape[0], params.shape[0])
    now, then = cpu_rows(params)[:rows], point[:rows]
    cols = target.differentiable_columns()
    distance = target.distance(now, then)[:, cols]
    return bool(distance.numel()) and float(distance.max()) > REVISIT_DISTANCE


def settle_signal_gradient(owner: object, target: RenderTarget, signals: Sequence[torch.Tensor],
                           params: torch.Tensor, name: str) -> str:
    """Resolve ``owner.signal_gradient == "auto"`` at a call whose input wants a gradient, and revisit it.

    ``owner`` is a processor with ``signal_gradient``, ``estimator`` and a
    ``_warned`` set; it gets ``signal_gradient`` (the choice) and
    ``signal_probe`` (the :class:`SignalProbe`). A choice the probe made is made
    again when a later call's parameters have moved more than
    :data:`REVISIT_DISTANCE` from the probed point. When the best candidate is
    not trusted (:attr:`SignalProbe.trusted`), it is passed on with a
    :class:`~grafx_core.estimators.WeakSignalGradientWarning` stating its
    measured cosine and norm ratio, or, where its cosine is below
    :data:`FALLBACK_COSINE`, the gradient stops with a
    :class:`~grafx_core.estimators.StoppedSignalGradientWarning`; each warns once.

    Returns:
        The signal gradient to use for this call.

    Raises:
        SignalGradientQualityError: the estimator's ``strict_signal_gradient`` is set and the best
            candidate is not trusted.
    """
    choice = getattr(owner, "signal_gradient")
    if not any(s.requires_grad for s in signals):
        return choice
    previous = getattr(owner, "signal_probe", None)
    revisit = previous is not None and choice == previous.choice and _moved_far(previous, target, params)
    if choice != "auto" and not revisit:
        return choice
    estimator = getattr(owner, "estimator")
    probe = probe_signal_gradient(target, signals, params, step=estimator.signal_step, rng=probe_generator(),
                                  calibration=getattr(estimator, "signal_calibration", "agreeing"))
    setattr(owner, "signal_probe", probe)
    setattr(owner, "signal_gradient", probe.choice)
    if probe.trusted:
        return probe.choice
    advice = "choose a signal_gradient explicitly, or a neural proxy, to train what is upstream"
    rough = probe.roughness(probe.choice if probe.choice != "none" else probe.best)
    if getattr(estimator, "strict_signal_gradient", False):
        why = rough if rough and _meets_figures(probe.measured(probe.best)) else \
            f"no stand-in for the input signal's gradient reached {_TRUST}" + (f" ({rough})" if rough else "")
        raise SignalGradientQualityError(
            f"{name}: {why} (scores {probe.describe()}; the best, {probe.best}, {probe.quality(probe.best)}) and "
            f"the estimator's strict_signal_gradient is set; {advice}")
    if probe.choice == "none":
        warn_once(getattr(owner, "_warned"), "signal",
                  f"{name}: the input signal's gradient is stopped: no stand-in passed on the gradient that the "
                  f"effect's directional derivatives give (scores {probe.describe()}; the best, {probe.best}, "
                  f"measured {probe.quality(probe.best)}, below the cosine {FALLBACK_COSINE} that an estimate is "
                  f"passed on with; {_TRUST} is trusted" + (f"; {rough or probe.stepping()}"
                                                            if rough or probe.stepped else "") + f"); {advice}",
                  StoppedSignalGradientWarning, stacklevel=5)
    elif rough:
        warn_once(getattr(owner, "_warned"), ("rough", probe.choice),
                  f"{name}: the input signal's gradient is {probe.choice}, "
                  f"{'following the tangent' if probe.tangent else 'following the slope at a fit step'}, but "
                  f"{rough}; what is upstream trains on it (scores {probe.describe()}); {advice} if it does not",
                  RoughSignalGradientWarning, stacklevel=5)
    else:
        stepped = probe.stepping()
        warn_once(getattr(owner, "_warned"), ("weak", probe.choice),
                  f"{name}: the input signal's gradient is the best available estimate, {probe.choice}, "
                  f"which matched the gradient that the effect's directional derivatives give only in part "
                  f"(measured {probe.quality(probe.choice)}; scores {probe.describe()}; {_TRUST} is trusted"
                  + (f"; {stepped}" if stepped else "") + f"); what is upstream trains on it; {advice} if it does "
                  f"not", WeakSignalGradientWarning, stacklevel=5)
    return probe.choice
