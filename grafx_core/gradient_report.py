"""How good is each gradient estimate of a processor? :func:`gradient_report`.

For every parameter and for the input signal, the report compares each
estimator's vector-Jacobian products (for three seeded random output
gradients; one for the signal)
with a reference: autograd through a twin where one exists (an autograd
processor is its own twin: it is run as a black box through
:func:`~grafx_core.estimators.with_estimator`), else a careful central
difference (Richardson-extrapolated, steps ``h`` and ``2h``; for the signal,
directional differences along upstream-like directions). It prints the
cosine and the norm ratio of each estimate against the reference.

Each parameter is classified from second differences at three steps
``h, 2h, 4h`` (:data:`CLASS_STEPS`, relative to ``max(|p|, 1)``): their norm
grows like ``h^2`` for a smooth control, like ``h^1.5`` to ``h`` where every
sample has a kink at a different value (a hard-knee threshold), and like
``h^0.5`` or slower where the output jumps (a delay in whole samples, a
pre-delay: time shifts). Differences below the output's float32 resolution
count as no change. ``"stepwise"`` controls are not fed to finite
differences or SPSA (their estimates would be noise), and an output that does
not change at all is ``"constant"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import ConformanceError, ProcessorOutputError
from .estimators import with_estimator
from .estimators.auto import _upstream_like
from .processor import gradient_kind, inlet_names, iter_parameter_shapes, normalized_parameter_size

__all__ = ["gradient_report", "GradientReport", "GradientRow", "CLASS_STEPS", "CLASSES"]

CLASS_STEPS = (0.01, 0.02, 0.04)
"""Steps of the classification, relative to ``max(|p|, 1)`` (raw units for black boxes)."""
CLASSES = ("smooth", "kinked", "stepwise", "constant")
"""How a parameter's effect on the output behaves under small changes."""
_REFERENCE_STEP = 2e-3
_SIGNAL_DIRECTIONS = 8
_COTANGENTS = 3  # random output gradients per parameter comparison: more entries than rows alone
_RESOLUTION = 8 * float(torch.finfo(torch.float32).eps)

Path = tuple[str, ...]


@dataclass
class GradientRow:
    """One line of a :class:`GradientReport`.

    Attributes:
        control: a parameter name (dotted for nested ones) or ``"(signal)"``.
        behaviour: one of :data:`CLASSES` (``""`` for the signal).
        estimator: the estimator (``"finite-difference"``, ``"spsa"``) or, for the
            signal, the signal gradient (``"auto -> fft-ratio"`` for the automatic choice).
        cosine: against the reference (``nan`` where not measured).
        norm_ratio: estimate norm over reference norm (``nan`` where not measured).
        note: why a value is missing.
    """

    control: str
    behaviour: str
    estimator: str
    cosine: float = math.nan
    norm_ratio: float = math.nan
    note: str = ""


@dataclass
class GradientReport:
    """What :func:`gradient_report` measured for one processor.

    Attributes:
        name: the processor's name.
        reference: ``"autograd"`` or ``"central difference"``.
        rows: one :class:`GradientRow` per parameter and estimator, then the signal's.
    """

    name: str
    reference: str
    rows: list[GradientRow] = field(default_factory=list)

    def format(self) -> str:
        """A plain-text table."""
        lines = [f"{self.name} (reference: {self.reference})",
                 f"  {'control':<26}{'behaviour':<11}{'estimator':<32}{'cosine':>8}{'norm':>9}  note"]
        for r in self.rows:
            cos = "" if math.isnan(r.cosine) else f"{r.cosine:.3f}"
            norm = "" if math.isnan(r.norm_ratio) else f"{r.norm_ratio:.3g}"
            lines.append(f"  {r.control:<26}{r.behaviour:<11}{r.estimator:<32}{cos:>8}{norm:>9}  {r.note}".rstrip())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"name", "reference", "rows": [...]}`` (``None`` for missing numbers)."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else v
        return {"name": self.name, "reference": self.reference,
                "rows": [{"control": r.control, "behaviour": r.behaviour, "estimator": r.estimator,
                          "cosine": num(r.cosine), "norm_ratio": num(r.norm_ratio), "note": r.note}
                         for r in self.rows]}

    def behaviour(self, control: str) -> str:
        """The class of ``control``.

        Raises:
            KeyError: no such control in the report.
        """
        for r in self.rows:
            if r.control == control:
                return r.behaviour
        raise KeyError(f"{self.name}: no control {control!r} in the report")


