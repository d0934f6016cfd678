"""Measure how much silence a plug-in needs before it has glided from its defaults to its settings."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .processor import lv2_processor

__all__ = ["measure_pre_roll", "PRE_ROLL_CANDIDATES"]

PRE_ROLL_CANDIDATES = (0, 1024, 4096, 8192, 16384, 32768, 49152, 65536, 98304, 131072)
"""Pre-rolls tried, in samples."""


def measure_pre_roll(plugin: str, *, sample_rate: float = 44100.0, block_size: int = 1024, nodes: int = 3,
                     seed: int = 0, tolerance: float = 1e-6,
                     candidates: Sequence[int] = PRE_ROLL_CANDIDATES) -> int | None:
    """The smallest candidate pre-roll whose output matches a 262,144-sample pre-roll's.

    Renders ``nodes`` items of seeded noise (2,048 samples) at random settings
    (raw values ``0.5 * N(0, 1)``); matching means a peak difference at most
    ``tolerance`` times the reference's peak.

    Returns:
        The pre-roll in samples, or ``None`` when no candidate matches.

    Raises:
        The errors of :func:`~grafx_lv2.processor.lv2_processor`.
    """
    gen = torch.Generator().manual_seed(seed)
    reference = lv2_processor(plugin, sample_rate=sample_rate, block_size=block_size, pre_roll=262144)
    channels = reference.process.inputs
    x = torch.randn(nodes, channels, 2048, generator=gen) * 0.2
    raw = {s.name: torch.randn(nodes, 1, generator=gen) * 0.5 for s in reference.specs}
    expected = reference(x, **raw)
    peak = float(expected.abs().max())
    for pre_roll in candidates:
        processor = lv2_processor(plugin, sample_rate=sample_rate, block_size=block_size, pre_roll=pre_roll)
        if float((processor(x, **raw) - expected).abs().max()) <= tolerance * peak:
            return int(pre_roll)
    return None
