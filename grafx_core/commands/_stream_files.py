"""``grafx-core render --block-size N``: WAV files streamed from disk to disk through a graph."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

import torch

from ..errors import ProcessorOutputError
from ..plan import RenderPlan
from ..audiofile import AudioBlockReader, AudioBlockWriter, read_source_blocks

__all__ = ["StreamedOutput", "RenderProgress", "stream_to_files"]

PROGRESS_AFTER_S = 2.0
"""A stream shows its progress bar once it has run this long (short renders stay quiet)."""


@dataclass
class StreamedOutput:
    """What a streamed render wrote to one output file."""

    path: str
    channels: int
    samples: int
    peak: float


class RenderProgress:
    """``render [######......] 1:20 of 60:00 audio  12.3x real time  eta 4:36``, on stderr.

    Redrawn in place on a terminal (at most five times a second), a line
    every tenth of the input elsewhere; quiet until the render has run
    :data:`PROGRESS_AFTER_S` seconds.
    """

    def __init__(self, total: int, sample_rate: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.rate, self.width = total, sample_rate, width
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last, self._tenth, self.shown = -math.inf, -1, False

    def update(self, done: int) -> None:
        """Show that ``done`` input samples are rendered."""
        now = time.monotonic()
        elapsed = now - self.start
        tenth = 10 * done // max(self.total, 1)
        if elapsed < PROGRESS_AFTER_S or (self.interactive and now - self._last < 0.2) or (
                not self.interactive and tenth == self._tenth):
            return
        self._last, self._tenth, self.shown = now, tenth, True
        self.stream.write(("\r" if self.interactive else "") + self.line(done, elapsed)
                          + ("" if self.interactive else "\n"))
        self.stream.flush()

    def line(self, done: int, elapsed: float) -> str:
        """The bar for ``done`` samples after ``elapsed`` seconds."""
        filled = self.width * min(done, self.total) // max(self.total, 1)
        speed = done / self.rate / max(elapsed, 1e-9)
        eta = (self.total - done) / self.rate / speed if speed > 0 else 0.0
        return (f"render [{'#' * filled}{'.' * (self.width - filled)}] {_clock(done / self.rate)} of "
                f"{_clock(self.total / self.rate)} audio  {speed:.1f}x real time  eta {_clock(eta)}")

    def finish(self) -> None:
        """End the bar's line (if it was shown)."""
        if self.shown and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def stream_to_files(plan: RenderPlan, parameters: Any, readers: list[AudioBlockReader], outputs: list[str],
                    block_size: int, format: str = "float32", pad: bool = False,
                    progress: TextIO | None = None) -> list[StreamedOutput]:
    """Render the sources ``readers`` block by block through ``plan`` into ``outputs``.

    Each output is written to ``PATH.partial`` and renamed when the render
    has finished, so that a failed render leaves no half-written file in place
    of an old one.

    Raises:
        ProcessorOutputError: a block renders NaN or Inf (nothing is written).
        AudioFileError, StreamingError, ParameterError: see :func:`grafx_core.stream.stream_render`.
    """
    rate = readers[0].sample_rate
    total = max(r.frames for r in readers)
    bar = RenderProgress(total, rate, progress)
    writers: list[AudioBlockWriter] = []
    peaks = [0.0] * len(outputs)
    done = 0
    try:
        with torch.no_grad():
            for y in plan.stream(parameters, read_source_blocks(readers, block_size, pad)):
                if not bool(torch.isfinite(y).all()):
                    raise ProcessorOutputError(
                        f"the render gave NaN or infinite samples near {done / rate:.2f} s (finite sources and "
                        "parameters): a processor is unstable at these settings; nothing was written")
                if not writers:
                    writers = [AudioBlockWriter(f"{path}.partial", y.shape[1], rate, format)  # type: ignore[arg-type]
                               for path in outputs]
                for k, (writer, signal) in enumerate(zip(writers, y)):
                    writer.write(signal)
                    peaks[k] = max(peaks[k], float(signal.abs().max()) if signal.numel() else 0.0)
                done += y.shape[-1]
                bar.update(done)
    except BaseException:
        for writer in writers:
            writer.close()
            os.remove(writer.name)
        raise
    finally:
        bar.finish()
    for writer, path in zip(writers, outputs):
        writer.close()
        os.replace(writer.name, path)
    return [StreamedOutput(path, w.channels, w.frames, peak) for path, w, peak in zip(outputs, writers, peaks)]
