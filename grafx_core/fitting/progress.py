"""A progress bar for a fit, and a CSV log of its losses."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "LossLog"]


class Progress:
    """``fit [######......] 40/120  loss 0.512 (x0.43 of start)  1.05 s/step  1:24 left``.

    Redrawn in place on a terminal (at most five times a second); elsewhere a
    line is printed at every tenth of the run, so logs stay readable. The
    last line comes from :meth:`finish` and shows the loss the fit returns,
    the one its summary prints.
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.width = total, width
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._last_tenth = -1

    def update(self, step: int, loss: float, first_loss: float, seconds_per_step: float,
               seconds_left: float | None = None) -> None:
        """Show that ``step`` of ``total`` steps are done, the last of them at ``loss``; ``seconds_left``
        is what remains of a time budget (the time left shown is the sooner of it and the steps')."""
        if step >= self.total:
            return  # the last line is finish()'s, with the loss the fit returns
        tenth = 10 * step // max(self.total, 1)
        now = time.monotonic()
        if self.interactive and now - self._last_draw < 0.2:
            return
        if not self.interactive and tenth == self._last_tenth:
            return
        self._last_draw, self._last_tenth = now, tenth
        self._draw(step, loss, first_loss, seconds_per_step, newline=not self.interactive, seconds_left=seconds_left)

    def finish(self, step: int, loss: float, first_loss: float, seconds_per_step: float) -> None:
        """Draw the final line: ``step`` steps taken, ending at ``loss``."""
        self._draw(step, loss, first_loss, seconds_per_step, newline=True)

    def _draw(self, step: int, loss: float, first_loss: float, seconds_per_step: float, newline: bool,
              seconds_left: float | None = None) -> None:
        eta = seconds_per_step * max(self.total - step, 0)
        done = min(step, self.total) / max(self.total, 1)
        if seconds_left is not None and seconds_left < eta:  # the time budget ends the run first
            eta = seconds_left
            done = max(done, 1.0 - seconds_left / max(seconds_left + seconds_per_step * step, 1e-9))
        filled = int(self.width * min(done, 1.0))
        line = (f"fit [{'#' * filled}{'.' * (self.width - filled)}] {step}/{self.total}  loss {loss:.4f} "
                f"(x{loss / first_loss:.2f} of start)  {seconds_per_step:.2f} s/step  "
                f"{int(eta // 60)}:{int(eta % 60):02d} left")
        self.stream.write(("\r" if self.interactive else "") + line + ("\n" if newline else ""))
        self.stream.flush()


class LossLog:
    """A CSV file with one row per fitting step: ``step,loss,learning_rate,seconds``.

    Each row is flushed as it is written, so that an interrupted fit leaves a
    complete log of the steps it took.

    Args:
        path: the file (overwritten).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")
        self._file.write("step,loss,learning_rate,seconds\n")
        self._file.flush()

    def record(self, step: int, loss: float, learning_rate: float, seconds: float) -> None:
        """Append the row of ``step`` (its loss before the update, and the time since the fit began)."""
        self._file.write(f"{step},{loss!r},{learning_rate!r},{seconds:.4f}\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
