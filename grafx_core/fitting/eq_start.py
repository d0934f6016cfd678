"""Start each track's equalising nodes from the curve the target asks of its stem.

A track may hold several equalising nodes: its EQ (``<stem>_eq``, shelves and
peaking bands), more peaking bands (``<stem>_bell2``, ``<stem>_bell3``, ...)
and a high-pass filter (``<stem>_highpass``), each a processor that gives its
biquad sections (``coefficients(**values) -> (b, a)``, ``[rows, sections, 3]``).
Given per stem the dB its contribution is off in each third-octave band (from
the transfer functions, :func:`~grafx_core.fitting.initial.initialise`) and
how much of the stem's own energy lies in each band, :func:`start_eqs`:

1. **high-pass** - picks the cutoff (third-octave centres up to 500 Hz, or
   none: its 20 Hz start) whose response best explains the curve's low end,
   each band counting by the stem's energy there: a low end the stem plays
   and the target does not hear is a high-pass; a low end the stem hardly
   plays tells nothing, and the filter stays at 20 Hz;
2. **peaks** - moves every flat peaking band (the EQ's own and the bells) to
   where what is left of the curve departs most from flat, an octave apart;
3. **gains** - fits every band's gain so that the track's summed response
   changes by what is left of the curve (the filters' own responses, a few
   hundred cheap steps with no audio), each band counting by the stem's
   share of the mix there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..graph import Graph
from .latent import LatentParameters, is_black_box

__all__ = ["EqualisingNodes", "equalising_nodes", "start_eqs"]

_EQ_CLIP_DB = 15.0  # as the band ratios: beyond this a band is silent, not moved
_EQ_STEPS = 150
_EQ_SHRINK = 0.05  # per dB^2 of EQ move: a band ratio is noisy, a small move needs strong evidence
_HIGHPASS_TOP_HZ = 500.0
_HIGHPASS_GAIN = 0.5  # a cutoff must explain this share of the low end's misfit ...
_HIGHPASS_LEAST = 1.0  # ... and at least this many (energy-weighted) dB^2
_LOW_END_HZ = 1000.0  # bands above this say nothing about a high-pass below 500 Hz
_EVIDENCE = 0.5  # dB (times the square root of the stem's share): a smaller departure places no peak


@dataclass
class EqualisingNodes:
    """One track's equalising nodes, each ``(node type, row)``.

    Attributes:
        name: the stem's name.
        eq: the EQ (shelves and peaking bands), or ``None``.
        bells: further peaking bands, in order.
        highpass: the high-pass filter, or ``None``.
    """

    name: str
    eq: tuple[str, int] | None = None
    bells: list[tuple[str, int]] = field(default_factory=list)
    highpass: tuple[str, int] | None = None

    def shaping(self) -> list[tuple[str, int]]:
        """The nodes whose gains shape the curve: the EQ, then the bells."""
        return ([self.eq] if self.eq is not None else []) + self.bells


def _designs(processor: Any) -> bool:
    return not is_black_box(processor) and callable(getattr(processor, "coefficients", None))


def equalising_nodes(graph: Graph, names: Sequence[str], processors: Mapping[str, Any]) -> list[EqualisingNodes]:
    """Each stem's equalising nodes, found by their names (see the module's description); a node whose
    processor gives no biquad sections is left out."""
    by_name = {node.name: node for node in graph.nodes if node.name}

    def find(name: str, *parameters: str) -> tuple[str, int] | None:
        node = by_name.get(name)
        if node is None or node.type not in processors or not _designs(processors[node.type]):
            return None
        if not set(parameters) <= set(processors[node.type].parameter_size()):
            return None
        return node.type, graph.nodes_of_type(node.type).index(node.id)

    tracks = []
    for name in names:
        bells = []
        for k in range(2, len(graph.nodes) + 2):
            if f"{name}_bell{k}" not in by_name:
                break
            bell = find(f"{name}_bell{k}", "cutoff_hz", "gain_db")
            if bell is not None:
                bells.append(bell)
        tracks.append(EqualisingNodes(name, find(f"{name}_eq"), bells, find(f"{name}_highpass", "cutoff_hz")))
    return tracks


def _response_db(processor: Any, values: Mapping[str, torch.Tensor], centres: torch.Tensor,
                 sample_rate: int) -> torch.Tensor:
    """``[rows, bands]`` the processor's magnitude response at ``centres`` Hz, in dB."""
    z = torch.exp(-2j * math.pi * centres / sample_rate)
    powers = torch.stack([z**0, z, z**2])  # [3, bands]
    b, a = processor.coefficients(**values)  # [rows, sections, 3]
    h = (b.to(torch.complex128) @ powers) / (a.to(torch.complex128) @ powers)
    return 20 * torch.log10(h.abs().prod(dim=1).clamp_min(1e-9))


