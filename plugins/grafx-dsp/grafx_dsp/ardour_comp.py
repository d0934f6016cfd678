"""A twin of Ardour's a-comp (``urn:ardour:a-comp``, ``#stereo``): a peak compressor.

Written from the plug-in's published algorithm (Ardour 7, ``a-comp.c``). Per
sample: the detector is the largest magnitude over the channels, in dB; the
static curve has a quadratic knee of width ``6 * knee + 0.01`` dB around the
threshold; the gain reduction (dB) follows its target through a one-pole
with the attack coefficient ``exp(-1000 / (attack_ms * fs))`` when the
target is above the previous reduction, the release one when below, and
stays when equal. The output is the input times ``10^(-reduction/20)`` and
the makeup gain (which the plug-in glides towards its control at 25 Hz; the
twin is the settled plug-in, as a running DAW plays it).

Which coefficient each sample uses depends on the previous output; given
the choices, the reduction is a linear recursion, solved in chunks in
float64 with cumulative products. The choices are found chunk by chunk by
iterating to agreement (see :func:`_directions`), with no sample loop, and
autograd then gives exact gradients, batched, on any device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range

__all__ = ["AComp", "a_comp_gain_db", "A_COMP_PORTS"]

_MAX_CHUNK = 512
_ROUNDS = 4
_SILENCE_DB = -160.0

A_COMP_PORTS: dict[str, int] = {"attack_ms": 0, "release_ms": 1, "knee_db": 2, "ratio": 3, "threshold_db": 4,
                                "makeup_db": 5}
"""Each twin parameter's a-comp control port (sidechain, 9, stays off; enable, 10, on)."""


def _static_target(level_db: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
                   knee_db: torch.Tensor) -> torch.Tensor:
    width = 6.0 * knee_db + 0.01
    over = level_db - threshold_db
    above = threshold_db + over / ratio
    inside = level_db + (1.0 / ratio - 1.0) * (over + width / 2) ** 2 / (2.0 * width)
    out = torch.where(2 * over < -width, level_db, torch.where(2 * over > width, above, inside))
    return level_db - out


