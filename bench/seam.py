"""Gradients across a black box in the middle of a graph (issues 17 and 28).

Run: ``python bench/seam.py`` (the issue's rows, quick: 8 tracks of 0.25 s, one operating point, no fits,
the default signal gradient only; a few minutes on 2 loaded cores), ``--standard`` (8 tracks, 2 operating
points, 4 for real black boxes, 10-step fits: the table of ``docs/concepts/gradient_quality.rst``),
``--signals`` (every signal gradient too, real black boxes included), ``--points N`` and ``--fresh`` (the dsp
rows at N points, each probed by its own first call, as separate fits would be: how the limiter's choice varies
from point to point), ``--full`` (delay and reverb too,
8 tracks of 1 s, 5 operating points, every signal gradient fitted over 60 steps) or ``--rst`` (the table as reStructuredText).
Graph: music-like stereo tracks, each
``in -> dsp:parametric_eq -> dsp:gain -> BLACK BOX``, summed by one ``mix``
node into ``out``; loss: the demo's multi-resolution STFT loss against a mix
rendered from hidden parameters. The black box is a grafx-dsp processor run
through ``with_estimator(proc, "finite-difference", signal_gradient=...)``,
so that the exact gradient is autograd through the same processor.

Printed per black box and signal gradient, measured in this run:

- ``cos``: cosine between the estimated and exact gradients of the upstream
  EQ and gain parameters (median over operating points; the black box's own
  parameters are held fixed, so only the signal gradient is measured);
- ``norm``: the estimate's norm over the exact one (median);
- ``chose``: what ``"auto"`` used at the measured points (it probes again when the
  black box's parameters move far);
- ``renders``: black-box renders per node in one backward, counted (the black
  box's parameters are held fixed, so these are the input signal's);
- ``fit``: a short fit of every parameter from a random start (Adam, same
  start and steps), final loss over the exact processor's final loss.

Operating points: the demo's musical ranges for the EQ and gain; the middle
half of the black box's declared ranges (log-aware) for its own controls, except
those a row fixes (the compressor at -30 dB / 6:1 / 3 ms, and limiter-like).

Real black boxes (LV2 plug-ins, pedalboard effects; default options) have no
exact twin: their rows compare against central differences of the loss over
the upstream gains (the EQ's three band gains and the fader, 4 tracks), and
the estimate is compared on those entries; they have no fit column. The
reference is the mean of the central differences at 0.03, 0.05, 0.1 and
0.15 dB, and ``ref`` the cosine between its halves (0.03 and 0.05 dB against
0.1 and 0.15 dB). Where that is below 0.8, the reference is taken again at ten
times those steps (0.3-1.5 dB) and kept where its halves agree better (``pts``
adds ``(2c)`` for two such points): a codec's or a quantiser's loss can be rough
at hundredths of a dB and smooth at tenths. Where ``ref`` stays low, the loss is
not smooth at that point at either scale (a saturator driven 30 dB into
clipping), and the point measures the reference's noise, not the estimate. Rows are scored
over the points whose ``ref`` reaches 0.8 (``pts`` counts them; every point
where none does); the line also prints the median over every point, each
point's cosine / norm ratio (its ``ref``, ``c`` where coarse) and how many scored
points meet both aims: the row's two medians can come from different points. ``probe``
is what the automatic choice's own probe measured for its choice at the
measured points (cosine / norm ratio after its scale, against the reference it ranked by: the fine one
where the response is rough and the choice follows the tangent): where it warned
``Weak`` (or ``Rough``), this says whether the row agrees.

``stable`` says whether each point's reference is a target at all: a real box's reference against the central
differences at :data:`SPAN_STEP` (1 dB, a fit's larger steps; a coarse reference: its halves), a dsp row's
autograd against the 0.03-0.15 dB mean and the 1 dB differences. A point is stable where these meet the aims;
the row prints how many are, each point's figures, and (real boxes) the estimate's medians over the stable ones.

Last, the wall time of one backward pass through 8 black-box nodes (8 calls of
8 processors, ``band-tangent``: 4 renders per node) without and with pooled
backward renders (:func:`grafx_core.backward_pooling`), on 0.25 s and 1 s
tracks, as ratios measured side by side in this run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from grafx_core import Graph, compile_render, describe, get_processor
from grafx_core.fitting import LatentParameters, SpectralLoss, fit
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.demo.draws import draw_parameters
from grafx_core.estimators import GradientWarning, backward_pooling, with_estimator
from grafx_core.estimators.auto import PROBE_LEVELS, PROBE_ROWS, TRUSTED_COSINE, TRUSTED_NORM, probe_renders

SR = 44100
TRACKS = 8
HEAVY = {"threshold_db": -30.0, "ratio": 6.0, "attack_ms": 3.0}
LIMITER = {"threshold_db": -12.0, "ratio": 20.0, "knee_db": 0.0, "attack_ms": 0.1, "release_ms": 50.0}
ROWS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("compressor", "compressor", {}),
    ("comp -30dB 6:1 3ms", "compressor", HEAVY),
    ("comp limiter-like", "compressor", LIMITER),
    ("noise_gate", "noise_gate", {}),
    ("distortion", "distortion", {}),
    ("parametric_eq", "parametric_eq", {}),
    ("highpass", "highpass", {}),
)
"""(label, grafx-dsp processor, black-box controls held at these natural values): the issue's rows."""
FULL_ROWS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("delay", "delay", {}),
    ("reverb", "reverb", {}),
)
"""Rows only ``--full`` measures (the linear, time-invariant effects the ratios already follow)."""
BLACK_BOXES: tuple[tuple[str, str, bool], ...] = (
    ("lv2:calf_saturator", "lv2:calf_saturator", False),
    ("lv2:calf_saturator defaults", "lv2:calf_saturator", True),
    ("lv2:calf_exciter", "lv2:calf_exciter", False),
    ("lv2:calf_exciter defaults", "lv2:calf_exciter", True),
    ("lv2:urn_zamaudio_zam_comp_x2", "lv2:urn_zamaudio_zam_comp_x2", False),
    ("pedalboard:bitcrush", "pedalboard:bitcrush", False),
    ("pedalboard:mp3_compressor", "pedalboard:mp3_compressor", False),
)
"""(label, registered black box, whether its controls sit at their defaults rather than drawn: the drawn
middle half of calf's ranges drives the saturator 24-34 dB into clipping)."""
SIGNALS = ("auto", "straight-through", "spectral-ratio", "fft-ratio", "smooth-gain", "diagonal", "gain-tangent",
           "tangent-ratio", "band-tangent", "spsa")
