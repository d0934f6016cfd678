"""Start each track's compressor where the target says it acts: a search per track on the waveform.

A compressor's gain is one number per sample, and everything after it on a
console's track (an EQ, the fader and its pan) is linear, so a track's
contribution to the mix for a candidate setting is the processors of its
strip run on its stem alone: no render of the whole console. For one track
at a time, the others held at what they contribute now,
:func:`start_compressors` renders a grid of thresholds and ratios (as nodes
of one batched call), scales each candidate per channel by least squares
against what the other tracks leave of the target, and keeps the setting
with the least waveform error; then a smaller grid of attack and release
times at that setting. Two sweeps over the tracks, loudest first, then the
faders and pans by one joint least-squares solve.

Gradient descent finds a compressor's threshold slowly: below the signal's
level the loss is flat in it, and every step costs a render of the mix.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..graph import Graph
from .excerpt import loudest_begin
from .latent import is_black_box

__all__ = ["start_compressors", "TrackStrip", "track_strips", "run_nodes"]

_THRESHOLDS_DB = tuple(float(t) for t in np.arange(-54.0, -2.0, 6.0))
_RATIOS = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
_FINE_THRESHOLDS_DB = (-3.0, -1.5, 0.0, 1.5, 3.0)
_FINE_RATIOS = (0.8, 1.0, 1.25)
_ATTACKS_MS = (1.0, 5.0, 20.0)
_RELEASES_MS = (50.0, 200.0)
_SWEEPS = 1
_SEARCH_SECONDS = 2.0  # of the loudest audio: the candidates of a track cost a strip run each
_WARM_UP_SECONDS = 1.0  # rendered before it and not scored: an envelope starts from its initial state
_BATCH = 32  # candidates per processor call: a call holds batch x samples x channels several times


@dataclass
class TrackStrip:
    """The processors a stem passes through on its way to its bus.

    Attributes:
        name: the stem's name.
        nodes: ``(node type, row)`` in order, the fader last.
        compressor: the compressor's index in ``nodes`` (``None``: no compressor).
    """

    name: str
    nodes: list[tuple[str, int]]
    compressor: int | None


def track_strips(graph: Graph, names: list[str], processors: Mapping[str, Any]) -> list[TrackStrip] | None:
    """Each stem's strip, from its ``in`` node along single edges to its ``<name>_fader``; ``None`` where
    a strip branches, holds a black box or has no fader."""
    inputs = [node for node in graph.nodes if node.type == "in"]
    if len(inputs) != len(names):
        return None
    strips = []
    for name, node in zip(names, inputs):
        chain: list[tuple[str, int]] = []
        compressor = None
        current = node.id
        while True:
            following = graph.successors(current)
            if len(following) != 1:
                return None
            current = following[0]
            step = graph.node(current)
            if step.type in ("mix", "out", "in") or step.type not in processors or is_black_box(processors[step.type]):
                return None
            if step.name == f"{name}_compressor":
                compressor = len(chain)
            chain.append((step.type, graph.nodes_of_type(step.type).index(step.id)))
            if step.name == f"{name}_fader":
                break
        strips.append(TrackStrip(name, chain, compressor))
    return strips


def run_nodes(processors: Mapping[str, Any], params: Mapping[str, Mapping[str, torch.Tensor]],
              nodes: list[tuple[str, int]], x: torch.Tensor,
              overrides: Mapping[int, Mapping[str, torch.Tensor]] | None = None) -> torch.Tensor:
    """A chain of a console's nodes run on a signal by their processors alone, no render.

    Args:
        processors: by node type (analytic ones: each is called as ``processor(x, **values)``).
        params: the console's parameters, ``{node_type: {name: [nodes, ...]}}`` in processor units.
        nodes: ``(node type, row)`` in order.
        x: ``[batch, channels, samples]``; every node runs with its row's values repeated ``batch`` times.
        overrides: per index in ``nodes``, values ``[batch, ...]`` that replace that node's (a batch of
            candidate settings).

    Returns:
        The last node's output, ``[batch, channels', samples]``.
    """
    for k, (node_type, row) in enumerate(nodes):
        values = {name: value[row:row + 1].expand(x.shape[0], *value.shape[1:])
                  for name, value in params[node_type].items()}
        if overrides is not None and k in overrides:
            values.update(overrides[k])
        x = processors[node_type](x, **values)
    return x


def _scores(candidates: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Waveform error of each candidate ``[batch, 2, samples]`` scaled per channel (>= 0) by least squares."""
    dot = (candidates * residual).sum(-1)
    power = candidates.pow(2).sum(-1).clamp_min(1e-20)
    scale = (dot / power).clamp_min(0.0)
    return (residual.pow(2).sum(-1) - scale * dot).sum(-1)  # |r|^2 - 2 s d + s^2 p with s = d / p


