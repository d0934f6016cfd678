"""The graph-node labels of the rows of the processor call being rendered.

The render engine sets them around each processor call; a processor whose
errors may surface later (a black box failing during its backward renders)
reads them at forward time and keeps them with what it saves, so that it can
name the graph node whatever is rendered in between. The engine never learns
which processors read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def labelled_rows(labels: Sequence[str]) -> Iterator[None]:
    """Make ``labels`` the :func:`current_row_labels` inside the block."""
    token = _CURRENT.set(labels)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_row_labels() -> Sequence[str] | None:
    """The labels the render engine set for the current processor call, or ``None`` outside one."""
    return _CURRENT.get()
