"""A joint search of one node's controls: gauss-newton's way out of a valley that several of them hold together.

A compressor fitted with a low threshold, a low ratio and make-up gain to
match sits in a valley that no move of one control leaves, nor a band scan
(its controls are not declared in Hz), and Levenberg-Marquardt, the compass
search and the scan of single controls' profiles all start from inside it.
Measured on the LV2 chain (seed 4, stalled at 0.082 of the start loss after
1,024 renders): a scrambled-Sobol sample of the compressor's five controls,
the other nodes held, had its best points at 0.22-0.25 of the start (worse
than the fit), and short Levenberg-Marquardt runs of those five controls from
there (six iterations each) ended at 0.035-0.056 (the goal on that chain is
0.047); the same from the EQ's or the reverb's samples ended at 0.086-0.46.

:func:`search_nodes` does that for every node with two or more continuous
controls: samples each node's controls over their whole normalised range with
the rest held, pools the samples and runs a few Levenberg-Marquardt iterations
of its own node's controls from each of the best few. The node is chosen by
measurement, not by name: the node whose resets cost least is the one the fit
has pinned down least (on the LV2 chain the compressor's samples' best was
0.22 against 0.47 and 0.48 for the EQ's and the reverb's; on the pedalboard
chain's seed 4 0.032 against 0.058 and 0.22). :class:`NodeWatch` says when it
is due: only once the fit has stalled for longer than the search costs and a
band scan (:mod:`._valley`) has had its turn, so fits that still progress
never pay for it.

What it does not find: a valley narrower than its samples' spacing. The
pedalboard chain's seed 4 stalls at 0.017 with its compressor's ratio at the
top of its range; the hidden attack, release and threshold are a sliver of the
four controls' space (0.025 of the threshold's range either side raises the
loss from 0.0013 to 0.03-0.07; with a longer attack the compressor never
engages), and none of 512 Sobol points of those controls, nor CMA-ES or a
(1+1) evolution strategy with 300 renders, nor Nelder-Mead, came below the
fit's loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..control import Control
from ._valley import Evaluate, Jacobian, StallWatch, damped_trials

__all__ = ["node_groups", "search_nodes", "search_cost", "NodeWatch"]

_SAMPLES = 24  # Sobol points per node
_KEEP = 3  # pooled samples refined
_ITERATIONS = 4  # Levenberg-Marquardt iterations of a refinement
_TRIALS = 3  # damped trial steps per iteration
_RADIUS = 0.5  # the longest trial step, normalised units
_START_DAMPING = 1e-2


def node_groups(sizes: Sequence[tuple[int, int]], described: Sequence[tuple[str, Control | None]]
                ) -> list[tuple[int, ...]]:
    """Each node's continuous, differentiable controls, as indices of the flat control vector.

    Args:
        sizes: per tensor, in the vector's order, ``(nodes, elements)``: a ``[nodes, *shape]`` tensor flattened
            row-major, so that its element ``e`` belongs to node ``e // (elements // nodes)``.
        described: per tensor, ``(node_type, declared control or None)``.

    Returns:
        The groups of two or more controls, ordered by their first index.
    """
    members: dict[tuple[str, int], list[int]] = {}
    offset = 0
    for (nodes, elements), (node_type, control) in zip(sizes, described):
        per = elements // max(nodes, 1)
        if control is not None and control.differentiable and control.values is None:
            for e in range(elements):
                members.setdefault((node_type, e // per), []).append(offset + e)
        offset += elements
    return sorted((tuple(group) for group in members.values() if len(group) >= 2), key=lambda group: group[0])


def search_cost(groups: Sequence[tuple[int, ...]]) -> int:
    """The most renders :func:`search_nodes` spends on ``groups``."""
    largest = max((len(group) for group in groups), default=0)
    return len(groups) * _SAMPLES + _KEEP * _ITERATIONS * (largest + _TRIALS)


def search_nodes(evaluate: Evaluate, jacobian: Jacobian, x: torch.Tensor, centre: object,
                 groups: Sequence[tuple[int, ...]], edge: float, enough: Callable[[], bool],
                 seed: int = 0) -> tuple[object, torch.Tensor]:
    """Sample every group's controls with the rest of ``x`` held, and refine the best few samples.

    Each group gets ``_SAMPLES`` scrambled-Sobol points over its normalised range; the ``_KEEP`` lowest of
    all of them (whichever groups they came from) each take up to ``_ITERATIONS`` damped Levenberg-Marquardt
    iterations of their own group's controls (a finite-difference Jacobian of those, then up to ``_TRIALS``
    trial steps at growing damping; a refinement ends at the first iteration whose trials all fail).

    Args:
        evaluate: renders the controls at a normalised vector ``[controls]``; returns a point with ``loss``.
        jacobian: ``(vector, its point, indices)`` -> the residuals' linear model in those controls.
        x: ``[controls]``, normalised, float64: the present point.
        centre: its rendered point.
        groups: the controls of each node (see :func:`node_groups`).
        edge: normalised values are kept this far inside ``[0, 1]``.
        enough: whether the render budget is spent (the search stops there).
        seed: seeds the Sobol points.

    Returns:
        The best point seen (``centre`` if none beat it) and its vector.
    """
    pool: list[tuple[float, int, tuple[int, ...], torch.Tensor, object]] = []
    for number, group in enumerate(groups):
        engine = torch.quasirandom.SobolEngine(len(group), scramble=True, seed=seed + number)
        for values in engine.draw(_SAMPLES, dtype=torch.float64).clamp(edge, 1 - edge):
            if enough():
                break
            y = x.clone()
            y[list(group)] = values
            point = evaluate(y)
            pool.append((point.loss, len(pool), group, y, point))  # type: ignore[attr-defined]
    pool.sort(key=lambda entry: entry[:2])
    best, where = centre, x
    for _, _, group, y, point in pool[:_KEEP]:
        point, y = _descend(evaluate, jacobian, y, point, list(group), edge, enough)
        if point.loss < best.loss:  # type: ignore[attr-defined]
            best, where = point, y
    return best, where


def _descend(evaluate: Evaluate, jacobian: Jacobian, y: torch.Tensor, point: object, indices: list[int],
             edge: float, enough: Callable[[], bool]) -> tuple[object, torch.Tensor]:
    """Up to ``_ITERATIONS`` damped Gauss-Newton iterations of ``indices`` from ``y`` (at ``point``)."""
    damping = _START_DAMPING
    for _ in range(_ITERATIONS):
        if enough():
            break
        point, y, took = damped_trials(evaluate, jacobian(y, point, indices), y, point, indices, damping, 4.0,
                                       _TRIALS, _RADIUS, edge, enough)
        if took is None:
            break
        damping = max(took / 3, 1e-7)
    return point, y


@dataclass
class NodeWatch:
    """When the node search is due: a :class:`StallWatch` over the search's cost in renders, that waits a whole
    window after any band scan (the cheaper way out of a wrong valley goes first).

    Attributes:
        cost: the search's renders (:func:`search_cost`).
    """

    cost: int

    def __post_init__(self) -> None:
        self.watch = StallWatch(window=float(self.cost), most=2)

    def due(self, renders: float, best: float, first: float, left: float, band_scanned_at: float) -> bool:
        """Note the best loss so far at ``renders`` and say whether a search is due, with ``left`` renders
        of the budget left and the last band scan at ``band_scanned_at`` renders (``-inf``: none)."""
        self.watch.note(renders, best)
        if renders - band_scanned_at < self.watch.window or self.cost > left / 2:
            return False
        return self.watch.stalled(renders, best, first)

    def searched(self, renders: float, best: float, found: bool) -> None:
        """Note a search at ``renders`` from the best loss ``best``, and whether it ``found`` a better point."""
        self.watch.scanned(renders, best, found)
