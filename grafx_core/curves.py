"""Automation curves: the one rule that turns control frames into per-sample values.

A moving control is given as a curve, a tensor whose trailing axis holds
control frames at a hop of ``hop`` samples. Frame ``k`` sits at sample
``k * hop``; a sample between two frames takes the straight line between
them (linear interpolation), and a sample on a frame takes that frame's
value exactly. A curve for ``samples`` samples has exactly
:func:`curve_frames` frames: the first at sample 0, the last at or up to
``hop - 1`` samples after the last sample, so that every sample lies between
two frames and no value is held or extrapolated at either end. A constant
curve therefore gives exactly its constant at every sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["curve_frames", "curve_to_samples", "check_control_hop", "curve_block"]


def check_control_hop(hop: object, who: str = "control_hop") -> int | None:
    """``hop`` as a positive int (``None`` stays ``None``: the plan takes no curves).

    Raises:
        ValueError: ``hop`` is not a positive int (a bool, a float or 0 included).
    """
    if hop is None:
        return None
    if not isinstance(hop, int) or isinstance(hop, bool) or hop < 1:
        raise ValueError(f"{who} must be a positive int of samples per control frame (512, say), got {hop!r}")
    return hop


def curve_frames(samples: int, hop: int) -> int:
    """The number of control frames a curve over ``samples`` samples has: ``1 + ceil((samples - 1) / hop)``.

    Args:
        samples: the signal's length (>= 1).
        hop: samples per control frame (>= 1).
    """
    if samples < 1 or hop < 1:
        raise ValueError(f"curve_frames: samples and hop must be >= 1, got samples={samples}, hop={hop}")
    return 1 + math.ceil((samples - 1) / hop)


def curve_to_samples(curve: torch.Tensor, samples: int, hop: int) -> torch.Tensor:
    """Per-sample values of a curve: ``[..., frames]`` to ``[..., samples]`` (see the module's rule).

    Differentiable with respect to ``curve``; the result has its dtype and device.

    Args:
        curve: ``[..., curve_frames(samples, hop)]``.
        samples: the signal's length.
        hop: samples per control frame.

    Raises:
        ValueError: the curve has another number of frames.
    """
    frames = curve_frames(samples, hop)
    if curve.shape[-1] != frames:
        raise ValueError(f"a curve over {samples} samples at a hop of {hop} has {frames} frames; "
                         f"got {curve.shape[-1]}")
    if frames == 1:
        return curve.expand(*curve.shape[:-1], samples)
    ramp = torch.arange(hop, dtype=curve.dtype, device=curve.device) / hop
    start = curve[..., :-1, None]
    # start + 0 * slope is start exactly, so frames and constant curves come out bit for bit.
    lines = start + (curve[..., 1:, None] - start) * ramp
    return lines.flatten(-2)[..., :samples] if (frames - 1) * hop >= samples else torch.cat(
        [lines.flatten(-2), curve[..., -1:]], dim=-1)[..., :samples]


def curve_block(values: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """The per-sample values of a moving control inside one block ``[start, stop)`` of a stream.

    Args:
        values: ``[..., samples]`` per-sample values (from :func:`curve_to_samples`).
        start, stop: the block's first sample and one past its last.
    """
    return values[..., start:stop]


@dataclass(frozen=True)
class _Curves:
    """Which parameters of one render are curves, and how to expand them to samples."""

    paths: frozenset[tuple[str, tuple[str, ...]]]
    samples: int
    hop: int
    offset: int = 0
    """A stream's block: the curves cover ``samples`` samples from before the block, which
    takes ``length`` of them from ``offset`` on (``None``: all)."""
    length: int | None = None
