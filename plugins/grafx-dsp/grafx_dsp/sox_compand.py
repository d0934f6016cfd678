"""A twin of sox's ``compand`` effect with one attack/decay pair: a peak-envelope compressor.

Written from sox's documented algorithm (``compand.c``, ``compandt.c``). Per
sample, the envelope ("volume") ``v`` follows the largest magnitude over the
channels, ``t``: ``v += (t - v) * (1 - exp(-1 / (time * fs)))`` with the
attack time when ``t`` is above ``v`` and the decay time otherwise, starting
at ``initial_db`` (sox's initial volume, by default 0 dBFS; a twin placed
before the gain sox applied ahead of its compand starts that much higher). The transfer function maps
the envelope's level to a gain: 0 dB up to the threshold, a slope of
``1/ratio - 1`` above it, and the corner rounded by a quadratic over ``knee_db``
on either side of it, as sox rounds the corner between the segments of
``soft-knee-dB:-inf,-inf,threshold,threshold,0,top``; inputs above 0 dBFS keep
the gain at 0 dBFS. The output is the input times that gain and the make-up
gain (sox's ``gain`` argument).

The envelope is the switched one-pole recursion that :mod:`grafx_dsp.ardour_comp`
solves without a sample loop, so autograd gives exact gradients, batched, on
any device.
"""

from __future__ import annotations

import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range
from .ardour_comp import _chunk_length, _directions, _linear_recursion, _pick

__all__ = ["SoxCompand", "sox_compand_gain_db", "sox_transfer_db"]

_SILENCE = 1e-12


def sox_transfer_db(level_db: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
                    knee_db: torch.Tensor) -> torch.Tensor:
    """sox's compand gain (dB, <= 0 for ratio >= 1) at an envelope level ``level_db`` (dBFS).

    Args:
        level_db: any shape; the parameters broadcast against it.
        threshold_db: where compression begins, < 0 dBFS.
        ratio: >= 1 compresses.
        knee_db: the radius of the rounded corner, > 0.
    """
    slope = 1.0 / ratio - 1.0
    angle = torch.atan(slope)
    # The corner's end lies at most half way to the segment's end at 0 dBFS, as in sox.
    radius = torch.minimum(knee_db, 0.5 * (-threshold_db) * torch.sqrt(1.0 + slope**2))
    start = threshold_db - knee_db
    end_x, end_y = threshold_db + radius * torch.cos(angle), radius * torch.sin(angle)
    mid_x, mid_y = (start + threshold_db + end_x) / 3.0 - start, end_y / 3.0
    span = end_x - start
    a = (end_y / span - mid_y / mid_x) / (span - mid_x)
    b = mid_y / mid_x - a * mid_x
    over = level_db - start
    corner = over * (a * over + b)
    line = end_y + slope * (torch.clamp(level_db, max=0.0) - end_x)
    return torch.where(level_db <= start, torch.zeros_like(corner), torch.where(level_db < end_x, corner, line))


