"""Solve each track's strip on the waveform by Levenberg-Marquardt: second-order steps where they pay.

A console's track strip (EQ, compressor, fader and pan) has a dozen or so
smooth controls, and its output is one stem's contribution to the mix. With
the other tracks and the returns held at what they contribute now, what the
strip should output is known sample by sample: the target less the rest.
:func:`solve_strips` fits each strip to that residual by Levenberg-Marquardt
on the waveform error (the mix SNR's own measure): a finite-difference
Jacobian, one batched run of the strip with each control nudged (no render
of the console), then damped Gauss-Newton steps, each tried with one run.
Tracks are taken loudest first; each solved strip's contribution feeds the
next track's residual (Gauss-Seidel).

Gradient descent on a spectral loss moves these controls slowly: a step costs
a render of the whole mix, and the compressor's threshold, ratio and the EQ
before it trade off against each other, which a first-order step cannot see.
The residual is exact where the strips meet on mix nodes; the caller keeps
the result only where the fit's own loss falls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..graph import Graph
from .compressor_start import TrackStrip, run_nodes, track_strips
from .excerpt import loudest_begin
from .gauss_newton import damped_step

__all__ = ["StripSolution", "solve_strips"]

_SECONDS = 3.0  # of the loudest audio: each Jacobian costs a batched run of the strip over it
_WARM_SECONDS = 1.0  # rendered before it and not scored: envelopes and filters start from their state
_ITERATIONS = 4
_TRIES = 4  # damping raised this many times before a strip's iteration gives up
_LINEAR_STEP = 1e-3  # of a control's range
_LOG_STEP = 1e-2  # of a log-scaled control's logarithm (1 %)
_MOST_STEPS = 30.0  # an iteration moves a control at most this many finite-difference steps (3 % of a range)
_FLOOR = 1e-4  # of the largest curvature: the least a control's damping scales with


@dataclass
class StripSolution:
    """What :func:`solve_strips` did.

    Attributes:
        parameters: the console's parameters with the strips' controls solved.
        gains_db: per track, how much the waveform error of its strip fell (dB, >= 0).
        notes: a line for the fit's notes.
    """

    parameters: dict[str, dict[str, torch.Tensor]]
    gains_db: dict[str, float]
    notes: list[str]


@dataclass
class _Control:
    at: int  # index in the strip's nodes
    node_type: str
    row: int
    name: str
    low: float
    high: float
    log: bool
    element: int = 0  # of the row's values (a vector control, such as an EQ's peak gains, is one per element)

    def to_free(self, value: float) -> float:
        return math.log(value) if self.log else value

    def to_value(self, free: float) -> float:
        value = math.exp(free) if self.log else free
        return min(max(value, self.low), self.high)

    @property
    def step(self) -> float:
        return _LOG_STEP if self.log else _LINEAR_STEP * (self.high - self.low)


def _controls(strip: TrackStrip, processors: Mapping[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]],
              fixed: Mapping[str, Sequence[str]]) -> list[_Control]:
    """The strip's controls with a declared range that the fit may move, one per element of a vector control."""
    controls: list[_Control] = []
    for at, (node_type, row) in enumerate(strip.nodes):
        ranges = getattr(processors[node_type], "ranges", {})
        for name, value in params[node_type].items():
            spec = ranges.get(name)
            if spec is None or name in fixed.get(node_type, ()) or value[row].dim() > 1:  # curves stay as they are
                continue
            log = getattr(spec, "scale", "linear") == "log" and spec.low > 0
            controls.extend(_Control(at, node_type, row, name, float(spec.low), float(spec.high), log, element)
                            for element in range(value[row].numel()))
    return controls


def _value(params: Mapping[str, Mapping[str, torch.Tensor]], control: _Control) -> float:
    return float(params[control.node_type][control.name][control.row].reshape(-1)[control.element])


def _run(processors: Mapping[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]], strip: TrackStrip,
         controls: list[_Control], free: torch.Tensor, x: torch.Tensor, first: int = 0,
         last: int | None = None) -> torch.Tensor:
    """The strip's nodes ``first:last`` run on ``x`` (``[channels, samples]``, what node ``first`` hears) for
    each row of ``free`` ``[batch, controls]``: ``[batch, channels', samples]``."""
    overrides: dict[int, dict[str, torch.Tensor]] = {}
    for k, control in enumerate(controls):
        if control.at < first or (last is not None and control.at >= last):
            continue
        node = overrides.setdefault(control.at - first, {})
        if control.name not in node:
            current = params[control.node_type][control.name][control.row]
            node[control.name] = current.reshape(1, -1).to(x.device, x.dtype).repeat(free.shape[0], 1)
        node[control.name][:, control.element] = torch.tensor([control.to_value(float(f)) for f in free[:, k]],
                                                              dtype=x.dtype, device=x.device)
    with torch.no_grad():
        return run_nodes(processors, params, strip.nodes[first:last], x[None].expand(free.shape[0], *x.shape),
                         overrides)


def _jacobian(processors: Mapping[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]], strip: TrackStrip,
              controls: list[_Control], current: torch.Tensor, steps: torch.Tensor, stem: torch.Tensor,
              error: Callable[[torch.Tensor], torch.Tensor], base: torch.Tensor) -> torch.Tensor:
    """Forward differences ``[residuals, controls]``; a control's nudges run the strip from its own node on,
    from what the nodes before it output at ``current`` (an EQ's output is not recomputed for its compressor)."""
    columns: list[torch.Tensor] = [base.new_empty(0)] * len(controls)
    x = stem
    for at in range(len(strip.nodes)):
        mine = [k for k, c in enumerate(controls) if c.at == at]
        if mine:
            nudged = current.expand(len(mine), -1).clone()
            nudged[torch.arange(len(mine)), mine] += steps[mine]
            moved = (error(_run(processors, params, strip, controls, nudged, x, at)) - base) / steps[mine, None]
            for row, k in enumerate(mine):
                columns[k] = moved[row]
        x = _run(processors, params, strip, controls, current, x, at, at + 1)[0]
    return torch.stack(columns, dim=1)


