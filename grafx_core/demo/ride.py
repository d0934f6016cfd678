"""A fader ride hidden in the demo's target: a 6 dB swell on one stem and a 6 dB duck on another.

``grafx-core demo --hide-ride`` renders its target with these curves on the
faders and fits the faders as curves (``--automate fader``), so the report
shows how well a fit recovers a ride it was never told about.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..curves import curve_frames
from ..graph import Graph

__all__ = ["RIDE_DB", "ride_stems", "hide_fader_ride"]

RIDE_DB = 6.0
"""How far the swell rises and the duck falls, in dB."""


def ride_stems(names: Sequence[str]) -> tuple[int, int]:
    """The stems that swell and duck: keys (else the last track) swells, bass (else the first) ducks."""
    swell = names.index("keys") if "keys" in names else len(names) - 1
    duck = names.index("bass") if "bass" in names else 0
    if swell == duck:
        swell = (duck + 1) % len(names)
    return swell, duck


def _shapes(frames: int, hop: int, samples: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    t = (torch.arange(frames, dtype=torch.float64) * hop / samples).clamp(max=1.0)
    rise = ((t - 0.2) / 0.5).clamp(0.0, 1.0)
    swell = RIDE_DB * rise * rise * (3 - 2 * rise)  # smoothstep from 20 % to 70 % of the clip
    window = ((t - 0.35) / 0.4).clamp(0.0, 1.0)
    duck = -RIDE_DB * torch.sin(math.pi * window) ** 2  # down and back up between 35 % and 75 %
    return swell.to(dtype), duck.to(dtype)


def hide_fader_ride(graph: Graph, hidden: Mapping[str, Any], names: Sequence[str], samples: int, hop: int,
                    fader_type: str = "dsp:stereo_gain") -> dict[str, dict[str, torch.Tensor]]:
    """``hidden`` with every fader's ``gain_db`` a curve: constant, but for a swell and a duck.

    Args:
        graph: the demo console (its faders are the nodes named ``<stem>_fader``).
        hidden: the hidden parameters.
        names: the stems' names, in order.
        samples: the clip's length.
        hop: samples per control frame of the curves.
        fader_type: the faders' node type.

    Returns:
        ``{node_type: {name: tensor}}`` with ``hidden[fader_type]["gain_db"]``
        as ``[faders, 1, curve_frames(samples, hop)]``.
    """
    result = {t: {k: v.detach().clone() for k, v in hidden[t].items()} for t in hidden.keys()}
    gains = result[fader_type]["gain_db"]
    frames = curve_frames(samples, hop)
    curves = gains.unsqueeze(-1).expand(*gains.shape, frames).clone()
    faders = [graph.nodes[n].name for n in graph.nodes_of_type(fader_type)]
    swell, duck = _shapes(frames, hop, samples, gains.dtype)
    swell_stem, duck_stem = ride_stems(names)
    for stem, shape in ((swell_stem, swell), (duck_stem, duck)):
        row = faders.index(f"{names[stem]}_fader")
        curves[row, 0] += shape.to(curves.device)
    result[fader_type]["gain_db"] = curves
    return result
