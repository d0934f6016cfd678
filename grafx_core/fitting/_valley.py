"""A joint scan of a band's frequency and its node's other controls: gauss-newton's way out of a wrong valley.

An EQ bell fitted at the wrong frequency sits in a valley that no move of one
control leaves: at the wrong frequency the best gain is small, and with a small
gain the frequency hardly changes the output (its loss profile is flat), so
neither Levenberg-Marquardt nor a compass search nor a one-control scan sees
the right valley. Moving the frequency *and* re-solving the node's other
controls (gain, width, shelves) at each trial frequency does: the loss of the
best setting of the others at each frequency (a variable-projection profile)
has its valley at the right frequency. :func:`scan_band` samples that profile
on a coarse grid of the frequency's normalised range, re-solving the others at
each grid point with one damped Gauss-Newton iteration on the same residuals,
started from their declared defaults: the fit parks a bell it cannot place as
narrow and low as it goes, where a step of its gain hardly moves the output at
any other frequency (measured on the pedalboard chain, seed 3: at the hidden
frequency one iteration from the held gain and Q left the loss at 0.0214 of
the start, from the defaults 0.0148, against 0.0205 where it was parked).

A frequency is a control declared in ``"Hz"`` (:attr:`grafx_core.Control.unit`;
black boxes declare it, or their controls' names carry it as ``_hz``), and a
band is such a control with its own node's other continuous controls: nothing
here knows an effect's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..control import Control
from ..unconstrained import to_unit
from ._linear import LinearModel

__all__ = ["Band", "bands", "scan_band", "StallWatch"]

_TRIALS = 2  # damped trial steps of the others at each grid point
_TRIAL_RADIUS = 0.5  # their longest step, normalised units
_START_DAMPING = 1e-2


@dataclass(frozen=True)
class Band:
    """A frequency control and the other continuous controls of its node, as indices of the flat control vector."""

    frequency: int
    others: tuple[int, ...]
    defaults: tuple[float, ...]  # the others' declared defaults, normalised

    def cost(self, grid: int) -> int:
        """The most renders :func:`scan_band` spends on ``grid`` frequencies: per grid point one render, a
        Jacobian of the others and the trial steps."""
        return grid * (1 + len(self.others) + _TRIALS)


def bands(sizes: Sequence[tuple[int, int]], described: Sequence[tuple[str, Control | None]]) -> list[Band]:
    """The bands of a flat control vector.

    Args:
        sizes: per tensor, in the vector's order, ``(nodes, elements)``: a ``[nodes, *shape]`` tensor flattened
            row-major, so that its element ``e`` belongs to node ``e // (elements // nodes)``.
        described: per tensor, ``(node_type, declared control or None)``.

    Returns:
        One :class:`Band` per continuous, differentiable control declared in ``"Hz"`` whose node has other
        continuous, differentiable controls, in the vector's order.
    """
    members: dict[tuple[str, int], list[tuple[int, bool, float]]] = {}
    offset = 0
    for (nodes, elements), (node_type, control) in zip(sizes, described):
        per = elements // max(nodes, 1)
        usable = control is not None and control.differentiable and control.values is None
        for e in range(elements):
            if usable:
                assert control is not None
                members.setdefault((node_type, e // per), []).append(
                    (offset + e, control.unit == "Hz", _default(control, e % per)))
        offset += elements
    found = []
    for group in members.values():
        others = tuple(i for i, hz, _ in group if not hz)
        defaults = tuple(d for _, hz, d in group if not hz)
        found += [Band(i, others, defaults) for i, hz, _ in group if hz and others]
    return sorted(found, key=lambda band: band.frequency)


def _default(control: Control, element: int) -> float:
    """Element ``element``'s declared default in the normalised range (the middle where none is declared)."""
    default = control.default
    if isinstance(default, tuple):
        default = default[element % len(default)]
    if default is None:
        return 0.5
    return float(to_unit(control, torch.tensor(float(default), dtype=torch.float64)))


Evaluate = Callable[[torch.Tensor], Any]  # a normalised control vector -> its rendered point (with ``loss``)
Jacobian = Callable[[torch.Tensor, Any, list[int]], LinearModel]  # (vector, its point, indices) -> model