def _chunk_length(coefficients: torch.Tensor) -> int:
    """Samples per chunk such that a product of coefficients cannot underflow float64 (e^-600 at worst)."""
    smallest = float(coefficients.detach().min()) if coefficients.numel() else 1.0
    if smallest >= 1.0:
        return _MAX_CHUNK
    return int(max(8, min(_MAX_CHUNK, 600.0 // -math.log(max(smallest, 1e-300)))))


def _solve(target: torch.Tensor, coeff: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
    """``g[n] = c[n] g[n-1] + (1 - c[n]) t[n]`` over one chunk from ``g[-1] = carry``, by cumulative products."""
    prod = torch.cumprod(coeff, dim=-1)
    return prod * (carry + torch.cumsum((1 - coeff) * target / prod, dim=-1))


def _pick(direction: torch.Tensor, attack: torch.Tensor, release: torch.Tensor) -> torch.Tensor:
    return torch.where(direction > 0, attack, torch.where(direction < 0, release, torch.ones_like(direction)))


def _sequential(t: torch.Tensor, carry: torch.Tensor, attack: torch.Tensor, release: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The plug-in's own sample loop over one chunk, vectorised over rows only (numpy: a
    per-sample loop of torch calls costs several times more)."""
    target, a, r = (v.detach().cpu().numpy() for v in (t, attack[:, 0], release[:, 0]))
    g = carry[:, 0].detach().cpu().numpy().copy()
    directions = np.empty_like(target)
    for n in range(target.shape[-1]):
        direction = np.sign(target[:, n] - g)
        c = np.where(direction > 0, a, np.where(direction < 0, r, 1.0))
        g = c * g + (1 - c) * target[:, n]
        directions[:, n] = direction
    return (torch.from_numpy(directions).to(t.device), torch.from_numpy(g).to(t.device, t.dtype).unsqueeze(-1))


def _settle(t: torch.Tensor, carry: torch.Tensor, attack: torch.Tensor, release: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The branches of one chunk and its last output: rounds to agreement, else the sample loop
    for the rows (nodes) that have not settled."""
    direction = torch.sign(t - carry)
    for _ in range(_ROUNDS):
        g = _solve(t, _pick(direction, attack, release), carry)
        again = torch.sign(t - torch.cat([carry, g[:, :-1]], dim=-1))
        settled = (again == direction).all(dim=-1)
        if bool(settled.all()):
            return direction, g[:, -1:]
        direction = again
    rows = (~settled).nonzero()[:, 0]
    last = g[:, -1:].clone()
    direction = direction.clone()
    direction[rows], last[rows] = _sequential(t[rows], carry[rows], attack.expand_as(carry)[rows],
                                              release.expand_as(carry)[rows])
    return direction, last


def _directions(target: torch.Tensor, attack: torch.Tensor, release: torch.Tensor, length: int,
                carry: torch.Tensor) -> torch.Tensor:
    """Each sample's branch (+1 attack, -1 release, 0 hold), as the plug-in's sequential loop takes it.

    Chunk by chunk, guess the branches from the chunk's start, solve the
    recursion, re-derive the branches from the result and repeat until they
    agree. Agreement makes the result the sequential one (by induction over
    the samples), and every round fixes at least the first wrong branch. On
    music a chunk settles in two or three rounds; one that has not settled
    after a few (noise at a fast attack flips branches every few samples)
    runs the plug-in's sample loop instead.
    """
    directions = []
    for start in range(0, target.shape[-1], length):
        direction, carry = _settle(target[:, start:start + length], carry, attack, release)
        directions.append(direction)
    return torch.cat(directions, dim=-1)


def _linear_recursion(target: torch.Tensor, coeff: torch.Tensor, length: int, carry: torch.Tensor) -> torch.Tensor:
    """``g[n] = c[n] g[n-1] + (1 - c[n]) t[n]`` from ``g[-1] = carry``, rows ``[rows, samples]``, differentiable."""
    out = []
    for start in range(0, target.shape[-1], length):
        g = _solve(target[:, start:start + length], coeff[:, start:start + length], carry)
        out.append(g)
        carry = g[:, -1:]
    return torch.cat(out, dim=-1)


def a_comp_gain_db(x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, knee_db: torch.Tensor,
                   attack_ms: torch.Tensor, release_ms: torch.Tensor, sample_rate: float,
                   reduction: torch.Tensor | None = None) -> torch.Tensor:
    """a-comp's gain reduction in dB, ``[nodes, 1, samples]`` float64 (positive: less gain).

    Args:
        x: ``[nodes, channels, samples]``; the detector takes the largest magnitude over channels.
        threshold_db, ratio, knee_db, attack_ms, release_ms: per node, inside the plug-in's ranges.
        sample_rate: in Hz.
        reduction: the reduction before the first sample, ``[nodes, 1]`` float64 (``None``: 0, the
            plug-in at rest); a block-wise render passes the previous block's last value.
    """
    peak = x.abs().amax(dim=1).to(torch.float64)
    level = torch.where(peak == 0, torch.full_like(peak, _SILENCE_DB), 20.0 * torch.log10(peak.clamp(min=1e-300)))
    threshold, ratio, knee, attack_ms, release_ms = (per_node(p, x, trailing=1).to(torch.float64)
                                                     for p in (threshold_db, ratio, knee_db, attack_ms, release_ms))
    target = _static_target(level, threshold, ratio, knee)
    attack = torch.exp(-1000.0 / (attack_ms * sample_rate))
    release = torch.exp(-1000.0 / (release_ms * sample_rate))
    length = _chunk_length(torch.cat([attack, release], dim=-1))
    carry = torch.zeros_like(target[:, :1]) if reduction is None else reduction.to(target)
    with torch.no_grad():
        directions = _directions(target.detach(), attack.detach(), release.detach(), length, carry.detach())
    return _linear_recursion(target, _pick(directions, attack, release), length, carry).unsqueeze(1)


class AComp(DSPProcessor):
    """Ardour's a-comp as settled (see the module docstring).

    Parameters (each ``[nodes, 1]``; the guard bands end at the plug-in's limits):
        threshold_db: [-59.5, -0.05] dB (plug-in -60-0), default -20.
        ratio: [1.05, 19.5] (plug-in 1-20), default 4.
        knee_db: [0.05, 7.9] dB (plug-in 0-8), default 0.05.
        attack_ms: [0.15, 99] ms (plug-in 0.1-100), default 10.
        release_ms: [1.5, 1990] ms (plug-in 1-2000), default 80.
        makeup_db: [0.05, 29.5] dB (plug-in 0-30), default 0.05.

    Signals: one or two channels in (``a-comp`` and ``a-comp#stereo``), the
    same out; the channels share one gain. :data:`A_COMP_PORTS` maps each
    parameter to the plug-in's port. Streams block by block (the gain
    reduction's last value carried as state).
    """

    inlet_channels = (1, 2)

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "threshold_db": Range(low=-59.5, high=-0.05, default=-20.0, floor=-60.0, ceiling=0.0),
            "ratio": Range(low=1.05, high=19.5, default=4.0, floor=1.0, ceiling=20.0, scale="log"),
            "knee_db": Range(low=0.05, high=7.9, default=0.05, floor=0.0, ceiling=8.0),
            "attack_ms": Range(low=0.15, high=99.0, default=10.0, floor=0.1, ceiling=100.0, scale="log"),
            "release_ms": Range(low=1.5, high=1990.0, default=80.0, floor=1.0, ceiling=2000.0, scale="log"),
            "makeup_db": Range(low=0.05, high=29.5, default=0.05, floor=0.0, ceiling=30.0),
        }

    def forward(self, x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, knee_db: torch.Tensor,
                attack_ms: torch.Tensor, release_ms: torch.Tensor, makeup_db: torch.Tensor) -> torch.Tensor:
        return self._compress(x, None, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db, attack_ms=attack_ms,
                              release_ms=release_ms, makeup_db=makeup_db)[0]

    def initial_state(self, *signals: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """The plug-in at rest: no gain reduction (an empty mapping)."""
        return {}

    def forward_stateful(self, state: dict[str, torch.Tensor], x: torch.Tensor,
                         **params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block from ``state``: the gain reduction's last value, ``{"reduction": [nodes, 1]}`` float64."""
        y, last = self._compress(x, state.get("reduction"), **params)
        return y, {"reduction": last}

    def _compress(self, x: torch.Tensor, reduction: torch.Tensor | None,
                  **params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_channels(x)
        p = {name: self.limit(name, value) for name, value in params.items()}
        reduction = a_comp_gain_db(x, p["threshold_db"], p["ratio"], p["knee_db"], p["attack_ms"],
                                   p["release_ms"], self.sample_rate, reduction)
        gain_db = per_node(p["makeup_db"], x).to(torch.float64) - reduction
        return x * torch.pow(10.0, gain_db / 20.0).to(x.dtype), reduction[:, 0, -1:]
