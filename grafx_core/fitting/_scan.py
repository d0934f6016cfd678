"""Which control's loss profile has more than one valley: the measurement behind gauss-newton's scan.

A control such as a reverb's size moves reflections in time: the loss along it
has a narrow valley at the right value and others elsewhere, so neither
Levenberg-Marquardt nor a compass search started in another valley reaches it.
Such a control is told apart by measurement, not by its name or declared type:
its loss profile over its range, sampled with the other controls held, has
several local minima.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["local_minima", "roughest"]


def local_minima(values: Sequence[float]) -> int:
    """How many local minima a profile sampled at increasing positions has.

    Args:
        values: the loss at each position, in the positions' order.

    Returns:
        The count of samples lower than both neighbours (an end needs only its one neighbour).
    """
    count = 0
    for i, value in enumerate(values):
        left = values[i - 1] if i > 0 else float("inf")
        right = values[i + 1] if i + 1 < len(values) else float("inf")
        count += int(value < left and value < right)
    return count


def roughest(profiles: Sequence[Sequence[tuple[float, float]]]) -> int | None:
    """The control whose profile has several valleys and, of those, the widest range of loss.

    Args:
        profiles: per control, ``(position, loss)`` pairs in any order.

    Returns:
        The control's index, or ``None`` where every profile has a single valley.
    """
    ranked = []
    for index, profile in enumerate(profiles):
        values = [loss for _, loss in sorted(profile)]
        if local_minima(values) >= 2:
            ranked.append((max(values) - min(values), -index))
    return -max(ranked)[1] if ranked else None
