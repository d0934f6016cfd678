"""Dynamics: a feed-forward compressor, a sidechain compressor and a noise gate.

All three share one design (Giannoulis, Massberg and Reiss, "Digital dynamic
range compressor design", JAES 2012): the detector level is the channel-linked
instantaneous level ``10 log10(mean_c x**2)`` in dB, a static gain computer
with a quadratic soft knee turns it into a target gain reduction in dB, and
:func:`grafx_dsp.ballistics.ballistics` smooths that reduction with real
attack and release times. The detector path runs in the signal's dtype, or
float32 for half precision: dB values need no more than float32's digits, and
float64 costs twice as much on CPU and far more on most GPUs (only the peak
detector's log-domain ramp needs float64, see :mod:`grafx_dsp.ballistics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ._base import DSPProcessor, Number, per_node
from ._derived import derived
from ._ranges import Range
from .ballistics import ballistics, smooth_block, smooth_terms
from .errors import SignalShapeError
from .gain import db_to_amplitude

__all__ = [
    "level_db",
    "soft_knee",
    "compressor_reduction_db",
    "expander_reduction_db",
    "compressor_gain_db",
    "gate_gain_db",
    "compressor",
    "noise_gate",
    "Compressor",
    "SidechainCompressor",
    "NoiseGate",
]

LEVEL_FLOOR_DB = -100.0

KNEE_DB = Range(low=0.0, high=24.0, default=6.0, floor=-3.0, ceiling=30.0)
ATTACK_MS = Range(low=0.1, high=500.0, default=10.0, floor=0.05, ceiling=1000.0, scale="log")
RELEASE_MS = Range(low=1.0, high=5000.0, default=100.0, floor=0.5, ceiling=10000.0, scale="log")


def level_db(x: torch.Tensor) -> torch.Tensor:
    """Channel-linked instantaneous level ``10 log10(mean_c x**2)`` in dB,
    floored at -100 dB; ``[nodes, channels, samples]`` to ``[nodes, 1, samples]`` in ``x``'s dtype
    (float32 for half-precision ``x``)."""
    # Half precision can hold neither quiet powers nor the floor, nor run the ballistics' FFT.
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.promote_types(x.dtype, torch.float32))
    power = x.square().mean(dim=1, keepdim=True)
    if _grad_free(power):
        return power.add_(10.0 ** (LEVEL_FLOOR_DB / 10.0)).log10_().mul_(10.0)
    return 10.0 * torch.log10(power + 10.0 ** (LEVEL_FLOOR_DB / 10.0))


def _grad_free(*tensors: torch.Tensor) -> bool:
    """Whether in-place arithmetic on these tensors' results is safe: no graph is being recorded.

    Under ``no_grad`` the dynamics then hold a few signal-sized tensors at a
    time instead of one per intermediate (ten minutes of mono peaked at 13
    signal sizes in the compressor)."""
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def soft_knee(over_db: torch.Tensor, knee_db: torch.Tensor) -> torch.Tensor:
    """The quadratic soft knee: 0 below ``-knee/2``, ``over_db`` above ``knee/2``,
    ``(over_db + knee/2)**2 / (2 knee)`` in between (a hard knee when ``knee_db`` is 0).

    A negative ``knee_db`` acts as its magnitude.
    """
    half, denominator, low = derived("soft_knee", _knee_terms, knee_db)
    # One expression for all three pieces: the quadratic of the clamped value is 0 below the
    # knee and reaches half at its top, where relu(over - half) takes over. Nested where()s
    # held four signal-sized temporaries at once.
    above = torch.relu(over_db - half)
    quadratic = torch.clamp(over_db, low, half)
    if _grad_free(over_db, knee_db):
        return quadratic.add_(half).square_().div_(denominator).add_(above)
    return (quadratic + half).square() / denominator + above


def _knee_terms(knee_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The soft knee's half width, the quadratic's denominator ``2 |knee|`` (at least ``2e-6``) and
    the knee's bottom ``-half``."""
    width = knee_db.abs()
    return width / 2, 2 * width.clamp(min=1e-6), -width / 2