def scan_band(evaluate: Evaluate, jacobian: Jacobian, x: torch.Tensor, centre: Any, band: Band, grid: int, edge: float,
              enough: Callable[[], bool]) -> tuple[Any, torch.Tensor]:
    """The variable-projection profile of ``band``'s frequency on ``grid`` points, and its best point.

    At each grid value of the frequency (the rest of ``x`` held), the band's other controls, set to their
    declared defaults, take one damped Gauss-Newton iteration (a finite-difference Jacobian of theirs, then
    up to two trial steps at growing damping) on the residuals of the point itself. Grid values within half
    a spacing of the present one are skipped: ``centre`` stands for that valley.

    Args:
        evaluate: renders the controls at a normalised vector ``[controls]``; returns a point with ``loss``.
        jacobian: ``(vector, its point, indices)`` -> the residuals' linear model in those controls.
        x: ``[controls]``, normalised, float64: the present point.
        centre: its rendered point.
        band: the frequency and its others.
        grid: how many frequencies, evenly spaced over the normalised range.
        edge: normalised values are kept this far inside ``[0, 1]``.
        enough: whether the render budget is spent (the scan stops there).

    Returns:
        The best point seen (``centre`` if none beat it) and its vector.
    """
    best, where = centre, x
    spacing = (1 - 2 * edge) / max(grid - 1, 1)
    others = list(band.others)
    for value in torch.linspace(edge, 1 - edge, grid, dtype=torch.float64).tolist():
        if abs(value - float(x[band.frequency])) < spacing / 2:
            continue
        if enough():
            break
        y = x.clone()
        y[band.frequency] = value
        y[others] = torch.tensor(band.defaults, dtype=y.dtype)
        point = evaluate(y)
        point, y = _resolve(evaluate, jacobian, y, point, others, edge, enough)
        if point.loss < best.loss:
            best, where = point, y
    return best, where


def _resolve(evaluate: Evaluate, jacobian: Jacobian, y: torch.Tensor, point: Any, others: list[int], edge: float,
             enough: Callable[[], bool]) -> tuple[Any, torch.Tensor]:
    """One damped Gauss-Newton iteration of ``others`` from ``y``: the better of ``point`` and the first trial
    that beats it."""
    if enough():
        return point, y
    point, y, _ = damped_trials(evaluate, jacobian(y, point, others), y, point, others, _START_DAMPING, 10.0,
                                _TRIALS, _TRIAL_RADIUS, edge, enough)
    return point, y


def damped_trials(evaluate: Evaluate, model: LinearModel, y: torch.Tensor, point: Any, indices: list[int],
                  damping: float, growth: float, trials: int, radius: float, edge: float,
                  enough: Callable[[], bool]) -> tuple[Any, torch.Tensor, float | None]:
    """Up to ``trials`` damped Gauss-Newton steps of ``indices`` from ``y`` (at ``point``), each at most
    ``radius`` long (normalised units), the damping multiplied by ``growth`` after each that fails.

    Returns:
        The first trial that beats ``point``, its vector and the damping that took it; or ``point``, ``y`` and
        ``None`` where none did or the budget was spent (``enough``).
    """
    for _ in range(trials):
        if enough():
            break
        delta = model.step(damping)
        length = float(delta.norm())
        if length > radius:
            delta = delta * (radius / length)
        z = y.clone()
        z[indices] = (y[indices] + delta.to(y.dtype)).clamp(edge, 1 - edge)
        trial = evaluate(z)
        if trial.loss < point.loss:
            return trial, z, damping
        damping *= growth
    return point, y, None


@dataclass
class StallWatch:
    """When a fit has stalled between its floor and its gross errors: the best loss fell by less than ``gain``
    over ``window`` renders while between ``above`` and ``below`` of the first loss. Noted once per iteration
    of the fit. A scan that found nothing is not repeated until the loss has halved.

    Attributes:
        window: renders over which the progress is measured.
        gain: the least fall, as a fraction of the loss ``window`` renders ago, that counts as progress.
        above: below this fraction of the first loss the fit is near its floor, where no valley is left to
            leave.
        below: above this fraction, gross errors hold the loss up (gauss-newton's one-control scan is for
            those).
        most: how many scans a fit may take.
    """

    window: float
    gain: float = 0.1
    above: float = 2e-3
    below: float = 0.3
    most: int = 3
    scans: int = 0
    last: float = 0.0  # renders at the last scan
    barren: float = float("inf")  # the best loss at the last scan that found nothing: not again until half
    history: list[tuple[float, float]] = field(default_factory=list)  # (renders, best loss so far)

    def note(self, renders: float, best: float) -> None:
        """Record the best loss so far at ``renders``."""
        self.history.append((renders, best))

    def stalled(self, renders: float, best: float, first: float) -> bool:
        """Whether a scan is due now."""
        if (self.scans >= self.most or not self.above * first < best < self.below * first
                or renders - self.last < self.window or best > self.barren / 2):
            return False
        before = [loss for at, loss in self.history if at <= renders - self.window]
        return bool(before) and best > (1 - self.gain) * before[-1]

    def scanned(self, renders: float, best: float, found: bool) -> None:
        """Note a scan at ``renders`` from the best loss ``best``, and whether it ``found`` a better point."""
        self.scans, self.last = self.scans + 1, renders
        if not found:
            self.barren = best
