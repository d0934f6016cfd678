"""Signal gradients from linearisations, and the automatic choice among them and the tangent stand-ins.

:class:`LinearisedSignalRule` gives the input signal's VJP as ``A^T g``, with
``A`` the :class:`~grafx_core.estimators.linearisation.Linearisation` fitted to
the call's input and output: no extra render, or one (``"diagonal"``). The
tangent stand-ins of :mod:`~grafx_core.estimators.tangent` render one
(``"gain-tangent"``) or four (``"band-tangent"``) times per node per backward.

:func:`probe_signal_gradient` decides what ``signal_gradient="auto"`` means for
a processor, at its first call whose input wants a gradient, and again when a
later call's parameters have moved more than :data:`REVISIT_DISTANCE` from the
probed ones. It takes up to :data:`PROBE_ROWS` rows spread over the call's
levels (quietest to loudest sounding row) and renders them in one batch at
several operating points: the call's parameters and, where the target knows its
parameter ranges (:meth:`~grafx_core.estimators.RenderTarget.random_rows`),
random ones; the input as given and :data:`PROBE_LEVELS` louder. At each point:
as given, at ``x + h s`` (random signs, for ``"diagonal"``), along the tangent
stand-ins' directions, at ``x (1 + step)`` (the change an upstream gain makes)
and at ``x + h u``, where ``u`` is the row's own input through a random short
decaying FIR filter: time-aligned with the input, like the change an upstream
EQ makes, but not a copy of it (every linearisation maps ``x`` itself to ``y``
exactly). Each candidate predicts the output change of the two test directions;
its score is the cosine between that prediction and the true change ``dy`` less
:data:`NORM_PENALTY` times ``|log2(|A dx| / |dy|)|`` (a prediction twice too
large or too small loses a quarter), means over the rows whose output moves, the
worst over the two test directions, the mean over the operating points. The best
candidate wins; one that renders in the backward pass only by a margin of
:data:`RENDER_MARGIN` per render, and ``"straight-through"`` by
:data:`IDENTITY_MARGIN`; candidates over :data:`RENDER_BUDGET` renders are not tried.

Below :data:`MINIMUM_SCORE` no candidate is trusted. The best one is still
passed on, with a :class:`~grafx_core.estimators.WeakSignalGradientWarning`
stating its measured cosine and norm ratio, unless its cosine is below
:data:`FALLBACK_COSINE` (then the gradient stops, with a
:class:`~grafx_core.estimators.StoppedSignalGradientWarning`); an estimator made
with ``strict_signal_gradient=True`` raises
:class:`~grafx_core.errors.SignalGradientQualityError` instead of either. An
effect whose output does not move at all (below :data:`MUTE` of the input
change, at every point) gets ``"none"``, silently: its input gradient is (close to) zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SignalGradientQualityError
from ._warnings import StoppedSignalGradientWarning, WeakSignalGradientWarning, warn_once
from ._rules import GradientRule, Gradients, Saved, cpu_rows, node_rows, rademacher
from .linearisation import LINEARISATIONS, diagonal_perturbation, linearise
from .tangent import TANGENTS, fit_tangent, renders_per_backward, tangent_renders
from .target import RenderJob, RenderTarget

__all__ = ["LinearisedSignalRule", "SignalProbe", "probe_signal_gradient", "PROBE_ROWS", "MINIMUM_SCORE",
           "FALLBACK_COSINE", "PROBE_LEVELS", "RENDER_MARGIN", "IDENTITY_MARGIN", "NORM_PENALTY", "MUTE", "CANDIDATES",
           "REVISIT_DISTANCE", "RENDER_BUDGET", "settle_signal_gradient", "renders_per_node"]

PROBE_ROWS = 4
"""Node rows the automatic choice renders (spread over the levels of the first call's rows)."""
PROBE_LEVELS = (1.0, 4.0)
"""Input gains the automatic choice probes at (as given, and 12 dB louder: a dynamics processor or a
saturator that a quiet first call leaves alone still gets a stand-in that follows it when it works)."""
MINIMUM_SCORE = 0.5
"""Below this score no stand-in is trusted: the best one is passed on with a warning (or the gradient
stops, see :data:`FALLBACK_COSINE`), or, with ``strict_signal_gradient``, the call raises."""
FALLBACK_COSINE = 0.3
"""An untrusted best stand-in is still passed on when its measured cosine reaches this; below it the
estimate is closer to noise than to a direction, and the gradient stops (with a warning)."""
MUTE = 1e-4
"""A parameter point whose output change is below this fraction of the input change is not scored."""
NORM_PENALTY = 0.25
"""Score lost per factor of two between the predicted and the true change's norms."""
RENDER_MARGIN = 0.02
"""How much better a candidate must score per extra render it costs in every backward
(``"diagonal"``, ``"gain-tangent"`` one, ``"band-tangent"`` four) than the render-free ones."""
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
CANDIDATES = (*LINEARISATIONS, *TANGENTS, "straight-through")
"""What the automatic choice compares (straight-through is the identity)."""


def renders_per_node(choice: str, signal_samples: int = 4) -> int:
    """Extra renders per node per backward that the signal gradient ``choice`` costs."""
    if choice == "diagonal":
        return 1
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

    def jobs(self, saved: Saved) -> list[RenderJob]:
        if self.kind != "diagonal" or not saved.need_signals[0]:
            return []
        x = saved.signals[0]
        self.signs = rademacher(self.rng, tuple(x.shape))
        moved, self.h = diagonal_perturbation(x, self.signs, self.step, saved.y.shape[1])
        rows = torch.arange(x.shape[0])
        others = tuple(s for s in saved.signals[1:])
        return [RenderJob((moved, *others), cpu_rows(saved.params), None, rows, "diagonal (signal)")]

    def finish(self, saved: Saved, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Gradients:
        grads: list[torch.Tensor | None] = [None] * len(saved.signals)
        if saved.need_signals[0]:
            x = saved.signals[0]
            extra = {} if self.kind != "diagonal" else {"perturbed": outputs[0], "signs": self.signs, "h": self.h}
            grads[0] = linearise(self.kind, x, saved.y, **extra).adjoint(grad_y).to(x.dtype)
        return None, tuple(grads)


@dataclass
class SignalProbe:
    """The outcome of :func:`probe_signal_gradient`.

    Attributes:
        choice: the chosen ``signal_gradient`` name: the best-scoring candidate, or ``"none"`` when the
            output does not move (``still``) or when even the best one's cosine is below
            :data:`FALLBACK_COSINE`.
        scores: score per candidate (see the module documentation).
        cosines: per candidate, the median cosine between its predicted and the true output change
            (the worst test direction, averaged over the parameter points).
        norm_ratios: per candidate, its predicted change's norm over the true one's (same medians).
        still: whether the effect's output did not move at all (its input gradient is zero).
        point: ``[rows, columns]`` the parameters probed (CPU float64), to tell when they moved far.
    """

    choice: str
    scores: dict[str, float] = field(default_factory=dict)
    still: bool = False
    cosines: dict[str, float] = field(default_factory=dict)
    norm_ratios: dict[str, float] = field(default_factory=dict)
    point: torch.Tensor | None = None

    @property
    def trusted(self) -> bool:
        """Whether the choice scored at least :data:`MINIMUM_SCORE` (or nothing needed one)."""
        return self.still or self.scores.get(self.choice, -math.inf) >= MINIMUM_SCORE

    @property
    def best(self) -> str:
        """The best-scoring candidate (``"none"`` where nothing was scored)."""
        return max(self.scores, key=lambda kind: self.scores[kind]) if self.scores else "none"

    def describe(self) -> str:
        """``"fft-ratio 0.998, spectral-ratio 0.97, ..."``, best first."""
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v:.3g}" for k, v in ranked)

    def quality(self, kind: str) -> str:
        """``"score 0.41: cosine 0.72, norm ratio 1.9"`` for ``kind``, as measured by the probe."""
        return (f"score {self.scores.get(kind, math.nan):.3g}: cosine {self.cosines.get(kind, math.nan):.3g}, "
                f"norm ratio {self.norm_ratios.get(kind, math.nan):.3g}")


def _measure(pred: torch.Tensor, actual: torch.Tensor, dx: torch.Tensor,
             sounding: torch.Tensor) -> tuple[float, float, float]:
    """``(score, cosine, norm ratio)`` of a predicted output change (``nan``s where no row says anything)."""
    p, a = pred.double().flatten(1), actual.double().flatten(1)
    # Rows whose input is silent (nothing to fit a stand-in to) or whose output does not move say nothing.
    live = sounding & (a.norm(dim=1) > MUTE * dx.double().flatten(1).norm(dim=1))
    if not bool(live.any()):
        return math.nan, math.nan, math.nan
    p, a = p[live], a[live]
    pn, an = p.norm(dim=1), a.norm(dim=1).clamp(min=1e-300)
    # Means over the rows, not medians: the rows a stand-in fails on (the loud ones a compressor
    # works on) are a minority of the probe's rows, and their gradients weigh as much upstream.
    cos = (p * a).sum(1) / (pn * an).clamp(min=1e-300)
    log_ratio = torch.log2((pn / an).clamp(min=1e-12))
    score = float((cos - NORM_PENALTY * log_ratio.abs()).mean())
    return score, float(cos.mean()), float(2 ** log_ratio.mean())


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


def _predictors(kinds: Sequence[str], x: torch.Tensor, y: torch.Tensor, diagonal: dict[str, torch.Tensor],
                tangent: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Per candidate, a function from an input change to the predicted output change."""
    out: dict[str, Any] = {}
    for kind in kinds:
        if kind == "straight-through":
            if y.shape == x.shape:
                out[kind] = lambda dx: dx
        elif kind in TANGENTS:
            out[kind] = fit_tangent(kind, x, y, *tangent[kind]).apply
        else:
            out[kind] = linearise(kind, x, y, **(diagonal if kind == "diagonal" else {})).apply
    return out


def probe_signal_gradient(target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
                          step: float, rng: np.random.Generator,
                          candidates: Sequence[str] = CANDIDATES) -> SignalProbe:
    """Choose a signal gradient for ``target`` from a few batched renders of its first rows.

    Per parameter point (the call's, and a random one where the target knows
    its ranges): the input as given, at ``x + h s`` (for ``"diagonal"``), at the
    two test directions, and along the directions of the tangent stand-ins
    (one for ``"gain-tangent"``, :data:`~grafx_core.estimators.tangent.TANGENT_BANDS`
    for ``"band-tangent"``).

    Args:
        target: the processor as a render target.
        signals: one ``[N, channels, samples]`` tensor per inlet (the call's).
        params: ``[N, columns]`` parameters of the call.
        step: relative size of the test perturbations.
        rng: draws the signs and offsets (the estimator's own generator).
        candidates: names to compare (default :data:`CANDIDATES`); candidates costing more than
            :data:`RENDER_BUDGET` renders per backward are left out.

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
    sounding = given[0].flatten(1).abs().amax(dim=1).cpu() > 0
    # Operating points: the parameters (the call's, random ones) and the input's level (as given, louder).
    operating = [((given[0] * level, *given[1:]), p) for level in PROBE_LEVELS for p in points]
    centres = target.render([RenderJob(xs, p, None, nodes, "signal-gradient probe") for xs, p in operating])
    jobs, plans = [], []
    for xs, p in operating:
        x = xs[0]
        signs = rademacher(rng, tuple(x.shape))
        moved, h = diagonal_perturbation(x, signs, step, centres[0].shape[1])
        _, scale = diagonal_perturbation(x, signs, step)
        tests = [x + scale * _upstream_like(x, rng), x * (1 + step)]
        tangents = {kind: tangent_renders(kind, x, step) for kind in TANGENTS if kind in candidates}
        plans.append((x, {"signs": signs, "h": h}, tests, tangents))
        jobs += [RenderJob((v, *xs[1:]), p, None, nodes, "signal-gradient probe") for v in (moved, *tests)]
        for kind, (shifted, directions, _) in tangents.items():
            count = directions.shape[1]
            others = tuple(s.repeat_interleave(count, dim=0) for s in xs[1:])
            jobs.append(RenderJob((shifted, *others), p.repeat_interleave(count, dim=0), None,
                                  node_rows(rows, count), "signal-gradient probe"))
    outs = iter(target.render(jobs))
    # Each candidate's score is its worst over the test directions (every ratio maps x itself to y, so
    # only the filtered direction tells a linear effect's structure, and only the gain direction a
    # tangent from a secant), averaged over the operating points (the choice is kept for later calls).
    per_point: list[dict[str, tuple[float, float, float]]] = []
    for y, (x, diagonal, tests, tangents) in zip(centres, plans):
        diagonal["perturbed"] = next(outs)
        changes = [next(outs) - y for _ in tests]
        rendered = {kind: (next(outs), directions, hk) for kind, (_, directions, hk) in tangents.items()}
        # A point where the effect is all but mute (a band-pass far from the signal) says nothing
        # about the gradient's direction, and would penalise every candidate's norm.
        if all(float(dy.norm()) <= MUTE * float((t - x).norm()) for t, dy in zip(tests, changes)):
            continue
        measured: dict[str, tuple[float, float, float]] = {}
        per_point.append(measured)
        for kind, predict in _predictors(candidates, x, y, diagonal, rendered).items():
            for test, dy in zip(tests, changes):
                dx = test - x
                found = _measure(predict(dx), dy, dx, sounding)
                if not math.isnan(found[0]) and found[0] < measured.get(kind, (math.inf,))[0]:
                    measured[kind] = found
    kinds = [kind for kind in candidates if any(kind in p for p in per_point)]
    if not kinds:  # silent inputs, or outputs that never move: no gradient to pass
        return SignalProbe("none", still=True, point=cpu_rows(params))
    mean = {kind: [float(np.mean([p[kind][i] for p in per_point if kind in p])) for i in range(3)]
            for kind in kinds}
    scores = {kind: m[0] for kind, m in mean.items()}
    margins = {kind: RENDER_MARGIN * renders_per_node(kind) for kind in kinds}
    margins["straight-through"] = IDENTITY_MARGIN
    best = max(scores, key=lambda kind: scores[kind] - margins.get(kind, 0.0))
    choice = best if scores[best] >= MINIMUM_SCORE or mean[best][1] >= FALLBACK_COSINE else "none"
    return SignalProbe(choice, scores, cosines={k: m[1] for k, m in mean.items()},
                       norm_ratios={k: m[2] for k, m in mean.items()}, point=cpu_rows(params))


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
    :data:`REVISIT_DISTANCE` from the probed point. When no candidate scored
    :data:`MINIMUM_SCORE`, the best one is passed on with a
    :class:`~grafx_core.estimators.WeakSignalGradientWarning` stating its
    measured cosine and norm ratio, or, where its cosine is below
    :data:`FALLBACK_COSINE`, the gradient stops with a
    :class:`~grafx_core.estimators.StoppedSignalGradientWarning`; each warns once.

    Returns:
        The signal gradient to use for this call.

    Raises:
        SignalGradientQualityError: the estimator's ``strict_signal_gradient`` is set and no
            candidate scored :data:`MINIMUM_SCORE`.
    """
    choice = getattr(owner, "signal_gradient")
    if not any(s.requires_grad for s in signals):
        return choice
    previous = getattr(owner, "signal_probe", None)
    revisit = previous is not None and choice == previous.choice and _moved_far(previous, target, params)
    if choice != "auto" and not revisit:
        return choice
    estimator = getattr(owner, "estimator")
    probe = probe_signal_gradient(target, signals, params, step=estimator.signal_step, rng=estimator.generator())
    setattr(owner, "signal_probe", probe)
    setattr(owner, "signal_gradient", probe.choice)
    if probe.trusted:
        return probe.choice
    advice = "choose a signal_gradient explicitly, or a neural proxy, to train what is upstream"
    if getattr(estimator, "strict_signal_gradient", False):
        raise SignalGradientQualityError(
            f"{name}: no stand-in for the input signal's gradient scored {MINIMUM_SCORE} (scores "
            f"{probe.describe()}; the best, {probe.best}, {probe.quality(probe.best)}) and the estimator's "
            f"strict_signal_gradient is set; {advice}")
    if probe.choice == "none":
        warn_once(getattr(owner, "_warned"), "signal",
                  f"{name}: the input signal's gradient is stopped: no stand-in explained the effect's response "
                  f"to a small input change (scores {probe.describe()}; at least {MINIMUM_SCORE} needed, and the "
                  f"best, {probe.best}, has {probe.quality(probe.best)}, below the cosine {FALLBACK_COSINE} "
                  f"that an estimate is passed on with); {advice}", StoppedSignalGradientWarning, stacklevel=5)
    else:
        warn_once(getattr(owner, "_warned"), ("weak", probe.choice),
                  f"{name}: the input signal's gradient is the best available estimate, {probe.choice}, "
                  f"which explained the effect's response to a small input change only in part "
                  f"({probe.quality(probe.choice)}; scores {probe.describe()}; {MINIMUM_SCORE} is trusted); "
                  f"what is upstream trains on it; {advice} if it does not", WeakSignalGradientWarning,
                  stacklevel=5)
    return probe.choice
