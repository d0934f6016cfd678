"""Solve a console's send effect as an impulse response, by least squares, from what the dry mix leaves.

A send reverb that is linear and time-invariant (a convolution reverb, sox's
reverb, a plate without modulation) is a filter: its output is the sends'
sum convolved with one impulse response per output channel. Where the
console's send effect holds its response as parameters (a node named
``reverb`` whose processor has an ``ir`` parameter ``[nodes, 2, taps]``, like
``dsp:impulse_response``), :func:`solve_send_response` measures what each
stem sends (two renders per stem: the response a unit impulse, then
silent), takes the residual the dry mix leaves in the target, and solves the
response and the send levels by alternating least squares:

1. the response per channel, given the send levels: least squares over its
   taps, by conjugate gradients on the normal equations (FFT products; the
   signal's own spectrum preconditions them);
2. the send levels, given the response: non-negative least squares of the
   residual on each stem's send through it.

A parametric reverb matches a target's reverb only in its envelope and
colour, so its waveform adds as much error as it removes; a solved response
has the target's phase too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..graph import Graph
from .compressor_start import run_nodes, track_strips
from .least_squares import least_squares_weights

__all__ = ["SendSolution", "least_squares_response", "solve_send_response"]

_ROUNDS = 6  # at most; a round that no longer pays ends them (_SETTLED)
_SETTLED = 0.05
_CG_STEPS = 20
_WARM_STEPS = 6  # a round's response starts from the last round's
_RIDGE = 1e-3  # of the source's mean power per bin: bands the source hardly plays in stay near zero
_SILENT_SEND_DB = -60.0
_PROBE = 0.5  # the probing impulse's height: inside the response's range, where it is used as given


def _fft_length(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(n, real=True))


def least_squares_response(source: np.ndarray, target: np.ndarray, taps: int, steps: int = _CG_STEPS,
                           start: np.ndarray | None = None) -> np.ndarray:
    """The causal FIR ``h`` of ``taps`` taps minimising ``|| (source * h)[:samples] - target ||^2``.

    Args:
        source: ``[samples]`` what goes into the filter.
        target: ``[samples]`` what should come out.
        taps: the response's length.
        steps: conjugate-gradient steps (the preconditioner makes a few dozen enough).
        start: ``[taps]`` where the steps start (default: the preconditioned right-hand side).

    Returns:
        ``[taps]`` float64.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    samples = source.shape[-1]
    n = _fft_length(samples + taps)
    spectrum = np.fft.rfft(source, n)
    power = np.abs(spectrum) ** 2
    ridge = _RIDGE * float(power.mean()) + 1e-30

    def normal(h: np.ndarray) -> np.ndarray:
        out = np.fft.irfft(spectrum * np.fft.rfft(h, n), n)[:samples]
        return np.fft.irfft(np.conj(spectrum) * np.fft.rfft(out, n), n)[:taps] + ridge * h

    # A circulant stand-in for the normal matrix, smoothed over neighbouring bins: symmetric and positive.
    width = max(n // taps, 1)
    smooth = np.convolve(power, np.ones(2 * width + 1) / (2 * width + 1), mode="same") + ridge

    def precondition(h: np.ndarray) -> np.ndarray:
        return np.fft.irfft(np.fft.rfft(h, n) / smooth, n)[:taps]

    rhs = np.fft.irfft(np.conj(spectrum) * np.fft.rfft(target, n), n)[:taps]
    h = precondition(rhs) if start is None else np.array(start, dtype=np.float64)
    residual = rhs - normal(h)
    z = precondition(residual)
    direction, rz = z.copy(), float(residual @ z)
    for _ in range(steps):
        if rz <= 1e-30 * max(float(rhs @ rhs), 1e-300):
            break
        moved = normal(direction)
        alpha = rz / float(direction @ moved)
        h += alpha * direction
        residual -= alpha * moved
        z = precondition(residual)
        rz_next = float(residual @ z)
        direction = z + (rz_next / rz) * direction
        rz = rz_next
    return h


@dataclass
class SendSolution:
    """What :func:`solve_send_response` found.

    Attributes:
        parameters: the console's parameters with the response and the send levels in place.
        response: ``[2, taps]`` the solved response.
        send_db: each stem's send level change in dB (``None`` without send nodes).
        explained: the share of the residual's energy the solved returns explain (0-1).
        notes: lines for the fit's notes.
    """

    parameters: dict[str, dict[str, torch.Tensor]]
    response: np.ndarray
    send_db: dict[str, float] | None
    explained: float
    notes: list[str] = field(default_factory=list)


def _node(graph: Graph, name: str) -> Any:
    return next((node for node in graph.nodes if node.name == name), None)


def _row(graph: Graph, node: Any) -> int:
    return graph.nodes_of_type(node.type).index(node.id)


def _copy(params: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    return {t: {k: v.detach().clone() for k, v in p.items()} for t, p in params.items()}


def solve_send_response(graph: Graph, names: list[str], processors: Mapping[str, Any],
                        params: Mapping[str, Mapping[str, torch.Tensor]], stems: torch.Tensor, target: torch.Tensor,
                        render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
                        rounds: int = _ROUNDS) -> SendSolution | None:
    """The send effect's response and the send levels that best explain what the dry mix leaves.

    Args:
        graph: a console whose send effect is the node ``reverb`` with an ``ir`` parameter
            ``[nodes, 2, taps]``; sends named ``<stem>_send`` with a ``gain_db`` are solved too.
        names: the stem names, in the order of ``stems``.
        processors: by node type.
        params: the console's parameters (processor units); the rest of the console stays as it is.
        stems: ``[stems, channels, samples]``.
        target: ``[2, samples]``.
        render: ``(parameters, sources) -> [2, samples]`` mix.
        rounds: alternations of the response and the send levels.

    Returns:
        The solution, or ``None`` where the console has no such send effect.
    """
    reverb = _node(graph, "reverb")
    if reverb is None or "ir" not in params.get(reverb.type, {}) or target.shape[0] != 2:
        return None
    ir = params[reverb.type]["ir"]
    row = _row(graph, reverb)
    if ir.dim() != 3 or ir.shape[1] != 2:
        return None
    taps = ir.shape[-1]
    silent, impulse = _copy(params), _copy(params)
    silent[reverb.type]["ir"][row] = 0.0
    impulse[reverb.type]["ir"][row] = 0.0
    impulse[reverb.type]["ir"][row, :, 0] = _PROBE
    send_nodes = [_node(graph, f"{name}_send") for name in names]
    with torch.no_grad():
        residual = (target - render(silent, stems)).to("cpu", torch.float64).numpy()
        sends_arr = _sends(graph, names, processors, silent, stems, send_nodes, reverb)
        if sends_arr is None:  # the return passes through processors: probe it with renders
            probes = []
            for k in range(stems.shape[0]):
                alone = torch.zeros_like(stems)
                alone[k] = stems[k]
                probes.append((render(impulse, alone) - render(silent, alone)).to("cpu", torch.float64).numpy()
                              / _PROBE)
            sends_arr = np.stack(probes)  # [stems, 2, samples]
    levels = np.ones(len(sends_arr))
    solve_levels = all(node is not None and "gain_db" in params.get(node.type, {}) for node in send_nodes)
    held = ir[row].detach().to("cpu", torch.float64).numpy()
    response: np.ndarray | None = held if np.any(held) else None  # a response solved before: steps start there
    left = float((residual**2).sum())
    for _ in range(rounds if solve_levels else 1):
        fed = np.tensordot(levels, sends_arr, axes=1)  # [2, samples]
        response = np.stack([least_squares_response(fed[c], residual[c], taps, *(
            (_CG_STEPS, None) if response is None else (_WARM_STEPS, response[c]))) for c in range(2)])
        if not solve_levels:
            break
        through = np.stack([np.stack([_convolve(sends_arr[k, c], response[c]) for c in range(2)])
                            for k in range(len(sends_arr))])
        levels = least_squares_weights(torch.from_numpy(through.reshape(len(sends_arr), -1)),
                                       torch.from_numpy(residual.reshape(-1)))
        was, left = left, float(((residual - np.tensordot(levels, through, axes=1)) ** 2).sum())
        if left > (1 - _SETTLED) * was:  # a round that explains under 5 % more of what is left: settled
            break
    assert response is not None  # the loop ran at least once
    if solve_levels and levels.max() > 0:  # the loudest send keeps its level; the response carries the scale
        response = response * levels.max()
        levels = levels / levels.max()
        fed = np.tensordot(levels, sends_arr, axes=1)
        response = np.stack([least_squares_response(fed[c], residual[c], taps, _WARM_STEPS, response[c])
                             for c in range(2)])
    fed = np.tensordot(levels, sends_arr, axes=1)
    returned = np.stack([_convolve(fed[c], response[c]) for c in range(2)])
    explained = 1.0 - float(((residual - returned) ** 2).sum() / max((residual**2).sum(), 1e-300))
    out = _copy(params)
    out[reverb.type]["ir"][row] = torch.from_numpy(response).to(ir.dtype)
    send_db = None
    if solve_levels:
        send_db = {}
        for name, node, level in zip(names, send_nodes, levels):
            change = 20 * math.log10(level) if level > 10 ** (_SILENT_SEND_DB / 20) else _SILENT_SEND_DB
            out[node.type]["gain_db"][_row(graph, node)] += change
            send_db[name] = change
    notes = [f"send response: {taps} taps per channel by least squares, explains {100 * explained:.0f} % of "
             f"what the dry mix leaves" + ("" if send_db is None else "; sends " + ", ".join(
                 f"{name} {db:+.1f} dB" for name, db in send_db.items()))]
    return SendSolution(out, response, send_db, explained, notes)


def _sends(graph: Graph, names: list[str], processors: Mapping[str, Any], params: Mapping[str, Any],
           stems: torch.Tensor, send_nodes: list[Any], reverb: Any) -> np.ndarray | None:
    """Each stem's send as the send effect hears it, ``[stems, 2, samples]``, from its strip and send node
    alone (no render of the console), where the send effect's return reaches the output through mix nodes
    only and every send node follows its stem's fader; ``None`` otherwise."""
    node, seen = reverb.id, set()
    while graph.node(node).type != "out":
        following = graph.successors(node)
        if len(following) != 1 or node in seen:
            return None
        seen.add(node)
        node = following[0]
        if graph.node(node).type not in ("mix", "out"):
            return None
    strips = track_strips(graph, names, processors)
    if strips is None or any(n is None for n in send_nodes):
        return None
    sends = []
    for k, (strip, send) in enumerate(zip(strips, send_nodes)):
        fader = graph.nodes_of_type(strip.nodes[-1][0])[strip.nodes[-1][1]]
        bus = [n.id for n in graph.nodes if n.name == "reverb_send"]
        if send.id not in graph.successors(fader) or graph.successors(send.id) != bus:
            return None
        chain = [*strip.nodes, (send.type, _row(graph, send))]
        sends.append(run_nodes(processors, params, chain, stems[k][None])[0].to("cpu", torch.float64).numpy())
    return np.stack(sends)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = _fft_length(x.shape[-1] + h.shape[-1])
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)[: x.shape[-1]]