def sox_compand_gain_db(x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, knee_db: torch.Tensor,
                        attack_ms: torch.Tensor, release_ms: torch.Tensor, sample_rate: float,
                        initial_db: torch.Tensor | float = 0.0,
                        envelope: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The compander's gain in dB before make-up, ``[nodes, 1, samples]`` float64, and the envelope's last
    value ``[nodes, 1]`` (a block-wise render's state).

    Args:
        x: ``[nodes, channels, samples]``; the envelope follows the largest magnitude over channels.
        threshold_db, ratio, knee_db, attack_ms, release_ms: per node.
        sample_rate: in Hz.
        initial_db: the envelope before the first sample, dBFS, per node.
        envelope: the envelope before the first sample, linear ``[nodes, 1]``; replaces ``initial_db``
            (a block-wise render passes the previous block's last value).
    """
    peak = x.abs().amax(dim=1).to(torch.float64)
    threshold, ratio, knee, attack_ms, release_ms = (per_node(p, x, trailing=1).to(torch.float64)
                                                     for p in (threshold_db, ratio, knee_db, attack_ms, release_ms))
    attack = torch.exp(-1000.0 / (attack_ms * sample_rate))
    release = torch.exp(-1000.0 / (release_ms * sample_rate))
    length = _chunk_length(torch.cat([attack, release], dim=-1))
    if envelope is None:
        initial = torch.pow(10.0, per_node(initial_db, x, trailing=1).to(torch.float64) / 20.0)
        carry = initial.expand(peak.shape[0], 1)
    else:
        carry = envelope.to(peak)
    with torch.no_grad():
        directions = _directions(peak, attack.detach(), release.detach(), length, carry.detach())
    followed = _linear_recursion(peak, _pick(directions, attack, release), length, carry)
    level = 20.0 * torch.log10(followed.clamp(min=_SILENCE))
    return sox_transfer_db(level, threshold, ratio, knee).unsqueeze(1), followed[:, -1:]


class SoxCompand(DSPProcessor):
    """sox's ``compand attack,decay knee:-inf,-inf,threshold,threshold,0,top gain initial`` (see the module).

    Parameters (each ``[nodes, 1]``):
        threshold_db: range [-80, -1] dB, default -20.
        ratio: range [1, 20], default 4 (``top = threshold * (1 - 1/ratio)``).
        knee_db: range [0.1, 24] dB, default 6.
        attack_ms: range [0.1, 500] ms, default 5.
        release_ms: range [1, 5000] ms, default 100 (sox's decay).
        makeup_db: range [-24, 24] dB, default 0 (sox's gain).
        initial_db: range [-90, 30] dBFS, default 0 (sox's initial volume).

    Signals: any channel count in, the same out; the channels share one envelope. Streams block by
    block (the envelope's last value carried as state).
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "threshold_db": Range(low=-80.0, high=-1.0, default=-20.0, floor=-90.0, ceiling=-0.5),
            "ratio": Range(low=1.0, high=20.0, default=4.0, floor=0.5, ceiling=30.0, scale="log"),
            "knee_db": Range(low=0.1, high=24.0, default=6.0, floor=0.05, ceiling=30.0),
            "attack_ms": Range(low=0.1, high=500.0, default=5.0, floor=0.05, ceiling=1000.0, scale="log"),
            "release_ms": Range(low=1.0, high=5000.0, default=100.0, floor=0.5, ceiling=10000.0, scale="log"),
            "makeup_db": Range(low=-24.0, high=24.0, default=0.0, floor=-30.0, ceiling=30.0),
            "initial_db": Range(low=-90.0, high=30.0, default=0.0, floor=-100.0, ceiling=40.0),
        }

    def forward(self, x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, knee_db: torch.Tensor,
                attack_ms: torch.Tensor, release_ms: torch.Tensor, makeup_db: torch.Tensor,
                initial_db: torch.Tensor) -> torch.Tensor:
        return self._compand(x, None, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db, attack_ms=attack_ms,
                             release_ms=release_ms, makeup_db=makeup_db, initial_db=initial_db)[0]

    def initial_state(self, *signals: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """The envelope at ``initial_db`` (an empty mapping: the first block starts there)."""
        return {}

    def forward_stateful(self, state: dict[str, torch.Tensor], x: torch.Tensor,
                         **params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block from ``state``: the envelope's last value, ``{"envelope": [nodes, 1]}`` float64."""
        y, last = self._compand(x, state.get("envelope"), **params)
        return y, {"envelope": last}

    def _compand(self, x: torch.Tensor, envelope: torch.Tensor | None,
                 **params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = {name: self.limit(name, value) for name, value in params.items()}
        gain_db, last = sox_compand_gain_db(x, p["threshold_db"], p["ratio"], p["knee_db"], p["attack_ms"],
                                            p["release_ms"], self.sample_rate, p["initial_db"], envelope)
        gain_db = gain_db + per_node(p["makeup_db"], x).to(torch.float64)
        return x * torch.pow(10.0, gain_db / 20.0).to(x.dtype), last

