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

Which coefficient each sample uses depends on the previous output, so the
decisions are made by a sequential pass (detached, on the CPU, in float32
like the plug-in); given them, the reduction is a linear recursion, solved
in chunks in float64 with cumulative products, so that autograd gives exact
gradients on any device.
"""

from __future__ import annotations

import numpy as np
import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range

__all__ = ["AComp", "a_comp_gain_db", "A_COMP_PORTS"]

_CHUNK = 64
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


def _decisions(target: np.ndarray, attack: np.ndarray, release: np.ndarray) -> np.ndarray:
    """Each sample's smoothing coefficient, as the plug-in chooses it (float32)."""
    rows, samples = target.shape
    coeff = np.empty_like(target)
    state = np.zeros(rows, dtype=np.float32)
    one = np.float32(1.0)
    for n in range(samples):
        t = target[:, n]
        c = np.where(t < state, release, np.where(t > state, attack, one))
        coeff[:, n] = c
        state = np.where(c == one, t, c * state + (one - c) * t).astype(np.float32)
    return coeff


def _linear_recursion(target: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """``g[n] = c[n] g[n-1] + (1 - c[n]) t[n]`` from ``g[-1] = 0``, rows ``[rows, samples]``."""
    out, carry = [], torch.zeros_like(target[:, :1])
    for start in range(0, target.shape[-1], _CHUNK):
        c, t = coeff[:, start:start + _CHUNK], target[:, start:start + _CHUNK]
        prod = torch.cumprod(c, dim=-1)
        # c == 1 (hold) keeps prod exact; c in (0, 1) never underflows over one chunk in float64.
        g = prod * (carry + torch.cumsum((1 - c) * t / prod, dim=-1))
        out.append(g)
        carry = g[:, -1:]
    return torch.cat(out, dim=-1)


def a_comp_gain_db(x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor, knee_db: torch.Tensor,
                   attack_ms: torch.Tensor, release_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """a-comp's gain reduction in dB, ``[nodes, 1, samples]`` (positive: less gain).

    Args:
        x: ``[nodes, channels, samples]``; the detector takes the largest magnitude over channels.
        threshold_db, ratio, knee_db, attack_ms, release_ms: per node, inside the plug-in's ranges.
        sample_rate: in Hz.
    """
    with torch.no_grad():
        peak = x.detach().abs().amax(dim=1).to(torch.float32)
        level32 = torch.where(peak == 0, torch.full_like(peak, _SILENCE_DB), 20.0 * torch.log10(peak))
        p32 = [per_node(p.detach(), x, trailing=1).to(torch.float32) for p in (threshold_db, ratio, knee_db)]
        target32 = _static_target(level32, *p32).cpu().numpy()
        attack = np.exp(-1000.0 / (per_node(attack_ms.detach(), x, trailing=1).to(torch.float32).cpu().numpy()
                                   * np.float32(sample_rate))).astype(np.float32)
        release = np.exp(-1000.0 / (per_node(release_ms.detach(), x, trailing=1).to(torch.float32).cpu().numpy()
                                    * np.float32(sample_rate))).astype(np.float32)
        coeff32 = _decisions(target32, attack.reshape(-1), release.reshape(-1))
        hold = torch.from_numpy(coeff32 == 1.0).to(x.device)
    level = torch.where(peak.to(x.device) == 0, torch.full_like(peak, _SILENCE_DB).to(x.device),
                        20.0 * torch.log10(x.abs().amax(dim=1).to(torch.float64).clamp(min=1e-300)))
    p64 = [per_node(p, x, trailing=1).to(torch.float64) for p in (threshold_db, ratio, knee_db)]
    target = _static_target(level, *p64)
    attack_c = torch.exp(-1000.0 / (per_node(attack_ms, x, trailing=1).to(torch.float64) * sample_rate))
    release_c = torch.exp(-1000.0 / (per_node(release_ms, x, trailing=1).to(torch.float64) * sample_rate))
    attacking = torch.from_numpy(coeff32 == attack.reshape(-1, 1)).to(x.device) & ~hold
    coeff = torch.where(hold, torch.ones_like(target), torch.where(attacking, attack_c, release_c))
    return _linear_recursion(target, coeff).unsqueeze(1)


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
    parameter to the plug-in's port.
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
        self.check_channels(x)
        p = {name: self.limit(name, value) for name, value in
             (("threshold_db", threshold_db), ("ratio", ratio), ("knee_db", knee_db), ("attack_ms", attack_ms),
              ("release_ms", release_ms), ("makeup_db", makeup_db))}
        reduction = a_comp_gain_db(x, p["threshold_db"], p["ratio"], p["knee_db"], p["attack_ms"],
                                   p["release_ms"], self.sample_rate)
        gain_db = per_node(p["makeup_db"], x).to(torch.float64) - reduction
        return x * torch.pow(10.0, gain_db / 20.0).to(x.dtype)
