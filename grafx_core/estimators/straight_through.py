"""Placeholder: being written (issue 4)."""

from __future__ import annotations

from typing import Any

__all__ = ["StraightThrough"]


class StraightThrough:
    """Gradient estimator (being written)."""

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