def _start_highpass(processor: Any, params: dict[str, torch.Tensor], row: int, curve: torch.Tensor,
                    content: torch.Tensor, centres: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Set the high-pass row's cutoff from ``curve`` (see the module's description); returns how its response
    at ``centres`` changed (dB, ``[bands]``): the curve was measured through the filter as it was."""
    low = centres < _LOW_END_HZ
    candidates = torch.cat([params["cutoff_hz"][row].reshape(1).to(torch.float64),
                            centres[centres <= _HIGHPASS_TOP_HZ]])
    values = {k: v[row:row + 1].expand(len(candidates), *v.shape[1:]).to(torch.float64) for k, v in params.items()}
    values["cutoff_hz"] = candidates.reshape(-1, *params["cutoff_hz"].shape[1:])
    with torch.no_grad():
        responses = _response_db(processor, values, centres, sample_rate).clamp_min(-_EQ_CLIP_DB)
        responses = responses - responses[0]
    weight = (content / content.max().clamp_min(1e-20)) * low
    misfit = (weight * (curve - responses).pow(2)).sum(dim=1)
    best = int(misfit.argmin())
    if best == 0 or misfit[best] > _HIGHPASS_GAIN * misfit[0] or misfit[0] - misfit[best] < _HIGHPASS_LEAST:
        return responses[0]
    params["cutoff_hz"][row] = float(candidates[best])
    return responses[best]


def _place_peaks(slots: list[tuple[torch.Tensor, int, int]], curve: torch.Tensor, weight: torch.Tensor,
                 centres: torch.Tensor) -> None:
    """Move the peaking bands ``slots`` (``(cutoffs [rows, peaks], row, column)``) to where ``curve``
    departs most from flat (by ``|curve| * sqrt(weight)``, at least an octave apart)."""
    score = curve.abs() * weight.sqrt()
    octaves = torch.log2(centres)
    for cutoffs, row, column in slots:
        band = int(score.argmax())
        if not bool(score[band] > _EVIDENCE):
            break
        cutoffs[row, column] = float(centres[band])
        score[(octaves - octaves[band]).abs() < 1.0] = 0.0


def _fit_gains(processors: Mapping[str, Any], params: dict[str, dict[str, torch.Tensor]],
               tracks: list[EqualisingNodes], curves: torch.Tensor, weights: torch.Tensor, centres: torch.Tensor,
               sample_rate: int) -> None:
    """Every shaping node's gains moved so that each track's summed response changes by its row of
    ``curves`` ``[tracks, bands]``, each band counting by ``weights`` (a row of zeros stays)."""
    types = sorted({node_type for t in tracks for node_type, _ in t.shaping()})
    start = {t: {k: v.detach().clone().to(torch.float64) for k, v in params[t].items()} for t in types}
    latent = LatentParameters(start, {t: processors[t] for t in types})
    # Only the band gains move: with frequencies and Qs free too, the fit chases the noise of the
    # band ratios with 78-Q shelves. The gradient descent of the fit proper moves them later.
    latent.freeze({t: [k for k in start[t] if not k.endswith("gain_db")] for t in types})
    owner = {t: torch.zeros(len(next(iter(start[t].values()))), len(tracks), dtype=torch.float64) for t in types}
    for k, track in enumerate(tracks):
        for node_type, row in track.shaping():
            owner[node_type][row, k] = 1.0

    def response(values: Mapping[str, Mapping[str, torch.Tensor]]) -> torch.Tensor:
        responses = [owner[t].T @ _response_db(processors[t], values[t], centres, sample_rate) for t in types]
        return torch.stack(responses).sum(dim=0)

    with torch.no_grad():
        wanted = response(latent.values()) + curves
    total = weights.sum(dim=1, keepdim=True).clamp_min(1e-9)
    trainable = [p for p in latent.parameters() if p.requires_grad]
    if not trainable:
        return
    optimiser = torch.optim.Adam(trainable, lr=0.1)
    for _ in range(_EQ_STEPS):
        optimiser.zero_grad()
        current = latent.values()
        misfit = (weights * (response(current) - wanted).pow(2) / total).sum()
        shrink = sum((v - start[t][k]).pow(2).sum() for t in types for k, v in current[t].items()
                     if k.endswith("gain_db"))
        (misfit + _EQ_SHRINK * shrink).backward()
        optimiser.step()
    for t, fitted in latent.values().items():
        params[t].update({k: v.detach().to(params[t][k].dtype) for k, v in fitted.items()})


def start_eqs(params: dict[str, dict[str, torch.Tensor]], tracks: list[EqualisingNodes],
              processors: Mapping[str, Any], ratios: torch.Tensor, shares: torch.Tensor, content: torch.Tensor,
              centres: torch.Tensor, sample_rate: int) -> list[str]:
    """Start every track's equalising nodes from the band ratios (see the module's description).

    Args:
        params: the console's parameters (processor units), changed in place.
        tracks: per stem, from :func:`equalising_nodes`.
        processors: by node type.
        ratios: ``[stems, bands]`` dB each stem's contribution is off, band by band.
        shares: ``[stems, bands]`` each stem's share of the mix's power there.
        content: ``[stems, bands]`` each stem's own energy per band (any scale per stem).
        centres: ``[bands]`` band centres in Hz.
        sample_rate: in Hz.

    Returns:
        What the analysis moved on the high-passes (``"bass high-pass at 80 Hz"``, ...), for the fit's notes.
    """
    curves = torch.zeros_like(ratios)
    weights = torch.zeros_like(ratios)
    notes = []
    for k, (track, curve, share) in enumerate(zip(tracks, ratios, shares)):
        if not bool(share.sum() > 0):
            continue
        # The broadband part of the ratio belongs to the fader, set by the better-posed solve before.
        curve = curve - (share * curve).sum() / share.sum()
        if track.highpass is not None:
            node_type, row = track.highpass
            before = float(params[node_type]["cutoff_hz"][row].reshape(-1)[0])
            curve = curve - _start_highpass(processors[node_type], params[node_type], row, curve, content[k],
                                            centres, sample_rate)
            after = float(params[node_type]["cutoff_hz"][row].reshape(-1)[0])
            if after != before:
                notes.append(f"{track.name} high-pass at {after:.0f} Hz")
        curves[k], weights[k] = curve, share
        slots = [(params[t]["peak_cutoff_hz" if "peak_cutoff_hz" in params[t] else "cutoff_hz"], row, column)
                 for t, row in track.shaping() for column in range(_peaks(params[t]))
                 if _flat(params[t], row, column)]
        _place_peaks(slots, curve, share, centres)
    _fit_gains(processors, params, tracks, curves, weights, centres, sample_rate)
    return notes


def _peaks(values: Mapping[str, torch.Tensor]) -> int:
    """How many peaking bands a row of these values holds (a bell: one; an EQ: its ``peak_*`` columns)."""
    if "peak_cutoff_hz" in values:
        return int(values["peak_cutoff_hz"].shape[1])
    return 1 if "cutoff_hz" in values and "gain_db" in values else 0


def _flat(values: Mapping[str, torch.Tensor], row: int, column: int) -> bool:
    """Whether that peaking band is flat (a placed band stays where it is)."""
    gain = values["peak_gain_db" if "peak_gain_db" in values else "gain_db"]
    return bool(gain[row].reshape(-1)[column].abs() < 0.5)