def _leaves(tree: Mapping[str, Any], prefix: Path = ()) -> dict[Path, torch.Tensor]:
    out: dict[Path, torch.Tensor] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


def _nest(flat: Mapping[Path, torch.Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _default_parameters(processor: Any, items: int, rng: torch.Generator) -> dict[Path, torch.Tensor]:
    defaults = processor.default_parameters() if callable(getattr(processor, "default_parameters", None)) else None
    flat_defaults = _leaves(defaults) if isinstance(defaults, Mapping) else {}
    black_box = hasattr(processor, "specs") and callable(getattr(processor, "raw_parameters", None))
    out = {}
    for path, shape in iter_parameter_shapes(normalized_parameter_size(processor)):
        base = flat_defaults.get(path)
        value = torch.zeros(shape) if base is None else torch.as_tensor(base, dtype=torch.float32).reshape(shape)
        value = value.expand(items, *shape).clone()
        # Vary the rows a little, so that they are different operating points.
        spread = 0.3 if black_box else 0.05
        value = value + spread * value.abs().clamp(min=1.0 if black_box else 0.0) * torch.randn(value.shape,
                                                                                                generator=rng)
        out[path] = value
    return out


def _call(processor: Any, signals: Sequence[torch.Tensor], params: Mapping[Path, torch.Tensor]) -> torch.Tensor:
    y = processor(*signals, **_nest(params))
    return y[0] if isinstance(y, tuple) else y


def _cos_norm(est: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    e, r = est.double().flatten(), ref.double().flatten()
    rn, en = float(r.norm()), float(e.norm())
    if rn == 0.0:
        return (1.0 if en == 0.0 else math.nan), (math.nan if en else 1.0)
    return (float(e @ r) / (en * rn) if en else 0.0), en / rn


def _classify(processor: Any, signals: Sequence[torch.Tensor], params: dict[Path, torch.Tensor],
              path: Path, column: int) -> str:
    base = params[path]
    flat = base.reshape(base.shape[0], -1)
    scale = flat[:, column].abs().clamp(min=1.0)

    def at(step: float) -> torch.Tensor:
        moved = flat.clone()
        moved[:, column] += step * scale
        return _call(processor, signals, {**params, path: moved.reshape(base.shape)}).double()

    with torch.no_grad():
        centre = at(0.0)
        firsts, seconds = [], []
        for h in CLASS_STEPS:
            up, down = at(h), at(-h)
            firsts.append(float((up - down).norm()))
            seconds.append(float((up - 2 * centre + down).norm()))
    # Differences below the output's float32 resolution are rounding, not behaviour.
    floor = _RESOLUTION * float(centre.norm())
    if max(firsts) <= floor:
        return "constant"
    if firsts[0] <= floor:
        return "stepwise" if firsts[-1] > 100 * floor else "smooth"
    if seconds[-1] <= max(floor, 1e-3 * firsts[-1]):
        return "smooth"  # no curvature to speak of: linear in this control
    pairs = [k for k in range(len(CLASS_STEPS) - 1) if seconds[k] > floor]
    if not pairs:
        return "smooth"
    alpha = float(np.mean([math.log2(seconds[k + 1] / seconds[k]) for k in pairs]))
    if alpha >= 1.7:
        return "smooth"
    return "kinked" if alpha >= 0.8 else "stepwise"


def _reference_parameters(processor: Any, signals: Sequence[torch.Tensor], params: dict[Path, torch.Tensor],
                          gs: Sequence[torch.Tensor], path: Path) -> torch.Tensor:
    """Richardson-extrapolated central differences of ``<g, y>`` per ``g`` and column of ``path``: ``[K, N, cols]``."""
    base = params[path]
    flat = base.reshape(base.shape[0], -1)
    out = torch.zeros(len(gs), *flat.shape, dtype=torch.float64)
    for j in range(flat.shape[1]):
        h = _REFERENCE_STEP * flat[:, j].double().abs().clamp(min=1.0)

        def diff(mult: float) -> torch.Tensor:
            up, down = flat.clone(), flat.clone()
            up[:, j] += (mult * h).to(flat.dtype)
            down[:, j] -= (mult * h).to(flat.dtype)
            with torch.no_grad():
                yu = _call(processor, signals, {**params, path: up.reshape(base.shape)}).double()
                yd = _call(processor, signals, {**params, path: down.reshape(base.shape)}).double()
            span = (up[:, j].double() - down[:, j].double())
            return torch.stack([((yu - yd) * g.double()).flatten(1).sum(1) / span for g in gs])

        out[:, :, j] = (4 * diff(1.0) - diff(2.0)) / 3
    return out


def _parameter_vjps(model: Any, signals: Sequence[torch.Tensor], params: dict[Path, torch.Tensor],
                    gs: Sequence[torch.Tensor]) -> dict[Path, torch.Tensor]:
    """``[K, N, cols]`` VJPs of every parameter, one backward per output gradient ``g``."""
    runs = []
    for g in gs:
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        out = _call(model, signals, leaves)
        if out.requires_grad:  # else no parameter is differentiable: every VJP is zero
            (out * g).sum().backward()
        runs.append({k: (v.grad if v.grad is not None else torch.zeros_like(v)).double().reshape(v.shape[0], -1)
                     for k, v in leaves.items()})
    return {k: torch.stack([run[k] for run in runs]) for k in params}


def gradient_report(processor: Any, *, twin: Any = None, signals: Sequence[torch.Tensor] | None = None,
                    parameters: Mapping[str, Any] | None = None, items: int = 4, seconds: float = 0.5,
                    sample_rate: int = 44100, estimators: Sequence[str] = ("finite-difference", "spsa"),
                    signal_gradients: Sequence[str] = ("auto", "spectral-ratio", "fft-ratio", "smooth-gain",
                                                       "diagonal", "straight-through"),
                    seed: int = 0, name: str | None = None) -> GradientReport:
    """Measure every gradient estimate of ``processor`` against a reference.

    Args:
        processor: an autograd processor (run as a black box through each
            estimator, autograd is the reference) or a black-box processor.
        twin: an autograd processor taking the same signals and parameters as
            ``processor`` (the reference for a black box); without one, central
            differences are.
        signals: one ``[items, channels, samples]`` tensor per inlet (default:
            the demo's synthetic stereo tracks, ``seconds`` long).
        parameters: the processor's keyword parameters ``[items, *shape]``
            (default: its ``default_parameters()``, varied a little per row).
        items, seconds, sample_rate: of the default signals.
        estimators: parameter estimators to compare (registered names).
        signal_gradients: input-signal gradients to compare (``"auto"`` shows its choice).
        seed: seeds the signals, the parameter spread, the output gradient and
            the estimators.
        name: shown in the report (default: the processor's ``name`` or class).

    Returns:
        A :class:`GradientReport`.

    Raises:
        ConformanceError: the processor has no inlet.
        ProcessorOutputError: the processor returns NaN or Inf on the report's inputs.
        ValueError: ``items`` or ``seconds`` is not positive.
    """
    if signals is None and not (isinstance(items, int) and items >= 1 and isinstance(seconds, (int, float))
                                and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"gradient_report: items must be a positive int and seconds a positive finite number, "
                         f"got items={items!r}, seconds={seconds!r}")
    rng = torch.Generator().manual_seed(seed)
    inlets = inlet_names(processor)
    if not inlets:
        raise ConformanceError(f"{name or type(processor).__name__}: gradient_report needs a processor with an inlet")
    if signals is None:
        from .demo.multitrack import synthesise_multitrack

        _, tracks = synthesise_multitrack(items * len(inlets), seconds, sample_rate, seed=seed)
        signals = [tracks[k * items:(k + 1) * items].float() for k in range(len(inlets))]
    signals = [s.detach() for s in signals]
    params = (_leaves(parameters) if parameters is not None
              else _default_parameters(processor, signals[0].shape[0], rng))
    params = {k: v.detach() for k, v in params.items()}
    autograd = gradient_kind(processor) == "autograd"
    reference_model = processor if autograd else twin
    label = name or getattr(processor, "name", None) or type(processor).__name__
    report = GradientReport(str(label), "autograd" if reference_model is not None else "central difference")
    with torch.no_grad():
        y = _call(processor, signals, params)
    if not bool(torch.isfinite(y).all()):
        raise ProcessorOutputError(f"{label}: returned NaN or Inf on the report's signals and parameters, so no "
                                   "gradient of it can be measured (a processor that is unstable at its defaults)")
    gs = [torch.randn(y.shape, generator=rng, dtype=y.dtype) for _ in range(_COTANGENTS)]
    g = gs[0]
    nondiff = set(getattr(processor, "nondifferentiable_parameters", ()) or ())

    # Parameters.
    reference = _parameter_vjps(reference_model, signals, params, gs) if reference_model is not None else {}
    estimates = {est: _parameter_vjps(with_estimator(processor, est, signal_gradient="none", seed=seed),
                                      signals, params, gs) for est in estimators}
    for path, value in params.items():
        control = ".".join(path)
        if control in nondiff or path[0] in nondiff:
            report.rows.append(GradientRow(control, "", "-", note="not differentiable (declared)"))
            continue
        columns = value.reshape(value.shape[0], -1).shape[1]
        classes = {_classify(processor, signals, params, path, j) for j in range(columns)}
        behaviour = next(c for c in ("stepwise", "kinked", "constant", "smooth") if c in classes)
        if behaviour == "stepwise":
            report.rows.append(GradientRow(control, behaviour, "-",
                                           note="time shift or step: not fed to finite differences"))
            continue
        ref = reference.get(path)
        if ref is None:
            ref = _reference_parameters(processor, signals, params, gs, path)
        for est in estimators:
            cos, norm = _cos_norm(estimates[est][path], ref)
            report.rows.append(GradientRow(control, behaviour, est, cos, norm))

    # The input signal.
    directions = [_upstream_like(signals[0], np.random.default_rng(seed + k)) for k in range(_SIGNAL_DIRECTIONS)]
    if reference_model is not None:
        x = signals[0].clone().requires_grad_()
        (_call(reference_model, [x, *signals[1:]], params) * g).sum().backward()
        ref_signal = x.grad.double()
    else:
        ref_signal = None
        step = 1e-3 * signals[0].double().pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-3)
        ref_dirs = []
        for v in directions:
            with torch.no_grad():
                yu = _call(processor, [signals[0] + (step * v).to(signals[0].dtype), *signals[1:]], params)
                yd = _call(processor, [signals[0] - (step * v).to(signals[0].dtype), *signals[1:]], params)
            ref_dirs.append(((yu.double() - yd.double()) * g.double()).flatten(1).sum(1) / (2 * step.flatten()))
        ref_dirs_t = torch.stack(ref_dirs, 1)
    for choice in signal_gradients:
        box = with_estimator(processor, "finite-difference", signal_gradient=choice, seed=seed)
        x = signals[0].clone().requires_grad_()
        out = _call(box, [x, *signals[1:]], params)
        if out.requires_grad:
            (out * g).sum().backward()
        shown = f"auto -> {box.signal_gradient}" if choice == "auto" else choice
        if x.grad is None:
            report.rows.append(GradientRow("(signal)", "", shown, note="no gradient"))
            continue
        est = x.grad.double()
        if ref_signal is not None:
            cos, norm = _cos_norm(est, ref_signal)
            note = ""
        else:
            est_dirs = torch.stack([(est * v.double()).flatten(1).sum(1) for v in directions], 1)
            cos, norm = _cos_norm(est_dirs, ref_dirs_t)
            note = f"along {_SIGNAL_DIRECTIONS} directions"
        report.rows.append(GradientRow("(signal)", "", shown, cos, norm, note))
    return report