BOX_TRACKS = 4
GAINS = ("low_shelf_gain_db", "peak_gain_db", "high_shelf_gain_db", "gain_db")
EQ, GAIN = "dsp:parametric_eq", "dsp:gain"
UPSTREAM = (EQ, GAIN)


class Counting(nn.Module):
    """A processor that counts the rows it renders (what an estimator asks of a black box)."""

    def __init__(self, processor: nn.Module) -> None:
        super().__init__()
        self.processor, self.rows, self.backward_rows = processor, 0, 0

    def forward(self, *signals: torch.Tensor, **params: Any) -> Any:
        self.rows += signals[0].shape[0]
        return self.processor(*signals, **params)

    def controls(self) -> Any:
        return describe(self.processor).control_tree()


def build_graph(tracks: int = TRACKS) -> Graph:
    graph = Graph()
    mix = graph.add("mix")
    for _ in range(tracks):
        source = graph.add("in")
        eq, gain, box = graph.add(EQ), graph.add(GAIN), graph.add("box")
        graph.connect(source, eq)
        graph.connect(eq, gain)
        graph.connect(gain, box)
        graph.connect(box, mix)
    graph.connect(mix, graph.add("out"))
    return graph


def draw(graph: Graph, processors: Mapping[str, Any], seed: int,
         fixed: Mapping[str, float] | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """The demo's musical ranges upstream; the black box's declared ranges (middle half, log-aware),
    except the controls ``fixed`` holds."""
    gen = torch.Generator().manual_seed(seed)
    drawn = draw_parameters(graph, processors, gen)
    out = {t: {k: v.detach().clone() for k, v in p.items()} for t, p in drawn.items()}
    for (name, *_), spec in describe(processors["box"]).controls.items():
        if spec.bounded and not spec.unconstrained and name in out["box"]:
            log = spec.scale == "log"
            low, high = (math.log(spec.low), math.log(spec.high)) if log else (spec.low, spec.high)
            u = low + (0.25 + 0.5 * torch.rand(out["box"][name].shape, generator=gen)) * (high - low)
            out["box"][name] = torch.exp(u) if log else u
    for name, value in (fixed or {}).items():
        out["box"][name] = torch.full_like(out["box"][name], value)
    return out


def upstream_gradient(render: Any, processors: dict[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]],
                      sources: torch.Tensor, loss: SpectralLoss, counter: Counting | None = None) -> torch.Tensor:
    """The upstream parameters' gradient; ``counter.backward_rows`` gets the rows its backward rendered."""
    leaves = {t: {k: v.clone().requires_grad_(t in UPSTREAM) for k, v in p.items()} for t, p in params.items()}
    y, _ = render(leaves, sources)
    before = counter.rows if counter is not None else 0
    loss(y[0]).backward()
    if counter is not None:
        counter.backward_rows = counter.rows - before
    return torch.cat([leaves[t][k].grad.flatten() for t in UPSTREAM for k in sorted(leaves[t])]).double()


