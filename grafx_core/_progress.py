"""The one text progress bar: redrawn in place on a terminal, a line per tenth of the run elsewhere (no dependency)."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``label [#####.....] 120/500  text``.

    On a terminal the line is redrawn in place at most once per ``interval``
    seconds; elsewhere a line is printed at every tenth of the run, so logs
    stay readable. :meth:`finish` draws the last line whatever the timing.

    Args:
        total: the number of steps.
        label: what runs (``"fit"``, ``"proxy"``).
        stream: where to draw (default: standard error).
        width: characters of the bar.
        interval: seconds between redraws on a terminal.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30,
                 interval: float = 0.1) -> None:
        self.total, self.label, self.width, self.interval = total, label, width, interval
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._last_tenth = -1
        self._latest = (0, "")

    def draw(self, done: int, text: str = "") -> None:
        """Show ``done`` of ``total`` steps and ``text``, unless drawn too recently (or this tenth already)."""
        self._latest = (done, text)
        tenth = 10 * done // max(self.total, 1)
        now = time.monotonic()
        if self.interactive and now - self._last_draw < self.interval:
            return
        if not self.interactive and tenth == self._last_tenth:
            return
        self._last_draw, self._last_tenth = now, tenth
        self._write(done, text, newline=not self.interactive)

    def finish(self, done: int, text: str = "") -> None:
        """Draw the final line and end it."""
        self._write(done, text, newline=True)

    def close(self) -> None:
        """Draw the final line from the latest :meth:`draw` call's values and end it."""
        self.finish(*self._latest)

    def _write(self, done: int, text: str, newline: bool) -> None:
        filled = self.width * min(done, self.total) // max(self.total, 1)
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
        self.stream.write(("\r" if self.interactive else "") + line + (f"  {text}" if text else "")
                          + ("\n" if newline else ""))
        self.stream.flush()
