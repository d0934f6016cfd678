"""Signal gradients from linearisations, and the automatic choice among them.

:class:`LinearisedSignalRule` gives the input signal's VJP as ``A^T g``, with
``A`` the :class:`~grafx_core.estimators.linearisation.Linearisation` fitted to
the call's input and output: no extra render, or one (``"diagonal"``).

:func:`probe_signal_gradient` decides what ``signal_gradient="auto"`` means for
a processor, once, at its first call whose input wants a gradient. It renders
the first rows (at most :data:`PROBE_ROWS`) three ways in one batch: as
given, at ``x + h s`` (random signs, for ``"diagonal"``), at ``x (1 + step)``
(the change an upstream gain makes) and at ``x + h u``,
at the call's parameters and, where the target knows its parameter ranges
(:meth:`~grafx_core.estimators.RenderTarget.random_rows`), at random
parameters too, since the choice is kept for every later call;
where ``u`` is the row's own input through a random short decaying FIR
filter: time-aligned with the input, like the change an upstream EQ makes,
but not a copy of it (every linearisation maps ``x`` itself to ``y`` exactly).
Each candidate linearisation predicts the output change ``A (h u)``; its
score is the cosine between that prediction and the true change ``dy`` less
:data:`NORM_PENALTY` times ``|log2(|A h u| / |dy|)|`` (a prediction twice too
large or too small loses a quarter), medians over the rows whose output moves,
the worst over
the two test directions, the mean over the parameter points. The best candidate wins;
``"diagonal"``, which costs a render per backward, only by a margin of
:data:`RENDER_MARGIN`, and ``"straight-through"`` by :data:`IDENTITY_MARGIN`. Below :data:`MINIMUM_SCORE`
nothing is trusted and the gradient is stopped (``"none"``, with a warning from the processor). An effect
whose output does not move at all (below :data:`MUTE` of the input change, at
every point) gets ``"none"`` too, silently: its input gradient is (close to) zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._warnings import StoppedSignalGradientWarning, warn_once
from ._rules import GradientRule, Gradients, Saved, cpu_rows, rademacher
from .linearisation import LINEARISATIONS, Linearisation, diagonal_perturbation, linearise
from .target import RenderJob, RenderTarget

__all__ = ["LinearisedSignalRule", "SignalProbe", "probe_signal_gradient", "PROBE_ROWS", "MINIMUM_SCORE",
           "RENDER_MARGIN", "IDENTITY_MARGIN", "NORM_PENALTY", "MUTE", "CANDIDATES", "settle_signal_gradient"]

PROBE_ROWS = 4
"""Node rows the automatic choice renders (the first ones of the first call)."""
MINIMUM_SCORE = 0.5
"""Below this score no linearisation is trusted: the gradient stops."""
MUTE = 1e-4
"""A parameter point whose output change is below this fraction of the input change is not scored."""
NORM_PENALTY = 0.25
"""Score lost per factor of two between the predicted and the true change's norms."""
RENDER_MARGIN = 0.02
"""How much better ``"diagonal"`` must score than the best render-free candidate."""
IDENTITY_MARGIN = 0.05
"""How much better ``"straight-through"`` must score: it ignores the effect, and where the effect
is close to the identity the ratios are too (measured: a noise gate's probe favoured it by 0.03,
while its upstream cosine was 0.40 against 0.99 for the spectral ratio in ``bench/seam.py``)."""
CANDIDATES = (*LINEARISATIONS, "straight-through")
"""What the automatic choice compares (straight-through is the identity)."""


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
        choice: the chosen ``signal_gradient`` name (``"none"`` when nothing scored
            :data:`MINIMUM_SCORE`).
        scores: score per candidate (see the module documentation).
        still: whether the effect's output did not move at all (its input gradient is zero).
    """

    choice: str
    scores: dict[str, float] = field(default_factory=dict)
    still: bool = False

    def describe(self) -> str:
        """``"fft-ratio 0.998, spectral-ratio 0.97, ..."``, best first."""
        ranked = sorted(self.scores.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v:.3g}" for k, v in ranked)


def _score(pred: torch.Tensor, actual: torch.Tensor, dx: torch.Tensor, sounding: torch.Tensor) -> float:
    p, a = pred.double().flatten(1), actual.double().flatten(1)
    # Rows whose input is silent (nothing to fit a stand-in to) or whose output does not move say nothing.
    live = sounding & (a.norm(dim=1) > MUTE * dx.double().flatten(1).norm(dim=1))
    if not bool(live.any()):
        return float("nan")
    p, a = p[live], a[live]
    pn, an = p.norm(dim=1), a.norm(dim=1).clamp(min=1e-300)
    cos = (p * a).sum(1) / (pn * an).clamp(min=1e-300)
    ratio = float((pn / an).median())
    return float(cos.median()) - NORM_PENALTY * abs(math.log2(max(ratio, 1e-12)))


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


def probe_signal_gradient(target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
                          step: float, rng: np.random.Generator,
                          candidates: Sequence[str] = CANDIDATES) -> SignalProbe:
    """Choose a signal gradient for ``target`` from four renders of its first rows (eight with random parameters).

    Args:
        target: the processor as a render target.
        signals: one ``[N, channels, samples]`` tensor per inlet (the call's).
        params: ``[N, columns]`` parameters of the call.
        step: relative size of the test perturbations.
        rng: draws the signs and offsets (the estimator's own generator).
        candidates: names to compare (default :data:`CANDIDATES`).

    Returns:
        A :class:`SignalProbe`; nothing about the processor is changed.
    """
    rows = min(PROBE_ROWS, signals[0].shape[0])
    xs = tuple(s.detach()[:rows] for s in signals)
    x = xs[0]
    points = [cpu_rows(params)[:rows]]
    elsewhere = target.random_rows(points[0], rng)
    if elsewhere is not None:
        points.append(elsewhere)
    nodes = torch.arange(rows)
    sounding = x.flatten(1).abs().amax(dim=1).cpu() > 0
    centres = target.render([RenderJob(xs, p, None, nodes, "signal-gradient probe") for p in points])
    signs = rademacher(rng, tuple(x.shape))
    moved, h = diagonal_perturbation(x, signs, step, centres[0].shape[1])
    _, scale = diagonal_perturbation(x, signs, step)
    tests = [x + scale * _upstream_like(x, rng), x * (1 + step)]
    inputs = [moved, *tests]
    jobs = [RenderJob((v, *xs[1:]), p, None, nodes, "signal-gradient probe") for p in points for v in inputs]
    outs = target.render(jobs)
    # Each candidate's score is its worst over the test directions (every ratio maps x itself to y, so
    # only the filtered direction tells a linear effect's structure, and only the gain direction a
    # tangent from a secant), averaged over the operating points (the choice is kept for later calls).
    per_point: list[dict[str, float]] = []
    for k, y in enumerate(centres):
        perturbed = outs[len(inputs) * k]
        changes = [outs[len(inputs) * k + 1 + t] - y for t in range(len(tests))]
        # A point where the effect is all but mute (a band-pass far from the signal) says nothing
        # about the gradient's direction, and would penalise every candidate's norm.
        if all(float(dy.norm()) <= MUTE * float((t - x).norm()) for t, dy in zip(tests, changes)):
            continue
        scores: dict[str, float] = {}
        per_point.append(scores)
        for kind in candidates:
            if kind == "straight-through" and y.shape != x.shape:
                continue
            lin: Linearisation | None = None
            if kind != "straight-through":
                extra = {"perturbed": perturbed, "signs": signs, "h": h} if kind == "diagonal" else {}
                lin = linearise(kind, x, y, **extra)
            for test, dy in zip(tests, changes):
                dx = test - x
                pred = dx if lin is None else lin.apply(dx)
                score = _score(pred, dy, dx, sounding)
                if not math.isnan(score):
                    scores[kind] = min(scores.get(kind, np.inf), score)
    kinds = [kind for kind in candidates if any(kind in p for p in per_point)]
    if not kinds:  # silent inputs, or outputs that never move: no gradient to pass
        return SignalProbe("none", still=True)
    scores = {kind: float(np.mean([p[kind] for p in per_point if kind in p])) for kind in kinds}
    margins = {"diagonal": RENDER_MARGIN, "straight-through": IDENTITY_MARGIN}
    best = max(scores, key=lambda kind: scores[kind] - margins.get(kind, 0.0))
    choice = best if scores[best] >= MINIMUM_SCORE else "none"
    return SignalProbe(choice, scores)


def settle_signal_gradient(owner: object, target: RenderTarget, signals: Sequence[torch.Tensor],
                           params: torch.Tensor, name: str) -> str:
    """Resolve ``owner.signal_gradient == "auto"`` once, at a call whose input wants a gradient.

    ``owner`` is a processor with ``signal_gradient``, ``estimator`` and a
    ``_warned`` set; it gets ``signal_gradient`` (the choice) and
    ``signal_probe`` (the :class:`SignalProbe`). A stop that nothing explains
    (no candidate scored :data:`MINIMUM_SCORE`) warns once with
    :class:`~grafx_core.estimators.StoppedSignalGradientWarning`.

    Returns:
        The signal gradient to use for this call.
    """
    choice = getattr(owner, "signal_gradient")
    if choice != "auto" or not any(s.requires_grad for s in signals):
        return choice
    estimator = getattr(owner, "estimator")
    probe = probe_signal_gradient(target, signals, params, step=estimator.signal_step, rng=estimator.generator())
    setattr(owner, "signal_probe", probe)
    setattr(owner, "signal_gradient", probe.choice)
    if probe.choice == "none" and not probe.still:
        warn_once(getattr(owner, "_warned"), "signal",
                  f"{name}: the input signal's gradient is stopped: no linear stand-in explained the effect's "
                  f"response to a small input change (scores {probe.describe()}; "
                  f"at least {MINIMUM_SCORE} needed); choose a signal_gradient explicitly, or a neural proxy, "
                  "to train what is upstream", StoppedSignalGradientWarning, stacklevel=5)
    return probe.choice