def measure(effect: str, sources: torch.Tensor, signals: tuple[str, ...], points: int, fit_signals: tuple[str, ...],
            steps: int, fixed: Mapping[str, float] | None = None,
            ref_steps: tuple[float, ...] = (), fresh: bool = False) -> dict[str, dict[str, Any]]:
    tracks = sources.shape[0]
    graph = build_graph(tracks)
    exact = get_processor(f"dsp:{effect}")
    base = {EQ: get_processor(EQ), GAIN: get_processor(GAIN)}
    draws = {**base, "box": exact}
    render_exact = compile_render(graph, {**base, "box": exact})

    def settled(at: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[dict[str, Counting], dict[str, Any],
                                                                         dict[str, Any]]:
        """Fresh black boxes per signal gradient, whose first call (which settles "auto") is at ``at``."""
        counters = {name: Counting(exact) for name in signals}
        boxes = {name: with_estimator(counters[name], "finite-difference", signal_gradient=name,
                                      **({"signal_samples": 4, "seed": 0} if name == "spsa" else {"seed": 0}))
                 for name in signals}
        renders = {name: compile_render(graph, {**base, "box": box}) for name, box in boxes.items()}
        with torch.no_grad():
            warm_loss = SpectralLoss(render_exact(at, sources)[0][0])
        for name in signals:  # settles "auto" (its probe renders are not a backward's)
            upstream_gradient(renders[name], draws, at, sources, warm_loss)
        return counters, boxes, renders

    cos: dict[str, list[float]] = {n: [] for n in signals}
    norm: dict[str, list[float]] = {n: [] for n in signals}
    extra: dict[str, list[float]] = {n: [] for n in signals}
    chosen: dict[str, list[str]] = {n: [] for n in signals}
    probed: list[tuple[float, float]] = []
    smoothed: list[tuple[float, float, float]] = []  # auto and exact against the real boxes' reference, its ref
    spans: list[tuple[float, float, float, float]] = []  # the exact gradient against that reference and at 1 dB
    # The first call probes at the first measured point, so that every probe, and every warning, is checked;
    # ``fresh``: every point's own first call probes there (as that many separate fits would start).
    counters, boxes, renders = settled(draw(graph, draws, 2000, fixed))
    for point in range(points):
        hidden = draw(graph, draws, 1000 + point, fixed)
        params = draw(graph, draws, 2000 + point, fixed)
        if fresh and point:
            counters, boxes, renders = settled(params)
        with torch.no_grad():
            loss = SpectralLoss(render_exact(hidden, sources)[0][0])
        g_exact = upstream_gradient(render_exact, draws, params, sources, loss)
        for name in signals:
            g = upstream_gradient(renders[name], draws, params, sources, loss, counters[name])
            extra[name].append(counters[name].backward_rows / tracks)
            chosen[name].append(boxes[name].signal_gradient)
            if name == "auto":
                probed.append(_probed(boxes[name]))
            cos[name].append(float(g @ g_exact / (g.norm() * g_exact.norm()).clamp(min=1e-300)))
            norm[name].append(float(g.norm() / g_exact.norm().clamp(min=1e-300)))
            if name == "auto" and ref_steps:
                reference, agreement = _reference(render_exact, params, sources, loss, ref_steps)
                smoothed.append((_cosine(_gain_entries(params, g), reference),
                                 _cosine(_gain_entries(params, g_exact), reference), agreement))
                exact = _gain_entries(params, g_exact)
                wide = _central_difference(render_exact, params, sources, loss, SPAN_STEP)
                spans.append((*_figures(reference, exact), *_figures(wide, exact)))
    result = {n: {"cos": statistics.median(cos[n]), "norm": statistics.median(norm[n]),
                  "renders": statistics.median(extra[n]), "choice": "/".join(dict.fromkeys(chosen[n]))} for n in signals}
    if probed:
        result["auto"]["probe"] = _probe_text(probed)
    if "auto" in result:
        result["auto"]["each"] = "  ".join(f"{c:.3f}/{n:.2f} {k}" for c, n, k in zip(cos["auto"], norm["auto"],
                                                                                   chosen["auto"]))
    if smoothed:
        result["auto"]["smoothed"] = tuple(statistics.median(m[k] for m in smoothed) for k in range(3))
        stable = [_meets(s[:2]) and _meets(s[2:]) for s in spans]
        result["auto"]["span"] = (f"{sum(stable)}/{len(stable)}", "  ".join(
            f"{a:.3f}/{b:.2f} {c:.3f}/{d:.2f}" for a, b, c, d in spans))
    if fit_signals:
        hidden = draw(graph, draws, 1000, fixed)
        start = draw(graph, draws, 3000, fixed)
        with torch.no_grad():
            loss = SpectralLoss(render_exact(hidden, sources)[0][0])
        finals = {}
        for name, render in [("exact", render_exact)] + [(n, renders[n]) for n in fit_signals]:
            latent = LatentParameters(start, draws)
            finals[name] = fit(lambda values, render=render: render(values, sources)[0][0], latent, loss, steps).losses[-1]
        for name in fit_signals:
            result[name]["fit"] = finals[name] / finals["exact"]
    return result


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()).clamp(min=1e-300))


