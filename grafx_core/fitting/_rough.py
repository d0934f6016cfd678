"""When gauss-newton searches a rough control: its first scan as soon as the fit crawls, and again later.

A rough control (a reverb's size: its loss profile has a cusp-shaped valley a
few hundredths of its range wide at the right value and others elsewhere, see
:mod:`._scan`) holds the loss of a whole fit up, and neither Levenberg-Marquardt
nor the compass search leaves its wrong valley. On the LV2 chain the scan that
finds it took the loss from 0.43-0.64 of the start to 0.07-0.45 on every seed
traced, but only began at render 137-239: it waited for a Levenberg-Marquardt
iteration to fail, and the fit crawls long before one does (2-3 % of the loss
over 80 renders, every step accepted). :class:`RoughWatch` measures the crawl
instead: the first scan is due once the best loss, still above a fraction of
the first one, has fallen by less than a tenth over two Jacobians' worth of
renders, screening included (the screened starts' short runs end there).

The first scan's grid (40 values of the rough control, the others held) can
miss the cusp: where the other controls are still far off, the valley is
narrower than the grid's spacing (LV2 seed 0: the hidden size lay 0.009 of
the range from a grid value whose loss showed no dip, and the fit settled at
0.08 of the start where moving the size alone to its hidden value gives 0.029).
So the control the scan found is searched again once the fit stalls far below
where it was scanned: the same grid shifted by half its spacing each time, so
that two searches together sample the range twice as finely, from the fit's
present point; where that finds no better valley, gauss-newton polishes the
control's own (its right value can be a flat a few millionths of the range
wide, LV2 seed 3). Which control is rough is measured once, by the scan;
nothing here knows an effect's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._valley import StallWatch

__all__ = ["RoughWatch", "shifted_grid"]

_CRAWL_GAIN = 0.1  # a fall of less than this fraction of the loss over the window is a crawl
_AGAIN_MOST = 2


def shifted_grid(count: int, edge: float, shift: float) -> list[float]:
    """``count`` evenly spaced values of ``[edge, 1 - edge]``, moved up by ``shift`` of their spacing, those
    past ``1 - edge`` dropped (``shift`` 0: the values ``torch.linspace(edge, 1 - edge, count)`` gives).

    Args:
        count: how many values (at least 2).
        edge: the distance kept from 0 and 1.
        shift: a fraction of the spacing, ``[0, 1)``.

    Returns:
        The values, increasing (``count - 1`` of them where ``shift`` is above 0).

    Raises:
        ValueError: ``count`` below 2 or ``shift`` outside ``[0, 1)``.
    """
    if count < 2 or not 0.0 <= shift < 1.0:
        raise ValueError(f"shifted_grid: needs count >= 2 and 0 <= shift < 1, got count {count}, shift {shift}")
    spacing = (1 - 2 * edge) / (count - 1)
    values = torch.linspace(edge, 1 - edge, count, dtype=torch.float64) + shift * spacing
    return [v for v in values.tolist() if v <= 1 - edge]


@dataclass
class RoughWatch:
    """When the first scan is due (the fit crawls far above its floor) and when the rough control it found is
    searched again (the fit stalls well below where it was scanned). Noted once per recorded loss.

    Attributes:
        window: renders over which a crawl is measured (two Jacobians' worth on the fit's controls).
        above: the first scan runs only while the best loss is above this fraction of the first loss.
        again_window: renders over which a stall before a second search is measured, and the least
            between two searches (gauss-newton: the search's cost; twice that reached the goal later on
            LV2 seeds 3 and 4, 624 and 857 renders against 541 and 708, and no seed sooner).
    """

    window: float
    above: float
    again_window: float
    control: int | None = None  # the rough control the scan found
    searches: int = 0  # searches of it after the scan
    history: list[tuple[float, float]] = field(default_factory=list)
    _again: StallWatch | None = None

    def note(self, renders: float, best: float) -> None:
        """Record the best loss so far at ``renders``."""
        self.history.append((renders, best))
        if self._again is not None:
            self._again.note(renders, best)

    def crawling(self, renders: float, best: float, first: float) -> bool:
        """Whether the first scan is due: the best loss is above ``above`` of ``first`` and fell by less than
        a tenth over the last ``window`` renders."""
        if best <= self.above * first or renders < self.window:
            return False
        before = [loss for at, loss in self.history if at <= renders - self.window]
        return bool(before) and best > (1 - _CRAWL_GAIN) * before[-1]

    def scanned(self, control: int | None, renders: float) -> None:
        """Note the first scan at ``renders`` and the rough ``control`` it found (``None``: no control's profile
        had several valleys; nothing is searched again)."""
        self.control = control
        if control is not None:
            self._again = StallWatch(window=self.again_window, gain=_CRAWL_GAIN, above=2e-3, below=1.0,
                                     most=_AGAIN_MOST, last=renders)

    def again(self, renders: float, best: float, first: float) -> bool:
        """Whether the rough control is due to be searched again from the fit's present point."""
        return self._again is not None and self._again.stalled(renders, best, first)

    def searched(self, renders: float, best: float, found: bool) -> None:
        """Note a search at ``renders`` from the best loss ``best``, and whether it ``found`` a better point."""
        assert self._again is not None
        self.searches += 1
        self._again.scanned(renders, best, found)

    def shift(self) -> float:
        """The next search's grid shift, in grid spacings: half, then none, alternately."""
        return 0.5 if self.searches % 2 == 0 else 0.0
