"""What a processor factory's signature says about the options it takes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["factory_keywords", "accepts_keyword"]


def factory_keywords(factory: Callable[..., Any]) -> list[str] | None:
    """The keywords ``factory`` names explicitly; ``None`` when unknown or it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return [name for name, p in parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def accepts_keyword(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether ``factory`` names ``keyword`` explicitly (a ``**kwargs`` may forward to something that
    rejects it, so it does not count)."""
    try:
        return keyword in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
