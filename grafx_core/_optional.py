"""Optional dependencies, imported only when a feature needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import OptionalDependencyError

__all__ = ["OptionalDependencyError", "require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an error naming the grafx-core extra that provides it.

    Args:
        module: the module to import (``"matplotlib"``).
        extra: the grafx-core extra that installs it (``"plot"``).
        feature: what needs it, for the message (``"drawing a graph"``).

    Raises:
        OptionalDependencyError: the import failed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionalDependencyError(
            f"{feature} needs {module}, which is not installed; install it with "
            f"`pip install grafx-core[{extra}]` (or `pip install {module}`)"
        ) from exc