def compressor_reduction_db(level: torch.Tensor, threshold_db: Number, ratio: Number,
                            knee_db: Number) -> torch.Tensor:
    """Static compressor curve as a gain reduction in dB (>= 0 for ratio >= 1):
    ``(1 - 1/ratio) * soft_knee(level - threshold_db, knee_db)``.

    Args:
        level: detector level in dB, ``[nodes, 1, samples]``.
        threshold_db, ratio, knee_db: per node.
    """
    slope = 1.0 - 1.0 / per_node(ratio, level)
    return slope * soft_knee(level - per_node(threshold_db, level), per_node(knee_db, level))


def expander_reduction_db(level: torch.Tensor, threshold_db: Number, ratio: Number,
                          knee_db: Number) -> torch.Tensor:
    """Static downward-expander curve as a gain reduction in dB (>= 0 for ratio >= 1):
    ``(ratio - 1) * soft_knee(threshold_db - level, knee_db)``; a level ``u`` dB under
    the threshold comes out ``ratio * u`` dB under it."""
    slope = per_node(ratio, level) - 1.0
    return slope * soft_knee(per_node(threshold_db, level) - level, per_node(knee_db, level))


def compressor_gain_db(level: torch.Tensor, threshold_db: Number, ratio: Number, knee_db: Number,
                       attack_ms: Number, release_ms: Number, makeup_db: Number,
                       sample_rate: float, carry: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The compressor's smoothed gain in dB, ``[nodes, 1, samples]`` in ``level``'s dtype: ``makeup_db``
    minus the static reduction smoothed with attack (reduction rising) and release (falling).

    The ballistics are positively homogeneous and odd (smoothing ``c v`` gives ``c`` times the
    smoothed ``v`` for a per-node ``c`` of either sign), so the slope ``1 - 1/ratio`` multiplies the
    smoothed soft-knee curve instead of entering the smoother: the same value, but at ratio 1 the
    smoother no longer sees an all-zero signal, whose relu has gradient 0, and a fit started
    there moves. ``carry``: the ballistics' state across blocks (:func:`~grafx_dsp.ballistics.ballistics`).
    """
    slope = derived("compressor.slope", lambda r, like=level: 1.0 - 1.0 / per_node(r, like), ratio,
                    key=(level.dtype, level.device))
    makeup = per_node(makeup_db, level)
    over = soft_knee(level - per_node(threshold_db, level), per_node(knee_db, level))
    del level  # the caller may have handed over its only reference: free it before the ballistics
    smoothed = ballistics(over, attack_ms, release_ms, sample_rate, carry, nonnegative=True)
    del over
    if _grad_free(smoothed, slope, makeup):
        return smoothed.mul_(derived("compressor.negative_slope", torch.neg, slope)).add_(makeup)
    return makeup - slope * smoothed


def gate_gain_db(level: torch.Tensor, threshold_db: Number, ratio: Number, knee_db: Number,
                 attack_ms: Number, release_ms: Number, range_db: Number,
                 sample_rate: float, carry: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The gate's smoothed gain in dB, ``[nodes, 1, samples]`` in ``level``'s dtype, in ``[-range_db, 0]``.

    The expander's reduction is capped at ``range_db``; the gate's openness
    ``range_db - reduction`` is smoothed, so that opening follows the attack
    time and closing the release time. The state starts closed. ``carry``: the
    ballistics' state across blocks (:func:`~grafx_dsp.ballistics.ballistics`).
    """
    gate_range = per_node(range_db, level)
    reduction = torch.minimum(expander_reduction_db(level, threshold_db, ratio, knee_db), gate_range)
    return ballistics(gate_range - reduction, attack_ms, release_ms, sample_rate, carry) - gate_range


def compressor(x: torch.Tensor, threshold_db: Number, ratio: Number, knee_db: Number,
               attack_ms: Number, release_ms: Number, makeup_db: Number,
               sample_rate: float = 44100.0, sidechain: torch.Tensor | None = None,
               carry: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Feed-forward compressor on ``x`` ``[nodes, channels, samples]``.

    Args:
        x: the signal to compress.
        threshold_db, ratio, knee_db, attack_ms, release_ms, makeup_db: per node
            (see :class:`Compressor` for their meaning and ranges).
        sample_rate: in Hz.
        sidechain: the detector's signal ``[nodes, channels', samples]``; ``x`` when None.
        carry: the envelope's state across blocks, updated in place
            (:func:`~grafx_dsp.ballistics.ballistics`); ``None`` for one call.

    Returns:
        ``[nodes, channels, samples]`` in ``x``'s dtype.
    """
    if carry is not None:
        terms = compressor_block_terms(threshold_db, ratio, knee_db, attack_ms, release_ms, makeup_db, sample_rate,
                                       x, sidechain)
        return compressor_block(x, sidechain, terms, carry)
    gain = compressor_gain_db(level_db(x if sidechain is None else sidechain), threshold_db, ratio, knee_db,
                              attack_ms, release_ms, makeup_db, sample_rate)
    return x * _amplitude(gain, x.dtype)


def compressor_block_terms(threshold_db: Number, ratio: Number, knee_db: Number, attack_ms: Number,
                           release_ms: Number, makeup_db: Number, sample_rate: float, x: torch.Tensor,
                           sidechain: torch.Tensor | None = None) -> tuple[Any, ...]:
    """What :func:`compressor_block` derives from the parameters alone, for blocks like ``x``: the
    threshold and the soft knee's terms in the detector's dtype, the envelope's ramps
    (:func:`~grafx_dsp.ballistics.smooth_terms`) and the gain's offset and scale in nepers, float64.

    A stream derives them once per stage call (:class:`Compressor` keeps them with
    :func:`~grafx_dsp._derived.derived` while its parameters are the same tensors, unchanged)."""
    detector = x if sidechain is None else sidechain
    like = detector.new_empty(0, dtype=_detector_dtype(detector.dtype))
    wide = torch.empty(0, dtype=torch.float64, device=x.device)
    nepers = math.log(10.0) / 20.0
    return (per_node(threshold_db, like), _knee_terms(per_node(knee_db, like)),
            smooth_terms(attack_ms, release_ms, sample_rate, x.shape[-1], x.device),
            per_node(makeup_db, wide) * nepers, (1.0 / per_node(ratio, wide) - 1.0) * nepers)


def compressor_block(x: torch.Tensor, sidechain: torch.Tensor | None, terms: tuple[Any, ...],
                     carry: dict[str, torch.Tensor]) -> torch.Tensor:
    """One block of :func:`compressor` with ``carry`` from :func:`compressor_block_terms`: a stream's compressor.

    The level and the soft knee are the one render's own operations (bit for bit); the
    envelope is :func:`~grafx_dsp.ballistics.smooth_block`'s closed form in float64 and the dB
    gain goes to an amplitude in one ``exp(offset + scale * envelope)``: on a stream's small
    blocks every tensor operation saved counts."""
    threshold, (half, denominator, low), smoothing, offset, scale = terms
    over = level_db(x if sidechain is None else sidechain) - threshold
    above = torch.relu(over - half)  # soft_knee's operations
    quadratic = torch.clamp(over, low, half)
    if _grad_free(over, half):
        over = quadratic.add_(half).square_().div_(denominator).add_(above)
    else:
        over = (quadratic + half).square() / denominator + above
    del above, quadratic
    smoothed = smooth_block(over, smoothing, carry)
    del over
    gain = torch.addcmul(offset, scale, smoothed)
    gain = gain.exp_() if _grad_free(gain) else gain.exp()
    return x * (gain if gain.dtype == x.dtype else gain.to(x.dtype))


def _detector_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype :func:`level_db` returns for a signal of ``dtype``."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.promote_types(dtype, torch.float32)


def _amplitude(gain_db: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if _grad_free(gain_db):
        gain = gain_db.mul_(math.log(10.0) / 20.0).exp_()
        return gain if gain.dtype == dtype else gain.to(dtype)
    return db_to_amplitude(gain_db).to(dtype)


def noise_gate(x: torch.Tensor, threshold_db: Number, ratio: Number, knee_db: Number,
               attack_ms: Number, release_ms: Number, range_db: Number,
               sample_rate: float = 44100.0, carry: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Noise gate / downward expander on ``x`` ``[nodes, channels, samples]``
    (see :class:`NoiseGate`); returns ``x``'s shape and dtype."""
    gain = gate_gain_db(level_db(x), threshold_db, ratio, knee_db, attack_ms, release_ms,
                        range_db, sample_rate, carry)
    return x * _amplitude(gain, x.dtype)


class Compressor(DSPProcessor):
    """Feed-forward compressor with soft knee and attack/release ballistics.

    Parameters (each ``[nodes, 1]``):
        threshold_db: range [-80, 0] dB, default -20.
        ratio: range [1, 20], default 4 (the guard band down to 0.5 expands upwards).
        knee_db: range [0, 24] dB, default 6 (0 is a hard knee).
        attack_ms: range [0.1, 500] ms, default 10: time to 63 % of a rise in gain reduction.
        release_ms: range [1, 5000] ms, default 100: time to 37 % of a fall in gain reduction.
        makeup_db: range [-24, 24] dB, default 0.

    Signals: any channel count in, the same out; the channels are linked
    (one gain per node, see :func:`level_db`).
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "threshold_db": Range(low=-80.0, high=0.0, default=-20.0, floor=-100.0, ceiling=12.0, time_varying=True),
            "ratio": Range(low=1.0, high=20.0, default=4.0, floor=0.5, ceiling=30.0, scale="log"),
            "knee_db": KNEE_DB,
            "attack_ms": ATTACK_MS,
            "release_ms": RELEASE_MS,
            "makeup_db": Range(low=-24.0, high=24.0, default=0.0, floor=-36.0, ceiling=36.0, time_varying=True),
        }

    def _compress(self, x: torch.Tensor, sidechain: torch.Tensor | None,
                  carry: dict[str, torch.Tensor] | None = None, **params: torch.Tensor) -> torch.Tensor:
        if carry is not None:  # a stream's block: the same parameter tensors every block, derived once
            names = tuple(self.ranges)
            terms = derived("Compressor.block", lambda *values: compressor_block_terms(
                *(self.limit(name, value) for name, value in zip(names, values)), self.sample_rate, x, sidechain),
                *(params[name] for name in names),
                key=(type(self), self.sample_rate, x.shape[-1], x.dtype, x.device,
                     None if sidechain is None else sidechain.dtype))
            return compressor_block(x, sidechain, terms, carry)
        p = {name: self.limit(name, value) for name, value in params.items()}
        return compressor(x, p["threshold_db"], p["ratio"], p["knee_db"], p["attack_ms"],
                          p["release_ms"], p["makeup_db"], self.sample_rate, sidechain, carry)

    def initial_state(self, *signals: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """The envelope at rest (an empty mapping: the detectors start at zero)."""
        return {}

    def forward_stateful(self, state: Mapping[str, torch.Tensor], *signals: torch.Tensor,
                         **params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block from ``state``: the envelope's detectors and attack smoother carried across blocks."""
        carry = dict(state)
        x, sidechain = signals if len(signals) == 2 else (signals[0], None)
        if sidechain is not None:
            self._check_sidechain(x, sidechain)
        return self._compress(x, sidechain, carry, **params), carry

    def forward(self, x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
                knee_db: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor,
                makeup_db: torch.Tensor) -> torch.Tensor:
        return self._compress(x, None, None, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db,
                              attack_ms=attack_ms, release_ms=release_ms, makeup_db=makeup_db)


class SidechainCompressor(Compressor):
    """A :class:`Compressor` whose detector listens to the ``"sidechain"`` inlet.

    Inlets ``("main", "sidechain")``, both ``[nodes, channels, samples]`` with
    the same number of samples (channel counts may differ); the gain is
    applied to ``"main"``. Same parameters as :class:`Compressor`.
    """

    inlets = ("main", "sidechain")

    def forward(self, x: torch.Tensor, sidechain: torch.Tensor, threshold_db: torch.Tensor,  # type: ignore[override]
                ratio: torch.Tensor, knee_db: torch.Tensor, attack_ms: torch.Tensor,
                release_ms: torch.Tensor, makeup_db: torch.Tensor) -> torch.Tensor:
        self._check_sidechain(x, sidechain)
        return self._compress(x, sidechain, None, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db,
                              attack_ms=attack_ms, release_ms=release_ms, makeup_db=makeup_db)

    @staticmethod
    def _check_sidechain(x: torch.Tensor, sidechain: torch.Tensor) -> None:
        if sidechain.shape[-1] != x.shape[-1] or sidechain.shape[0] != x.shape[0]:
            raise SignalShapeError(
                f"SidechainCompressor: inlet 'sidechain' has shape {tuple(sidechain.shape)}, expected "
                f"[{x.shape[0]}, channels, {x.shape[-1]}] to match inlet 'main' {tuple(x.shape)}"
            )


class NoiseGate(DSPProcessor):
    """Noise gate / downward expander with attack (opening) and release (closing) times.

    Parameters (each ``[nodes, 1]``):
        threshold_db: range [-100, 0] dB, default -50.
        ratio: range [1, 100], default 10: a level ``u`` dB under the
            threshold comes out ``ratio * u`` dB under it (large ratios gate).
        knee_db: range [0, 24] dB, default 6.
        attack_ms: range [0.1, 500] ms, default 1: opening time (63 %).
        release_ms: range [1, 5000] ms, default 100: closing time (37 % of the way open).
        range_db: range [0, 120] dB, default 60: the most the gate attenuates.

    Signals: any channel count in, the same out, channels linked. The gate starts closed.
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "threshold_db": Range(low=-100.0, high=0.0, default=-50.0, floor=-120.0, ceiling=12.0,
                                  time_varying=True),
            "ratio": Range(low=1.0, high=100.0, default=10.0, floor=0.5, ceiling=150.0, scale="log"),
            "knee_db": KNEE_DB,
            "attack_ms": ATTACK_MS.replace(default=1.0),
            "release_ms": RELEASE_MS,
            "range_db": Range(low=0.0, high=120.0, default=60.0, floor=-6.0, ceiling=150.0),
        }

    def forward(self, x: torch.Tensor, threshold_db: torch.Tensor, ratio: torch.Tensor,
                knee_db: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor,
                range_db: torch.Tensor) -> torch.Tensor:
        return self._gate(x, None, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db, attack_ms=attack_ms,
                          release_ms=release_ms, range_db=range_db)

    def _gate(self, x: torch.Tensor, carry: dict[str, torch.Tensor] | None, **params: torch.Tensor) -> torch.Tensor:
        p = {name: self.limit(name, value) for name, value in params.items()}
        return noise_gate(x, p["threshold_db"], p["ratio"], p["knee_db"], p["attack_ms"],
                          p["release_ms"], p["range_db"], self.sample_rate, carry)

    initial_state = Compressor.initial_state

    def forward_stateful(self, state: Mapping[str, torch.Tensor], x: torch.Tensor,
                         **params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One block from ``state``: the gate's envelope carried across blocks."""
        carry = dict(state)
        return self._gate(x, carry, **params), carry
