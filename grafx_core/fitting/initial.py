"""Start a console fit where the answer is likely: faders, pans and EQs from the stems and the target.

Gradient descent from processor defaults spends most of its steps finding
levels a least-squares solve gives at once. :func:`initialise` measures what
each stem contributes to the mix through the console as it starts (one
render per stem, the others silent), then:

1. **faders and pans** - non-negative least squares of the target's channels
   on the contributions' channels, once on the waveforms (right where the mix
   is a sum of the stems, phase included) and once on band powers of STFT
   frames (right where equalisers, compressors and a reverb decorrelate the
   target from the stems); each channel's weights set a fader's gain and pan;
2. **EQs** - each stem's transfer function to the target, solved bin by bin
   (complex least squares over STFT frames, both channels: phase tells
   stems apart that band powers cannot), averaged over third-octave bands,
   is the curve its equalising nodes should add: a high-pass where the
   stem's low end is missing from the target, peaking bands (the EQ's and
   any bells) where the curve departs most from flat, and the band gains
   fitted to the curve (:func:`~grafx_core.fitting.eq_start.start_eqs`);
3. **compressors** - each track compressor's threshold, ratio, attack and
   release by a search on the waveform
   (:func:`~grafx_core.fitting.compressor_start.start_compressors`), then
   the faders solved again;
4. **strips** - every control of each track's strip (EQ, compressor,
   fader) by Levenberg-Marquardt on the waveform against what the other
   tracks leave (:func:`~grafx_core.fitting.strip_solve.solve_strips`).

After the fit, :func:`polish_returns` solves a send effect that holds its
impulse response as parameters (``dsp:impulse_response``) and the send
levels by least squares on what the dry mix leaves
(:func:`~grafx_core.fitting.send_response.solve_send_response`), then the
strips against what the returns leave, then the response again.

Each candidate start is rendered and scored with the fit's loss, and the
best one is kept, the processor defaults included: a start is never worse
than the defaults by the fit's own measure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..graph import Graph
from .compressor_start import start_compressors
from .eq_start import EqualisingNodes, equalising_nodes, start_eqs
from .excerpt import loudest_begin, loudest_excerpt
from .latent import is_black_box
from .least_squares import least_squares_weights
from .loss import SpectralLoss
from .send_response import solve_send_response
from .strip_solve import solve_strips

__all__ = ["Initialisation", "initialise", "least_squares_weights", "loudest_begin", "loudest_excerpt", "polish_returns"]

_N_FFT = 2048
_BANDS_PER_OCTAVE = 3
_EQ_CLIP_DB = 15.0  # a band ratio beyond this is a stem silent in that band, not an EQ move
_ROUNDS = 1


@dataclass
class Initialisation:
    """What :func:`initialise` chose.

    Attributes:
        parameters: the start, ``{node_type: {name: [nodes, *shape]}}`` in processor units.
        chosen: which candidate it is (``"defaults"``, ``"waveform least squares"``, ...).
        losses: every candidate's loss.
        notes: one line per step taken, for the fit's notes.
        renders: how many renders it cost.
        candidates: every candidate start by name (``parameters`` is the one ``chosen``), for several starts.
    """

    parameters: dict[str, dict[str, torch.Tensor]]
    chosen: str
    losses: dict[str, float]
    notes: list[str] = field(default_factory=list)
    renders: int = 0
    candidates: dict[str, dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)


def _band_powers(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[..., channels, samples]`` -> ``[..., channels, bands, frames]`` power in third-octave bands."""
    window = torch.hann_window(_N_FFT, dtype=torch.float64)
    flat = x.detach().to("cpu", torch.float64).reshape(-1, x.shape[-1])
    power = torch.stft(flat, _N_FFT, _N_FFT // 4, window=window, return_complex=True).abs().pow(2)
    freqs = torch.fft.rfftfreq(_N_FFT, 1.0 / sample_rate, dtype=torch.float64)
    edges = _band_edges(sample_rate)
    rows = [power[:, (freqs >= lo) & (freqs < hi)].sum(dim=1) for lo, hi in zip(edges[:-1], edges[1:])]
    return torch.stack(rows, dim=1).reshape(*x.shape[:-1], len(rows), -1)


def _band_edges(sample_rate: int) -> list[float]:
    top = min(20000.0, 0.5 * sample_rate)
    count = int(math.floor(_BANDS_PER_OCTAVE * math.log2(top / 20.0)))
    return [20.0 * 2 ** (k / _BANDS_PER_OCTAVE) for k in range(count + 1)]


def _band_centres(sample_rate: int) -> torch.Tensor:
    edges = torch.tensor(_band_edges(sample_rate), dtype=torch.float64)
    return (edges[:-1] * edges[1:]).sqrt()


@dataclass
class _Track:
    fader_type: str
    fader_row: int


def _tracks(graph: Graph, names: list[str], processors: Mapping[str, Any]) -> list[_Track] | None:
    by_name = {node.name: node for node in graph.nodes if node.name}
    tracks = []
    for name in names:
        fader = by_name.get(f"{name}_fader")
        if fader is None or is_black_box(processors[fader.type]):
            return None
        sizes = processors[fader.type].parameter_size()
        if "gain_db" not in sizes or "pan" not in sizes:
            return None
        tracks.append(_Track(fader.type, graph.nodes_of_type(fader.type).index(fader.id)))
    return tracks


def _copy(params: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    return {t: {k: v.detach().clone() for k, v in p.items()} for t, p in params.items()}


def _contributions(render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
                   params: Mapping[str, Any], stems: torch.Tensor) -> torch.Tensor:
    """``[stems, 2, samples]``: the console's output for each stem alone."""
    outputs = []
    with torch.no_grad():
        for k in range(stems.shape[0]):
            alone = torch.zeros_like(stems)
            alone[k] = stems[k]
            outputs.append(render(params, alone))
    return torch.stack(outputs)


def _set_faders(params: dict[str, dict[str, torch.Tensor]], tracks: list[_Track], weights: np.ndarray,
                contributions: torch.Tensor) -> None:
    """Scale each fader's channels by ``weights`` ``[stems, 2]`` (left, right), as gain and pan; a stem
    silent in ``contributions`` (nothing to measure it by) keeps its fader."""
    energy = contributions.detach().pow(2).sum(dim=(1, 2))
    silent = (energy <= 1e-10 * energy.max().clamp_min(1e-30)).tolist()
    for track, (w_left, w_right), quiet in zip(tracks, weights, silent):
        if quiet:
            continue
        gain, pan = params[track.fader_type]["gain_db"], params[track.fader_type]["pan"]
        angle = (float(pan[track.fader_row, 0]) + 1) * math.pi / 4
        amplitude = 10 ** (float(gain[track.fader_row, 0]) / 20)
        left, right = w_left * amplitude * math.cos(angle), w_right * amplitude * math.sin(angle)
        level = math.hypot(left, right)
        if level < 1e-6:  # the solve silenced the stem: leave it 60 dB down, where a gradient still reaches it
            gain[track.fader_row, 0] = float(gain[track.fader_row, 0]) - 60.0
            continue
        gain[track.fader_row, 0] = 20 * math.log10(level)
        pan[track.fader_row, 0] = 4 * math.atan2(right, left) / math.pi - 1


def _waveform_weights(contributions: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    return np.stack([least_squares_weights(contributions[:, c], target[c]) for c in range(2)], axis=1)


def _power_weights(contributions: torch.Tensor, target: torch.Tensor, sample_rate: int) -> np.ndarray:
    stems = _band_powers(contributions, sample_rate)  # [stems, 2, bands, frames]
    mix = _band_powers(target, sample_rate)  # [2, bands, frames]
    # Each band weighs alike: otherwise the bass bands, where most power lies, decide every level.
    norm = mix.mean(dim=-1, keepdim=True).clamp_min(1e-12)
    weights = []
    for c in range(2):
        basis = (stems[:, c] / norm[c]).reshape(stems.shape[0], -1)
        weights.append(np.sqrt(least_squares_weights(basis, (mix[c] / norm[c]).reshape(-1))))
    return np.stack(weights, axis=1)


def _transfer_ratios_db(contributions: torch.Tensor, target: torch.Tensor,
                        sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per stem and band, the dB its contribution is off, from each stem's transfer function to the target
    solved bin by bin (complex least squares over STFT frames, both channels), and the stem's share of
    the mix's power there (``[stems, bands]`` each). Phase separates stems that band powers cannot."""
    window = torch.hann_window(_N_FFT, dtype=torch.float64)

    def stft(x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().to("cpu", torch.float64).reshape(-1, x.shape[-1])
        spec = torch.stft(flat, _N_FFT, _N_FFT // 4, window=window, return_complex=True)
        return spec.reshape(*x.shape[:-1], *spec.shape[-2:])

    stems, mix = stft(contributions), stft(target)  # [S, 2, F, M], [2, F, M]
    basis = stems.permute(1, 2, 3, 0)  # [2, F, M, S]
    gram = basis.mH @ basis  # [2, F, S, S]
    scale = gram.diagonal(dim1=-2, dim2=-1).real.mean(-1, keepdim=True).clamp_min(1e-20)
    ridge = 1e-3 * scale[..., None] * torch.eye(stems.shape[0], dtype=gram.dtype)
    transfer = torch.linalg.solve(gram + ridge, basis.mH @ mix[..., None])[..., 0]  # [2, F, S]
    power = stems.abs().pow(2).sum(-1)  # [S, 2, F]
    gains = transfer.abs().pow(2).permute(2, 0, 1)  # [S, 2, F]
    freqs = torch.fft.rfftfreq(_N_FFT, 1.0 / sample_rate, dtype=torch.float64)
    edges = _band_edges(sample_rate)
    ratios = torch.zeros(stems.shape[0], len(edges) - 1, dtype=torch.float64)
    shares = torch.zeros_like(ratios)
    total = mix.abs().pow(2).sum(-1).sum(0)  # [F]
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (freqs >= lo) & (freqs < hi)
        if not bool(inside.any()):  # a band narrower than a bin: nothing measured, no move
            continue
        p = power[:, :, inside]
        heard = (gains[:, :, inside] * p).sum(dim=(1, 2))
        played = p.sum(dim=(1, 2))
        ratios[:, b] = torch.where(played > 0, 10 * torch.log10((heard / played.clamp_min(1e-20)).clamp_min(1e-6)),
                                   torch.zeros_like(played))
        shares[:, b] = (heard / total[inside].sum().clamp_min(1e-20)).clamp(0.0, 1.0)
    return ratios.clamp(-_EQ_CLIP_DB, _EQ_CLIP_DB), shares


def _band_content(contributions: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[stems, bands]`` each stem's own energy per third-octave band (of its contribution)."""
    return _band_powers(contributions, sample_rate).sum(dim=(1, 3))


def _set_eqs(params: dict[str, dict[str, torch.Tensor]], eqs: list[EqualisingNodes], processors: Mapping[str, Any],
             contributions: torch.Tensor, target: torch.Tensor, sample_rate: int) -> list[str]:
    ratios, shares = _transfer_ratios_db(contributions, target, sample_rate)
    return start_eqs(params, eqs, processors, ratios, shares, _band_content(contributions, sample_rate),
                     _band_centres(sample_rate), sample_rate)


def initialise(graph: Graph, names: list[str], processors: Mapping[str, Any],
               start: Mapping[str, Mapping[str, torch.Tensor]], stems: torch.Tensor, target: torch.Tensor,
               sample_rate: int, render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
               loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
               analysis_seconds: float | None = 4.0,
               fixed: Mapping[str, Sequence[str]] | None = None) -> Initialisation:
    """A start for fitting ``graph`` to ``target`` (see the module's description).

    Args:
        graph: a console from :func:`~grafx_core.fitting.build_console` (faders named ``<stem>_fader``,
            EQs ``<stem>_eq``); for another graph, or black-box faders, ``start`` comes back unchanged.
        names: the stem names, in the order of ``stems``.
        processors: by node type.
        start: the parameters to start from (processor units).
        stems: ``[stems, channels, samples]``.
        target: ``[2, samples]``.
        sample_rate: in Hz.
        render: ``(parameters, sources) -> [2, samples]`` mix.
        loss: scores a candidate's mix (``None``: the fit's :class:`~grafx_core.fitting.SpectralLoss`
            against the analysed target).
        analysis_seconds: analyse and score on the loudest this many seconds (``None``: all of it): the
            solves need a few seconds of music, and each candidate costs a render per stem.
        fixed: controls the fit leaves alone, ``{node_type: (name, ...)}`` (the strip solve leaves them too).
    """
    whole_stems, whole_target = stems, target  # the strip solve picks its own window, warm-up included
    if analysis_seconds is not None:
        stems, target = loudest_excerpt(stems, target, sample_rate, analysis_seconds)
    if loss is None:
        loss = SpectralLoss(target)
    params = _copy(start)
    tracks = _tracks(graph, names, processors)
    eqs = equalising_nodes(graph, names, processors)
    with torch.no_grad():
        losses = {"defaults": float(loss(render(params, stems)))}
    candidates = {"defaults": params}
    renders = 1
    if tracks is None or target.shape[0] != 2:
        return Initialisation(params, "defaults", losses, ["start: processor defaults (not a built console)"],
                              renders)
    contributions = _contributions(render, params, stems)
    renders += len(names)
    for label, weights in (("waveform least squares", _waveform_weights(contributions, target)),
                           ("band-power least squares", _power_weights(contributions, target, sample_rate))):
        candidate = _copy(params)
        _set_faders(candidate, tracks, weights, contributions)
        candidates[label] = candidate
        with torch.no_grad():
            losses[label] = float(loss(render(candidate, stems)))
        renders += 1
    best = min(losses, key=losses.get)
    notes: list[str] = []
    for round_ in range(_ROUNDS if best != "defaults" else 0):
        # A second round hears the EQs through the compressors the first one found, and the other way round.
        suffix = "" if round_ == 0 else f" (round {round_ + 1})"
        if any(t.shaping() or t.highpass for t in eqs):
            candidate = _copy(candidates[best])
            contributions = _contributions(render, candidate, stems)
            renders += len(names) + 1
            moved = _set_eqs(candidate, eqs, processors, contributions, target, sample_rate)
            if moved:
                notes.append("EQ start: " + ", ".join(moved))
            best = _score(f"{best} + EQ from transfer functions{suffix}", candidate, render, loss, stems,
                          candidates, losses)
        best, spent = _dynamics(graph, names, processors, tracks, stems, target, sample_rate, render, loss,
                                candidates, losses, best, notes, suffix)
        renders += spent
    if best != "defaults":
        solved = solve_strips(graph, names, processors, candidates[best], whole_stems, whole_target, sample_rate,
                              render, fixed)
        if solved is not None:
            best = _score(f"{best} + strips solved on the waveform", solved.parameters, render, loss, stems,
                          candidates, losses)
            notes.extend(solved.notes)
            renders += 2
    notes.insert(0, f"start: {best} (loss {losses[best]:.4f}; " + ", ".join(
        f"{k} {v:.4f}" for k, v in losses.items() if k != best) + ")")
    return Initialisation(candidates[best], best, losses, notes, renders, candidates)


def _refit_faders(render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
                  params: dict[str, dict[str, torch.Tensor]], tracks: list[_Track], stems: torch.Tensor,
                  target: torch.Tensor) -> int:
    contributions = _contributions(render, params, stems)
    _set_faders(params, tracks, _waveform_weights(contributions, target), contributions)
    return stems.shape[0]


def _dynamics(graph: Graph, names: list[str], processors: Mapping[str, Any], tracks: list[_Track],
              stems: torch.Tensor, target: torch.Tensor, sample_rate: int,
              render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
              loss: Callable[[torch.Tensor], torch.Tensor], candidates: dict[str, Any],
              losses: dict[str, float], best: str, notes: list[str], suffix: str = "") -> tuple[str, int]:
    """Compressors from a waveform search, then the faders solved again, kept as a candidate; returns the
    best and the renders. (The send effect's response waits for :func:`polish_returns`: solved now, it
    would also explain what the unfitted dry mix gets wrong.)"""
    renders = 0
    started = start_compressors(graph, names, processors, candidates[best], stems, target, sample_rate)
    if started is not None:
        candidate, more = started
        renders += _refit_faders(render, candidate, tracks, stems, target)
        best = _score(f"{best} + compressors from a search{suffix}", candidate, render, loss, stems, candidates, losses)
        notes.extend(more)
        renders += 1
    return best, renders


def _score(label: str, candidate: dict[str, dict[str, torch.Tensor]],
           render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
           loss: Callable[[torch.Tensor], torch.Tensor], stems: torch.Tensor, candidates: dict[str, Any],
           losses: dict[str, float]) -> str:
    """Score ``candidate`` as ``label``; keep it where it beats what that label held; the best label."""
    with torch.no_grad():
        value = float(loss(render(candidate, stems)))
    if value < losses.get(label, float("inf")):
        candidates[label], losses[label] = candidate, value
    return min(losses, key=losses.get)


def polish_returns(graph: Graph, names: list[str], processors: Mapping[str, Any], params: Any, stems: torch.Tensor,
                   target: torch.Tensor, render: Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor],
                   sample_rate: int | None = None, fixed: Mapping[str, Sequence[str]] | None = None
                   ) -> Initialisation | None:
    """After a fit: the send effect's response and levels solved again on all of the audio, then the faders;
    with ``sample_rate``, the strips solved on the waveform against what the solved returns leave, and the
    response solved once more; kept where the fit's loss on all of it falls (a response solved at the start
    also explained what the unfitted dry mix got wrong). ``None`` where there is nothing to solve (no
    solvable send effect, and no ``sample_rate`` or no strips) or nothing improved.

    Args: as :func:`initialise`; ``params`` may be a :class:`~grafx_core.fitting.LatentParameters`' values.
    """
    start = {t: {k: v.detach().clone() for k, v in params[t].items()} for t in params.keys()}
    tracks = _tracks(graph, names, processors)
    if tracks is None:
        return None
    solved = solve_send_response(graph, names, processors, start, stems, target, render)
    candidate, renders, notes = _copy(start), 0, []
    if solved is not None:
        candidate = solved.parameters
        renders += 2 * len(names) + 2
        if sample_rate is None:  # else the strip solve moves the faders, with everything else on the strip
            renders += _refit_faders(render, candidate, tracks, stems, target)
        notes += solved.notes
    strips = None if sample_rate is None else solve_strips(graph, names, processors, candidate, stems, target,
                                                           sample_rate, render, fixed)
    if strips is not None:
        again = None if solved is None else solve_send_response(graph, names, processors, strips.parameters,
                                                                stems, target, render)
        candidate = strips.parameters if again is None else again.parameters
        renders += 2 + (0 if again is None else 2 * len(names) + 2)
        notes += strips.notes + ([] if again is None else again.notes)
    if solved is None and strips is None:
        return None
    loss = SpectralLoss(target)
    with torch.no_grad():
        losses = {"fitted": float(loss(render(start, stems))), "polished": float(loss(render(candidate, stems)))}
    if losses["polished"] >= losses["fitted"]:
        return None
    notes.append(f"after the fit: {losses['fitted']:.4f} -> {losses['polished']:.4f}")
    return Initialisation(candidate, "polished", losses, notes, renders)
