"""Warnings about gradients that are knowingly not provided."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, MutableSet

__all__ = ["GradientWarning", "NonDifferentiableParameterWarning", "StoppedSignalGradientWarning",
           "WeakSignalGradientWarning", "RoughSignalGradientWarning", "warn_once"]


class GradientWarning(UserWarning):
    """Base class: part of a gradient is zero on purpose."""


class NonDifferentiableParameterWarning(GradientWarning):
    """A parameter marked non-differentiable was asked for a gradient; it gets zero."""


class StoppedSignalGradientWarning(GradientWarning):
    """An input signal wants a gradient but its processor's signal gradient is ``"none"``."""


class WeakSignalGradientWarning(GradientWarning):
    """An input signal's gradient is the best available estimate, which the automatic choice's probe
    measured below the score it trusts (the message states the measured cosine and norm ratio)."""


class RoughSignalGradientWarning(WeakSignalGradientWarning):
    """An input signal's gradient is passed on through an effect whose response the automatic choice's probe
    found not smooth at the scale of a fit's steps: its directional derivatives at a tiny step (the tangent)
    and at a fit's step disagree. The message states both, and the choice's cosine and norm ratio against each."""


def warn_once(seen: MutableSet[Hashable], key: Hashable, message: str,
              category: type[Warning], stacklevel: int = 3) -> None:
    """Warn with ``message`` unless ``key`` is already in ``seen`` (then stay silent)."""
    if key in seen:
        return
    seen.add(key)
    warnings.warn(message, category, stacklevel=stacklevel)
