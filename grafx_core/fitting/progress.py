"""A progress bar for a fit, and a CSV log of its losses."""

from __future__ import annotations

import os
from typing import TextIO

from .._progress import ProgressBar

__all__ = ["Progress", "LossLog"]


class Progress:
    """``fit [######......] 40/120  loss 0.512 (x0.43 of start)  1.05 s/step  eta 1:24``.

    Drawn by the core's progress bar (:class:`grafx_core._progress.ProgressBar`):
    in place on a terminal (at most five times a second), elsewhere a line at
    every tenth of the run. The last line comes from :meth:`finish` and shows
    the loss the fit returns, the one its summary prints.
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total = total
        self._bar = ProgressBar(total, "fit", stream, width, interval=0.2)

    def update(self, step: int, loss: float, first_loss: float, seconds_per_step: float,
               seconds_left: float | None = None) -> None:
        """Show that ``step`` of ``total`` steps are done, the last of them at ``loss``; ``seconds_left``
        is what a wall-clock budget (``--time``) leaves, when it will end the run before ``total`` steps."""
        if step >= self.total:
            return  # the last line is finish()'s, with the loss the fit returns
        self._bar.draw(step, self._text(step, loss, first_loss, seconds_per_step, seconds_left))

    def finish(self, step: int, loss: float, first_loss: float, seconds_per_step: float) -> None:
        """Draw the final line: ``step`` steps taken, ending at ``loss``."""
        self._bar.finish(step, self._text(step, loss, first_loss, seconds_per_step))

    def _text(self, step: int, loss: float, first_loss: float, seconds_per_step: float,
              seconds_left: float | None = None) -> str:
        eta = seconds_per_step * max(self.total - step, 0)
        if seconds_left is not None and seconds_left < eta:  # the time budget ends the run first
            eta = seconds_left
        return (f"loss {loss:.4f} (x{loss / first_loss:.2f} of start)  {seconds_per_step:.2f} s/step  "
                f"eta {int(eta // 60)}:{int(eta % 60):02d}")


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