def _solve_strip(processors: Mapping[str, Any], params: dict[str, dict[str, torch.Tensor]], strip: TrackStrip,
                 controls: list[_Control], stem: torch.Tensor, wanted: torch.Tensor, warm: int,
                 iterations: int) -> float:
    """Levenberg-Marquardt on ``|| strip(stem)[warm:] - wanted[warm:] ||^2``; sets the controls in ``params``;
    returns the error's fall in dB."""
    current = torch.tensor([[c.to_free(_value(params, c)) for c in controls]], dtype=torch.float64)
    steps = torch.tensor([c.step for c in controls], dtype=torch.float64)
    target = wanted[..., warm:].to(torch.float64).reshape(-1)

    def error(out: torch.Tensor) -> torch.Tensor:
        return out[..., warm:].to(torch.float64).reshape(out.shape[0], -1) - target

    base = error(_run(processors, params, strip, controls, current, stem))[0]
    first = cost = float(base.pow(2).sum())
    damping = 1e-3
    for _ in range(iterations):
        jacobian = _jacobian(processors, params, strip, controls, current, steps, stem, error, base)
        for _ in range(_TRIES):
            move = damped_step(jacobian, base, damping, floor=_FLOOR)
            trial = current + (move.clamp(-_MOST_STEPS * steps, _MOST_STEPS * steps))[None]
            trial_error = error(_run(processors, params, strip, controls, trial, stem))[0]
            trial_cost = float(trial_error.pow(2).sum())
            if trial_cost < cost:
                current, base, cost, damping = trial, trial_error, trial_cost, max(damping / 4, 1e-6)
                break
            damping *= 8
        else:
            break
    for k, control in enumerate(controls):
        row = params[control.node_type][control.name][control.row]
        row.view(-1)[control.element] = control.to_value(float(current[0, k]))
    return 10 * math.log10(max(first, 1e-30) / max(cost, 1e-30))


def solve_strips(graph: Graph, names: list[str], processors: Mapping[str, Any],
                 params: Mapping[str, Mapping[str, torch.Tensor]], stems: torch.Tensor, target: torch.Tensor,
                 sample_rate: int, render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
                 fixed: Mapping[str, Sequence[str]] | None = None, seconds: float | None = _SECONDS,
                 iterations: int = _ITERATIONS, sweeps: int = 1) -> StripSolution | None:
    """Each track strip's controls by Levenberg-Marquardt on the waveform (see the module's description).

    Args:
        graph: a console from :func:`~grafx_core.fitting.build_console`.
        names: the stem names, in the order of ``stems``.
        processors: by node type.
        params: the start (processor units); only the strips' controls change.
        stems: ``[stems, channels, samples]``.
        target: ``[2, samples]``.
        sample_rate: in Hz.
        render: ``(parameters, sources) -> [2, samples]`` mix (measures what the strips leave: returns, buses).
        fixed: controls left alone, ``{node_type: (name, ...)}``.
        seconds: solve on the loudest this many seconds (``None``: all of it), each run from up to a second
            before them.
        iterations: Levenberg-Marquardt iterations per strip and sweep.
        sweeps: passes over the tracks (each pass hears the strips the last one solved).

    Returns:
        The solution, or ``None`` where the console's strips cannot be run on their own (a black box, a
        branch) or the target is not stereo.
    """
    strips = track_strips(graph, names, processors)
    if strips is None or target.shape[0] != 2:
        return None
    warm = 0
    if seconds is not None:
        begin = loudest_begin(target, sample_rate, seconds)
        # A window that reaches the material's start is scored from there: the state at time 0 is the
        # processors' initial state (a compressor's initial level), which the fit must then match.
        warm = int(_WARM_SECONDS * sample_rate) if begin > int(_WARM_SECONDS * sample_rate) else 0
        end = begin + int(round(seconds * sample_rate))
        stems, target = stems[..., begin - warm if warm else 0:end], target[..., begin - warm if warm else 0:end]
    out = {t: {k: v.detach().clone() for k, v in p.items()} for t, p in params.items()}
    with torch.no_grad():
        outputs = [run_nodes(processors, out, s.nodes, stems[k][None])[0] for k, s in enumerate(strips)]
        rest = render(out, stems) - sum(outputs)  # returns, and whatever the buses add
    order = sorted(range(len(strips)), key=lambda k: -float(outputs[k].pow(2).sum()))
    gains: dict[str, float] = {}
    for _ in range(sweeps):
        for k in order:
            controls = _controls(strips[k], processors, out, fixed or {})
            if not controls or outputs[k].shape[0] != 2:
                continue
            wanted = target - rest - (sum(outputs) - outputs[k])
            gain = _solve_strip(processors, out, strips[k], controls, stems[k], wanted, warm, iterations)
            gains[strips[k].name] = gains.get(strips[k].name, 0.0) + gain
            with torch.no_grad():
                outputs[k] = run_nodes(processors, out, strips[k].nodes, stems[k][None])[0]
    if not gains:
        return None
    notes = ["strips solved on the waveform (Levenberg-Marquardt): " + ", ".join(
        f"{name} {db:.1f} dB less error" for name, db in gains.items())]
    return StripSolution(out, gains, notes)
