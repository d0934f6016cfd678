"""Warnings about gradients that are knowingly not provided."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, MutableSet

__all__ = ["GradientWarning", "NonDifferentiableParameterWarning", "StoppedSignalGradientWarning",
           "WeakSignalGradientWarning", "warn_once"]


class GradientWarning(UserWarning):
    """Base class: part of a gradient is zero on purpose."""


class NonDifferentiableParameterWarning(GradientWarning):
    """A parameter marked non-differentiable was asked for a gradient; it gets zero."""


class StoppedSignalGradientWarning(GradientWarning):
    """An input signal wants a gradient but its processor's signal gradient is ``"none"``."""


class WeakSignalGradientWarning(GradientWarning):
    """An input signal's gradient is the best available estimate, which the automatic choice's probe
    measured below the score it trusts (the message states the measured cosine and norm ratio)."""


def warn_once(seen: MutableSet[Hashable], key: Hashable, message: str,
              category: type[Warning], stacklevel: int = 3) -> None:
    """Warn with ``message`` unless ``key`` is already in ``seen`` (then stay silent)."""
    if key in seen:
        return
    seen.add(key)
    warnings.warn(message, category, stacklevel=stacklevel)