def _figures(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Cosine and norm ratio (``estimate``'s norm over ``reference``'s)."""
    return _cosine(estimate, reference), float(estimate.norm() / reference.norm().clamp(min=1e-300))


def _meets(figures: tuple[float, ...]) -> bool:
    """Whether ``(cosine, norm ratio)`` meets the aims (the probe's: cosine 0.9, norm ratio within 0.8-1.25)."""
    return figures[0] >= TRUSTED_COSINE and TRUSTED_NORM[0] <= figures[1] <= TRUSTED_NORM[1]


def _gain_entries(params: Mapping[str, Mapping[str, torch.Tensor]], gradient: torch.Tensor) -> torch.Tensor:
    """The upstream gains' entries of an :func:`upstream_gradient` (in :func:`_gains`' order)."""
    kept, at = [], 0
    for t in UPSTREAM:
        for k in sorted(params[t]):
            count = params[t][k].numel()
            if k in GAINS:
                kept.append(gradient[at:at + count])
            at += count
    return torch.cat(kept)


def _probed(box: Any) -> tuple[float, float]:
    """The probe's own cosine and norm ratio for the choice it made last (``nan`` where it made none)."""
    probe = getattr(box, "signal_probe", None)
    if probe is None or probe.still:
        return math.nan, math.nan
    return probe.measured(probe.choice)


def _probe_text(probed: list[tuple[float, float]]) -> str:
    """``"0.97/1.02"``: the probe's medians over the measured points (what it judged its choice by, its norm
    ratio times the scale it applies)."""
    found = [p for p in probed if not math.isnan(p[0])]
    if not found:
        return "-"
    return f"{statistics.median(p[0] for p in found):.2f}/{statistics.median(p[1] for p in found):.2f}"


class _CountingRunner:
    """Counts the items a black box's runner renders, then hands them on."""

    def __init__(self, runner: Any) -> None:
        self.runner, self.items, self.backward_items = runner, 0, 0

    def run_items(self, processor: Any, items: Any, *args: Any, **kwargs: Any) -> None:
        self.items += len(items)
        self.runner.run_items(processor, items, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)


def _gains(params: Mapping[str, Mapping[str, torch.Tensor]]) -> list[tuple[str, str]]:
    return [(t, k) for t in UPSTREAM for k in sorted(params[t]) if k in GAINS]


def _central_difference(render: Any, params: Mapping[str, Mapping[str, torch.Tensor]], sources: torch.Tensor,
                        loss: SpectralLoss, step: float = 0.05) -> torch.Tensor:
    """d loss / d every upstream gain (dB), by central differences of whole-graph renders."""
    grads = []
    with torch.no_grad():
        for t, k in _gains(params):
            for index in range(params[t][k].numel()):
                values = []
                for sign in (1.0, -1.0):
                    moved = {n: {m: v.clone() for m, v in p.items()} for n, p in params.items()}
                    moved[t][k].view(-1)[index] += sign * step
                    values.append(float(loss(render(moved, sources)[0][0])))
                grads.append((values[0] - values[1]) / (2 * step))
    return torch.tensor(grads, dtype=torch.float64)


REF_STEPS = (0.03, 0.05, 0.1, 0.15)
"""Steps (dB) of the real black boxes' reference: the mean of the central differences at these steps."""
QUICK_REF_STEPS = (0.05, 0.1)
"""The quick run's steps (half the renders; its ``ref`` is the cosine between the two)."""
COARSE = 10.0
"""Where a point's reference at those steps is not reliable, it is taken again at steps this many times larger
(0.3-1.5 dB): a codec's or a quantiser's loss can be rough at 0.03 dB and smooth at 0.3 dB (measured on
``pedalboard:mp3_compressor``: one fader's differences were -0.023, -0.047, -0.039, -0.037, -0.037 at 0.03, 0.1,
0.3, 1 and 3 dB), and a fit moving its gains by tenths of a dB follows the coarser slope."""
SPAN_STEP = 1.0
"""Step (dB) of the check that a point's reference is a stable target (``stable``): a fit's larger steps. A
point's reference is stable where the central differences at this step agree with it to the aims (cosine 0.9,
norm ratio 0.8-1.25; at a point whose reference is the coarse one, 0.3-1.5 dB, where its halves agree so);
else no single gradient stands for the loss over the steps a fit takes there, and no estimate can meet the aims
against all of them (measured on ``pedalboard:bitcrush`` with tracks within a few quantiser steps of zero: the
differences' norm at 0.3-3 dB was 3.6-5.9 times the 0.03-0.15 dB reference's, at one cosine)."""
RELIABLE = 0.8
"""A point's reference is reliable where its halves (the smaller two steps, the larger two) agree to this cosine."""


def _reference(render: Any, params: Mapping[str, Mapping[str, torch.Tensor]], sources: torch.Tensor,
               loss: SpectralLoss, steps: tuple[float, ...] = REF_STEPS) -> tuple[torch.Tensor, float]:
    """The upstream gains' reference gradient and its reliability (the cosine between its halves).

    A real effect's loss is not smooth at every scale: at small steps its rendering noise divided by the step
    dominates (the differences' norm grows as the step shrinks), at large ones its curvature. The mean over
    :data:`REF_STEPS` (0.03-0.15 dB, the size of a fit's steps) halves the noise of one step.
    """
    reference, agreement, _ = _reference_halves(render, params, sources, loss, steps)
    return reference, agreement


def _reference_halves(render: Any, params: Mapping[str, Mapping[str, torch.Tensor]], sources: torch.Tensor,
                      loss: SpectralLoss, steps: tuple[float, ...]) -> tuple[torch.Tensor, float, float]:
    """:func:`_reference`, and the norm ratio of its halves (the larger steps' over the smaller's)."""
    grads = [_central_difference(render, params, sources, loss, step) for step in steps]
    half = len(grads) // 2
    small, large = torch.stack(grads[:half]).sum(dim=0), torch.stack(grads[half:]).sum(dim=0)
    return torch.stack(grads).mean(dim=0), _cosine(small, large), float(large.norm() / small.norm().clamp(min=1e-300))


def _gain_gradient(render: Any, params: Mapping[str, Mapping[str, torch.Tensor]], sources: torch.Tensor,
                   loss: SpectralLoss, counter: _CountingRunner) -> torch.Tensor:
    leaves = {t: {k: v.clone().requires_grad_(t in UPSTREAM) for k, v in p.items()} for t, p in params.items()}
    y, _ = render(leaves, sources)
    before = counter.items
    loss(y[0]).backward()
    counter.backward_items = counter.items - before
    return torch.cat([leaves[t][k].grad.flatten() for t, k in _gains(params)]).double()


def _at_defaults(box: Any, params: dict[str, dict[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    """``params`` with the black box's controls at their defaults."""
    count = next(iter(params["box"].values())).shape[0]
    natural = {path[0]: torch.full((count,), float(c.default)) for path, c in describe(box).controls.items()}
    return {**params, "box": {**params["box"], **box.raw_parameters(**natural)}}


def measure_black_box(name: str, sources: torch.Tensor, points: int, defaults: bool = False,
                      ref_steps: tuple[float, ...] = REF_STEPS, signals: tuple[str, ...] = ()) -> dict[str, Any]:
    """A real black box with its default options, against central differences over the upstream gains.

    ``signals``: fixed signal gradients to measure too, against the same references (under ``"signals"``:
    per name, the median cosine and norm ratio over the scored points, and each point's).
    """
    graph = build_graph(BOX_TRACKS)
    box = get_processor(name)
    counter = _CountingRunner(box.runner)
    box.runner = counter
    processors = {EQ: get_processor(EQ), GAIN: get_processor(GAIN), "box": box}
    render = compile_render(graph, processors)
    fixed: dict[str, tuple[Any, _CountingRunner, list[tuple[float, float]]]] = {}
    for kind in signals:
        other = get_processor(name)
        other.signal_gradient = kind
        other.runner = _CountingRunner(other.runner)
        fixed[kind] = (compile_render(graph, {**processors, "box": other}), other.runner, [])
    cos, norm, renders, caught, chosen, agree = [], [], [], [], [], []
    scales: list[int] = []  # the points whose reference is the coarse one
    spans: list[tuple[float, float]] = []  # each point's reference against a fit's larger steps (SPAN_STEP)
    probes: list[tuple[float, float]] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for point in range(points):
            hidden, params = draw(graph, processors, 1000 + point), draw(graph, processors, 2000 + point)
            if defaults:
                hidden, params = _at_defaults(box, hidden), _at_defaults(box, params)
            with torch.no_grad():
                loss = SpectralLoss(render(hidden, sources)[0][0])
            g = _gain_gradient(render, params, sources, loss, counter)
            renders.append(counter.backward_items / BOX_TRACKS)
            chosen.append(box.signal_gradient)
            probes.append(_probed(box))
            reference, agreement = _reference(render, params, sources, loss, ref_steps)
            span: tuple[float, float] | None = None
            if agreement < RELIABLE:
                coarse, rough, ratio = _reference_halves(render, params, sources, loss,
                                                         tuple(COARSE * s for s in ref_steps))
                if rough > agreement:
                    reference, agreement, span = coarse, rough, (rough, ratio)
                    scales.append(point)
            if span is None:
                span = _figures(_central_difference(render, params, sources, loss, SPAN_STEP), reference)
            spans.append(span)
            agree.append(agreement)
            cos.append(float(g @ reference / (g.norm() * reference.norm()).clamp(min=1e-300)))
            norm.append(float(g.norm() / reference.norm().clamp(min=1e-300)))
            for fixed_render, fixed_counter, found in fixed.values():
                f = _gain_gradient(fixed_render, params, sources, loss, fixed_counter)
                found.append((_cosine(f, reference), float(f.norm() / reference.norm().clamp(min=1e-300))))
        caught = [type(w.message).__name__ for w in seen if issubclass(w.category, GradientWarning)]
    # Scored where the reference is reliable (a point where it is not measures the reference's noise, not the
    # estimate); every point where none is.
    kept = [k for k, a in enumerate(agree) if a >= RELIABLE] or list(range(len(agree)))
    return {"cos": statistics.median(cos[k] for k in kept), "norm": statistics.median(norm[k] for k in kept),
            "renders": statistics.median(renders), "choice": "/".join(dict.fromkeys(chosen)),
            "warned": _warned(caught), "ref": statistics.median(agree[k] for k in kept),
            "points": f"{sum(a >= RELIABLE for a in agree)}/{len(agree)}" + (f" ({len(scales)}c)" if scales else ""),
            "all": (statistics.median(cos), statistics.median(norm)), "probe": _probe_text(probes),
            "met": sum(cos[k] >= 0.9 and 0.8 <= norm[k] <= 1.25 for k in kept),
            "each": "  ".join(f"{c:.3f}/{n:.2f} ({a:.2f}{'c' if k in scales else ''})"
                              for k, (c, n, a) in enumerate(zip(cos, norm, agree))),
            "stable": _stable_text(cos, norm, spans),
            "stable_met": _stable_met(cos, norm, spans),
            "spans": "  ".join(f"{c:.3f}/{n:.2f}" for c, n in spans),
            "signals": {kind: (statistics.median(found[k][0] for k in kept),
                               statistics.median(found[k][1] for k in kept),
                               "  ".join(f"{c:.3f}/{n:.2f}" for c, n in found))
                        for kind, (_, _, found) in fixed.items()}}


def _stable_text(cos: list[float], norm: list[float], spans: list[tuple[float, float]]) -> str:
    """``"2/4: 0.99/1.10"``: the points whose reference is stable (see :data:`SPAN_STEP`), and the estimate's
    median cosine and norm ratio over them."""
    kept = [k for k, span in enumerate(spans) if _meets(span)]
    if not kept:
        return f"0/{len(spans)}"
    return (f"{len(kept)}/{len(spans)}: {statistics.median(cos[k] for k in kept):.3f}/"
            f"{statistics.median(norm[k] for k in kept):.2f}")


def _stable_met(cos: list[float], norm: list[float], spans: list[tuple[float, float]]) -> bool | None:
    """Whether the estimate's medians over the points whose reference is stable meet the aims (``None``: no
    such point)."""
    kept = [k for k, span in enumerate(spans) if _meets(span)]
    if not kept:
        return None
    return _meets((statistics.median(cos[k] for k in kept), statistics.median(norm[k] for k in kept)))


def _warned(names: list[str]) -> str:
    return ",".join(sorted({n.replace("SignalGradientWarning", "") for n in names if "Signal" in n})) or "-"


def pooling(seconds: float, repeats: int = 3) -> tuple[float, float]:
    """Backward wall time through 8 black-box calls without and with pooled renders (medians)."""
    graph = Graph()
    mix = graph.add("mix")
    processors: dict[str, Any] = {}
    for k in range(TRACKS):
        source, box = graph.add("in"), graph.add(f"box{k}")
        processors[f"box{k}"] = get_processor("pedalboard:compressor").with_estimator(
            "finite-difference", signal_gradient="band-tangent")
        graph.connect(source, box)
        graph.connect(box, mix)
    graph.connect(mix, graph.add("out"))
    _, sources = synthesise_multitrack(TRACKS, seconds, SR, seed=1)
    render = compile_render(graph, processors)
    params = draw_parameters(graph, processors, torch.Generator().manual_seed(0))
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for pooled in (False, True):
            x = sources.float().clone().requires_grad_()
            with backward_pooling(pooled):
                y, _ = render({t: {k: v.detach() for k, v in p.items()} for t, p in params.items()}, x)
            start = time.perf_counter()
            y[0].square().sum().backward()
            times[pooled].append(time.perf_counter() - start)
    return statistics.median(times[False]), statistics.median(times[True])


def _smoothed_text(row: Mapping[str, Any]) -> str:
    """``"0.95 / 0.62 (0.99)"``: auto's and the exact gradient's cosines with the smoothed reference (its ref)."""
    if "smoothed" not in row:
        return ""
    auto, exact, agreement = row["smoothed"]
    return f"{auto:.3f} / {exact:.3f} ({agreement:.2f})"


def _rst(table: list[tuple[str, ...]], pooled: list[tuple[float, float, float]], setting: str) -> str:
    """The measured table as the reStructuredText section of ``docs/concepts/gradient_quality.rst``."""
    head = ("black box", "chose", "cosine", "norm ratio", "renders", "fit", "warning", "ref", "points", "probe",
            "vs 0.03-0.15 dB", "stable")
    lines = [f".. Generated by ``python bench/seam.py --standard --rst`` ({setting}).", "", ".. list-table::",
             "   :header-rows: 1", ""]
    for row in (head, *table):
        lines += [f"   * - {row[0]}"] + [f"     - {cell}" if cell else "     -" for cell in row[1:]]
    lines.append("")
    for seconds, unpooled, together in pooled:
        lines.append(f"* Backward through 8 black-box calls on {seconds:g} s tracks: {unpooled:.2f} s one call "
                     f"after another, {together:.2f} s pooled ({unpooled / together:.2f}x).")
    return "\n".join(lines)


SETTINGS = {  # tracks, seconds, dsp points, black-box points, fit steps, pooled lengths, pooling repeats
    "quick": (TRACKS, 0.25, 1, 1, 0, (0.25,), 1),
    "standard": (TRACKS, 0.25, 2, 4, 10, (0.25, 1.0), 3),
    "full": (TRACKS, 1.0, 5, 5, 60, (0.25, 1.0), 3),
}
"""What each run measures: the no-argument run (``quick``: one point, no fits, no smoothed reference for the
dsp rows, the real boxes' reference at two steps); ``--standard`` is the docs' table; ``--full`` takes hours."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--standard", action="store_true",
                        help="8 tracks of 0.25 s, 2 points (4 for real black boxes), 10-step fits: the docs' table")
    parser.add_argument("--full", action="store_true", help="8 tracks of 1 s, 5 points, every signal gradient fitted")
    parser.add_argument("--signals", action="store_true", help="every signal gradient, not only the default")
    parser.add_argument("--rows", nargs="*", help="only these rows (labels or black-box names)")
    parser.add_argument("--rst", action="store_true", help="also print the table as reStructuredText")
    parser.add_argument("--points", type=int, help="operating points of the dsp rows (default: the setting's)")
    parser.add_argument("--fresh", action="store_true",
                        help="probe afresh at every dsp point (its own first call), as separate fits would")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mode = "full" if args.full else "standard" if args.standard else "quick"
    tracks, seconds, points, box_points, steps, lengths, repeats = SETTINGS[mode]
    points = args.points or points
    signals = SIGNALS if args.full or args.signals else ("auto",)
    fit_signals = SIGNALS if args.full else ("auto",) if steps else ()
    _, sources = synthesise_multitrack(TRACKS, seconds, SR, seed=0)
    sources = sources.float()
    setting = (f"{tracks} tracks x {seconds:g} s stereo, {points} operating points ({box_points} for real black "
               f"boxes){', each probed afresh' if args.fresh else ''}, "
               + (f"fits of {steps} steps" if steps else "no fits (--standard fits)"))
    print(setting)
    header = (f"{'black box':<30}{'signal gradient':<17}{'chose':<27}{'cos':>7}{'norm':>7}{'renders':>8}{'fit':>6}"
              f"{'ref':>7}{'pts':>10}{'probe':>11}{'s':>5}  warned")
    print(header)
    summary, table = [], []
    start = time.perf_counter()
    for label, effect, fixed in ROWS + (FULL_ROWS if args.full or args.rows else ()):
        if args.rows and label not in args.rows:
            continue
        began = time.perf_counter()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            rows = measure(effect, sources[[0, 2, 3, 5][:tracks] if tracks < TRACKS else slice(None)], signals,
                           points, fit_signals, steps, fixed, () if mode == "quick" else REF_STEPS, args.fresh)
        warned = _warned([type(w.message).__name__ for w in seen if issubclass(w.category, GradientWarning)])
        for name, row in rows.items():
            fitted = f"{row['fit']:.2f}" if "fit" in row else ""
            choice = row["choice"] if name == "auto" else ""
            probe = row.get("probe", "") if name == "auto" else ""
            against = ""
            if "smoothed" in row:
                against = (f"  (against the 0.03-0.15 dB reference, ref {row['smoothed'][2]:.3f}: auto "
                           f"{row['smoothed'][0]:.3f}, exact {row['smoothed'][1]:.3f})")
            if "span" in row:
                against += (f"  (exact against that reference and at {SPAN_STEP:g} dB, stable at "
                            f"{row['span'][0]}: {row['span'][1]})")
            if name == "auto" and args.fresh:
                against += f"  (each point: {row['each']})"
            print(f"{label:<30}{name:<17}{choice:<27}{row['cos']:>7.3f}{row['norm']:>7.3g}{row['renders']:>8.1f}"
                  f"{fitted:>6}{'':>7}{'':>10}{probe:>11}{time.perf_counter() - began:>5.0f}  "
                  f"{warned if name == 'auto' else ''}{against}", flush=True)
        auto = rows["auto"]
        summary.append(auto)
        table.append((f"dsp {label}", auto["choice"], f"{auto['cos']:.3f}", f"{auto['norm']:.2f}",
                      f"{auto['renders']:g}", f"{auto['fit']:.2f}" if "fit" in auto else "", warned, "", "",
                      auto.get("probe", ""), _smoothed_text(auto), auto["span"][0] if "span" in auto else ""))
    box_sources = sources[[0, 2, 3, 5]]  # sounding tracks
    for label, name, defaults in BLACK_BOXES:
        if args.rows and label not in args.rows:
            continue
        began = time.perf_counter()
        try:
            row = measure_black_box(name, box_sources, box_points, defaults,
                                    QUICK_REF_STEPS if mode == "quick" else REF_STEPS,
                                    tuple(s for s in signals if s not in ("auto", "proxy")))
        except Exception as error:  # a plug-in missing on this machine: say so, measure the rest
            print(f"{label:<30}not measured: {type(error).__name__}: {error}")
            continue
        print(f"{label:<30}{'auto':<17}{row['choice']:<27}{row['cos']:>7.3f}{row['norm']:>7.3g}"
              f"{row['renders']:>8.1f}{'':>6}{row['ref']:>7.3f}{row['points']:>10}{row['probe']:>11}"
              f"{time.perf_counter() - began:>5.0f}  {row['warned']}  (every point: {row['all'][0]:.3f}/"
              f"{row['all'][1]:.3g}; {row['met']} scored points meet both aims; each: {row['each']}; reference stable "
              f"at {row['stable']} (against {SPAN_STEP:g} dB or its halves: {row['spans']}))", flush=True)
        for kind, (c, n, each) in row["signals"].items():
            print(f"{label:<30}{kind:<17}{'':<27}{c:>7.3f}{n:>7.3g}{'':>8}{'':>6}{'':>7}{'':>10}{'':>11}{'':>5}"
                  f"  (each: {each})", flush=True)
        summary.append(row)
        table.append((label, row["choice"], f"{row['cos']:.3f}", f"{row['norm']:.2f}", f"{row['renders']:g}", "",
                      row["warned"], f"{row['ref']:.3f}", row["points"], row["probe"], "", row["stable"]))
    if summary:
        cosines = [r["cos"] for r in summary]
        norms = [r["norm"] for r in summary]
        fits = [r["fit"] for r in summary if "fit" in r]
        inside = sum(1 for c, n in zip(cosines, norms) if c >= 0.9 and 0.8 <= n <= 1.25)
        print(f"default ('auto') over {len(summary)} rows: {inside} with cosine >= 0.9 and norm ratio 0.8-1.25; "
              f"worst cosine {min(cosines):.3f}, norm ratios {min(norms):.3g}-{max(norms):.3g}"
              + (f", fits {min(fits):.2f}-{max(fits):.2f}x the exact processor (goal <= 1.1)" if fits else ""))
        over = [r["stable_met"] for r in summary if "stable_met" in r]
        if over:
            print(f"real black boxes over the points whose reference is stable: {sum(m is True for m in over)} of "
                  f"{len(over)} meet both aims ({sum(m is None for m in over)} with no such point)")
    pooled = []
    if not args.rows:
        for length in lengths:
            unpooled, together = pooling(length, repeats)
            pooled.append((length, unpooled, together))
            print(f"backward through 8 black-box calls (band-tangent, 4 renders per node), {length:g} s tracks: "
                  f"{unpooled:.2f} s unpooled, {together:.2f} s pooled ({unpooled / together:.2f}x)", flush=True)
    operating = len(PROBE_LEVELS) * 2
    total = probe_renders() * (operating - 1) + probe_renders(at_call=True)
    rough = total + probe_renders(at_call=True, rough=True) - probe_renders(at_call=True)
    print(f"probe cost, apart from the backward's: {probe_renders()} renders per probed node and operating point, "
          f"{probe_renders(at_call=True)} at the call's own point ({probe_renders(at_call=True, rough=True)} where "
          f"its response is rough), {operating} operating points, up to {PROBE_ROWS} nodes: {total * PROBE_ROWS} "
          f"renders ({rough * PROBE_ROWS} rough), once per processor and again when its parameters move far")
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.rst:
        print(_rst(table, pooled, setting))


if __name__ == "__main__":
    main()