def _search(processors: Mapping[str, Any], params: dict[str, dict[str, torch.Tensor]], strip: TrackStrip,
            stem: torch.Tensor, residual: torch.Tensor, grid: list[dict[str, float]], warm: int) -> dict[str, float]:
    """The grid point whose strip output fits ``residual`` best after the first ``warm`` samples; set it."""
    node_type, row = strip.nodes[strip.compressor]  # type: ignore[index]
    dtype = stem.dtype
    best, best_score = grid[0], float("inf")
    with torch.no_grad():
        for begin in range(0, len(grid), _BATCH):
            chunk = grid[begin:begin + _BATCH]
            override = {name: torch.tensor([[c[name]] for c in chunk], dtype=dtype) for name in chunk[0]}
            out = run_nodes(processors, params, strip.nodes, stem[None].expand(len(chunk), *stem.shape),
                            {strip.compressor: override})  # type: ignore[dict-item]
            scores = _scores(out[..., warm:].to(residual.dtype), residual[None, :, warm:])
            k = int(scores.argmin())
            if float(scores[k]) < best_score:
                best, best_score = chunk[k], float(scores[k])
    for name, value in best.items():
        params[node_type][name][row] = value
    return best


def start_compressors(graph: Graph, names: list[str], processors: Mapping[str, Any],
                      params: Mapping[str, Mapping[str, torch.Tensor]], stems: torch.Tensor, target: torch.Tensor,
                      sample_rate: int, seconds: float | None = _SEARCH_SECONDS
                      ) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]] | None:
    """Each track compressor's threshold, ratio, attack and release by a search on the waveform
    (see the module's description); the faders are left for the caller to solve again.

    Args:
        graph: a console from :func:`~grafx_core.fitting.build_console`.
        names: the stem names, in the order of ``stems``.
        processors: by node type.
        params: the start (processor units); only the compressors' rows change.
        stems: ``[stems, channels, samples]``.
        target: ``[2, samples]``.
        sample_rate: in Hz.
        seconds: search on the loudest this many seconds (``None``: all of it), each candidate rendered from
            up to a second before them.

    Returns:
        The parameters and one note per compressor, or ``None`` where the console has no track
        compressor with ``threshold_db`` and ``ratio`` controls.
    """
    strips = track_strips(graph, names, processors)
    if strips is None or target.shape[0] != 2:
        return None
    strips = [s for s in strips if s.compressor is not None
              and {"threshold_db", "ratio"} <= set(processors[s.nodes[s.compressor][0]].parameter_size())]
    if not strips:
        return None
    warm = 0
    if seconds is not None:
        begin = loudest_begin(target, sample_rate, seconds)
        warm = min(begin, int(_WARM_UP_SECONDS * sample_rate))
        end = begin + int(round(seconds * sample_rate))
        stems, target = stems[..., begin - warm:end], target[..., begin - warm:end]
    out = {t: {k: v.detach().clone() for k, v in p.items()} for t, p in params.items()}
    index = {name: k for k, name in enumerate(names)}
    with torch.no_grad():
        contributions = {s.name: run_nodes(processors, out, s.nodes, stems[index[s.name]][None])[0] for s in strips}
    total = sum(contributions.values())
    others = target - total  # what the tracks without a compressor (and any returns) leave
    loudness = {name: float(c.pow(2).sum()) for name, c in contributions.items()}
    strips.sort(key=lambda s: -loudness[s.name])
    chosen: dict[str, dict[str, float]] = {}
    for _ in range(_SWEEPS):
        for strip in strips:
            stem = stems[index[strip.name]]
            residual = others + contributions[strip.name]
            node_type = strip.nodes[strip.compressor][0]  # type: ignore[index]
            sizes = processors[node_type].parameter_size()
            grid = [{"threshold_db": _THRESHOLDS_DB[-1], "ratio": 1.0}]  # ratio 1: one candidate, any threshold
            grid += [{"threshold_db": t, "ratio": r} for t, r in itertools.product(_THRESHOLDS_DB, _RATIOS[1:])]
            best = _search(processors, out, strip, stem, residual, grid, warm)
            if best["ratio"] > 1.0:  # then a finer grid around it
                grid = [{"threshold_db": best["threshold_db"] + t, "ratio": best["ratio"] * r}
                        for t, r in itertools.product(_FINE_THRESHOLDS_DB, _FINE_RATIOS)]
                best = _search(processors, out, strip, stem, residual, grid, warm)
            if {"attack_ms", "release_ms"} <= set(sizes) and best["ratio"] > 1.0:
                grid = [{"attack_ms": a, "release_ms": r} for a, r in itertools.product(_ATTACKS_MS, _RELEASES_MS)]
                best = {**best, **_search(processors, out, strip, stem, residual, grid, warm)}
            chosen[strip.name] = best
            with torch.no_grad():
                fresh = run_nodes(processors, out, strip.nodes, stem[None])[0]
                scale = ((fresh * residual).sum(-1) / fresh.pow(2).sum(-1).clamp_min(1e-20)).clamp_min(0.0)
                contributions[strip.name] = fresh * scale[:, None]
            others = residual - contributions[strip.name]
    notes = ["compressors from a waveform search: " + ", ".join(
        f"{name} " + " ".join(f"{k} {v:g}" for k, v in best.items()) for name, best in chosen.items())]
    return out, notes
