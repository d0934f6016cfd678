"""The graph-node labels of the rows of the processor call being rendered.

The render engine sets them around each processor call; a processor whose
errors may surface later (a black box failing during its backward renders)
reads them at forward time and keeps them with what it saves, so that it can
name the graph node whatever is rendered in between. The engine never learns
which processors read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

__all__ = ["RowLabels", "labelled_rows", "current_row_labels"]


class RowLabels(Sequence[str]):
    """Labels of ``batch * len(names)`` rows: row ``r`` is ``names[r % len(names)]`` (plus its batch item)."""

    def __init__(self, names: Sequence[str], batch: int = 1) -> None:
        self.names, self.batch = tuple(names), batch

    def __len__(self) -> int:
        return self.batch * len(self.names)

    def __getitem__(self, row: int) -> str:  # type: ignore[override]
        if not 0 <= row < len(self):
            raise IndexError(row)
        name = self.names[row % len(self.names)]
        return f"{name}, batch item {row // len(self.names)}" if self.batch > 1 else name


_CURRENT: ContextVar[Sequence[str] | None] = ContextVar("grafx_core_row_labels", default=None)


class labelled_rows:  # noqa: N801 - used as a context manager, like contextlib's
    """Make ``labels`` the :func:`current_row_labels` inside the ``with`` block.

    A class rather than a ``contextmanager`` generator: the engine enters it
    around every processor call, a stream's every block (a generator's
    context manager cost ten times as much as the variable's own set and reset).
    """

    __slots__ = ("_labels", "_token")

    def __init__(self, labels: Sequence[str]) -> None:
        self._labels = labels

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._labels)

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)


def current_row_labels() -> Sequence[str] | None:
    """The labels the render engine set for the current processor call, or ``None`` outside one."""
    return _CURRENT.get()
