"""What a stream's latency puts around a node's input, and how a node is kept from hearing it.

In a stream with latency a node's input arrives ``lag`` samples late (the
latencies along the paths into it, :mod:`grafx_core.stream`): its first
``lag`` samples are what upstream processors emitted before the one-shot
render's time 0 (silence from a late black box, the precursor of a centred
FIR), and the silence that flushes the stream's end carries what they emit
after the input's last sample (an FIR's ring-out). A one-shot render gives
every node its input over ``[0, samples)`` only: it starts from rest at time 0
and hears silence after the end. A stream therefore silences each stateful
node's input outside that span, and a processor whose output depends on where
its input begins (a black box: its plug-in's run boundaries, its state after
silence) is told how many samples to skip at the start (``start_late(state,
samples)``, an optional part of the state protocol) instead of hearing silence.
Without this a compressor after a centred FIR EQ pumped on the precursor (0.7
apart), and an LV2 compressor after an LV2 EQ ran 4.8e-7 apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["SPAN", "OneShotSpan"]

SPAN = "one_shot_span"
"""The key of a stream's :class:`OneShotSpan` in its states (stage calls' keys are tuples)."""


class OneShotSpan:
    """Each node's lag in a stream, how far the stream has come and, once known, where its input ended.

    Args:
        lags: node id to the samples its input arrives late (nodes not in it: 0).
    """

    def __init__(self, lags: Mapping[int, int]) -> None:
        self.lags = {node: int(lag) for node, lag in lags.items() if lag > 0}
        self.position = 0
        self.end: int | None = None
        self._rows: dict[Any, list[int]] = {}

    def rows(self, key: Any, node_ids: Sequence[int], batch: int) -> list[int]:
        """The lag of each row of a stage call, ``batch`` times over (a batch's rows repeat its nodes)."""
        if key not in self._rows:
            self._rows[key] = [self.lags.get(int(node), 0) for node in node_ids] * batch
        return self._rows[key]

    def outside(self) -> bool:
        """Whether some node's input may fall outside its span in the block under way."""
        return self.end is not None or self.position < max(self.lags.values(), default=0)

    def silence(self, signals: list[torch.Tensor], rows: list[int]) -> list[torch.Tensor]:
        """``signals`` (``[rows, channels, samples]``, the block under way) zeroed outside each row's span
        ``[lag, end + lag)`` of stream samples."""
        length = signals[0].shape[-1]
        windows = [(min(max(lag - self.position, 0), length),
                    length if self.end is None else min(max(self.end + lag - self.position, 0), length))
                   for lag in rows]
        if all(start == 0 and stop == length for start, stop in windows):
            return signals
        masked = []
        for x in signals:
            x = x.clone()
            for row, (start, stop) in enumerate(windows):
                x[row, :, :start] = 0
                x[row, :, max(start, stop):] = 0
            masked.append(x)
        return masked

    def advance(self, samples: int) -> None:
        """The stream has rendered another block of ``samples``."""
        self.position += int(samples)

    def ended(self) -> None:
        """The input has ended: what follows is the flush."""
        self.end = self.position
