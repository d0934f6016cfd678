"""Levenberg-Marquardt on black-box controls, a scan and a compass search where it stalls, Adam on the rest.

Finite differences pay ``P`` renders for the derivative of the mix with
respect to ``P`` black-box controls; Adam keeps only the gradient (one
vector-Jacobian product) of it. Here the whole Jacobian ``J`` of the loss's
residuals (``loss.residuals(mix)``, a vector whose sum of squares stands in for
the loss) is kept, and one step solves the damped Gauss-Newton system

    (JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr

in the controls' normalised space (``[0, 1]``, each control's range), projected
back into it. A step is accepted only if the real loss falls; otherwise λ
grows and the trust radius (the longest step, in normalised units) shrinks.
Every trial render also corrects ``J`` (a Broyden rank-one update), so an
iteration whose step is accepted costs one render, not ``P + 1``: the
finite-difference Jacobian is only rendered again when a step taken with an
updated one fails. An accepted step is doubled while that helps, and the next
step starts as many Gauss-Newton steps long as the parabola through the last
line's losses says was best (the *stretch*, back to one when a stretched step
fails): the reweighted residuals' model makes every step short by a similar
factor, so a curved valley's iterations cost two renders instead of three.

Some controls have no useful derivative at the scale of a step: a reverb's
size that moves reflections by whole samples (the loss is flat between them
and has a cusp at the right value), a compressor threshold above the signal.
Once Levenberg-Marquardt has failed a few iterations in a row, a compass
search takes over: each control in turn is tried a step up and a step down,
its step doubling where that lowers the loss and halving where it does not
(comparisons only, so a cusp is found to within the float resolution of the
control). After a sweep that helped, Levenberg-Marquardt is tried again from
the new point with a fresh Jacobian. Analytic parameters, whose gradients
autograd gives exactly, take Adam steps in between (with the black boxes'
controls frozen, so their estimators render nothing for them).

A control whose loss has valleys across its range (a reverb's size: the right
value's valley is a few hundredths of the range wide) keeps both searches in
the wrong one. The first time Levenberg-Marquardt fails or the fit crawls (a
tenth off the loss in two Jacobians' worth of renders, see :mod:`._rough`)
while the loss is still above 0.3 of the first, every control's loss profile is sampled
over its range with the others held (a few renders each); the control whose
profile has several valleys and the widest range of loss (measured, not
declared: see :mod:`._scan`) is then searched on a fine grid, and from the
grid's best point by comparisons of that control alone down to a step of
1e-5 (its valley can be a cusp a few millionths of the range wide, which
finite differences do not see; that point is kept where it lowers the loss
by a tenth or more, as a cusp does and a wrong valley's smooth bottom does
not), and Levenberg-Marquardt starts again from there, with that control left
out of its Jacobian (its steps would drag it off a cusp they do not see; the
compass search still moves it). Once the fit stalls, that control is searched
again from the fit's point on the grid shifted by half its spacing, at most twice;
where that grid finds no better valley, the control's own is searched by
comparisons down to 1e-7 (a plug-in's quantised control can have a right value
a few millionths of its range wide).

An EQ bell fitted at the wrong frequency is a valley of another kind: no one
control leaves it (:mod:`._valley`). Once the best loss, between 0.002 and
0.3 of the first, has gone twice a band scan's cost in renders without
falling by a tenth, each band (a control declared in Hz with its node's other
continuous controls) is scanned: 12 frequencies, the others re-solved at each
from their defaults; Levenberg-Marquardt starts again from the best point if
it beat the fit's.

A compressor's threshold, ratio and make-up gain can hold each other in a
valley of that kind with no control declared in Hz (:mod:`._node_search`).
Once a stall has outlasted the band scans by the node search's cost in
renders, every node's controls are sampled jointly with the rest held, and the
best few samples of all nodes are refined by Levenberg-Marquardt of their own
node's controls; Levenberg-Marquardt starts again from the best point if it
beat the fit's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import NON_FINITE_HINT, NonFiniteLossError
from ._linear import LinearModel
from ._run import Loss, Render, Run
from ._rough import RoughWatch, shifted_grid
from ._node_search import NodeWatch, node_groups, search_cost, search_nodes
from ._scan import roughest
from ._valley import StallWatch, bands, scan_band

__all__ = ["gauss_newton", "damped_step", "broyden_update"]

_MAX_TRIALS = 4
_START_DAMPING = 1e-2  # Levenberg-Marquardt's damping and trust radius (normalised units) whenever it starts afresh
_START_RADIUS = 0.25
_MAX_RADIUS = 1.0  # normalised units: the whole range
_MIN_RADIUS = 1e-4
_STALLED = 2  # failed Levenberg-Marquardt iterations in a row after which the compass search sweeps
_EDGE = 1e-4  # normalised values are kept this far inside [0, 1]: within the bounds' margin, so bounds are reached
_COMPASS_START = 0.05  # a control's first compass step, in normalised units
_COMPASS_MIN = 1e-6
_MAX_STRETCH = 64.0  # the longest a step starts, in Gauss-Newton steps (see _extrapolate)
_MIN_GAIN = 1e-3  # an accepted step lowering the loss by less than this fraction still counts as a stall
_KEEP = 3  # screened starts that get a short Levenberg-Marquardt run
_SLICE = 2  # that run's renders, in Jacobians' worth (P + 1 renders each)
_SCREEN_SHARE = 0.5  # the most of a render budget the screening may take
_SCAN_COARSE = 6  # samples of every control's profile in the scan
_SCAN_FINE = 40  # samples of the roughest control's profile (its valley is about 0.04 wide)
_GRID_STEP = (1 - 2 * _EDGE) / (_SCAN_FINE - 1)
_REFINE_MIN = 1e-5  # normalised units: where the search of that control's valley after the grid stops
_POLISH_START, _POLISH_MIN = 1e-4, 1e-7  # the search of the rough control's own valley when no other beat it
_REFINE_COST = 30  # about what that search costs, in renders (25-30 measured on LV2)
_CUSP = 0.9  # that search's point is kept only where it lowers the grid's best loss below this fraction of it
# The scan runs for a stall above this fraction of the first loss: a wrong valley. On the bench's pedalboard
# chain Levenberg-Marquardt fails once at 0.21 of it on its way to the hidden settings (seed 1).
_SCAN_ABOVE = 0.3
_BAND_GRID = 12  # frequencies of a band's joint scan (see ._valley), evenly spaced over its normalised range


def damped_step(jacobian: torch.Tensor, residuals: torch.Tensor, damping: float,
                floor: float = 1e-12) -> torch.Tensor:
    """The Levenberg-Marquardt step ``δ`` solving ``(JᵀJ + λ diag(JᵀJ)) δ = -Jᵀr``.

    ``JᵀJ`` is formed in float64 from ``J`` transposed into a contiguous ``[controls, residuals]`` copy
    (one short, wide product). :func:`gauss_newton` keeps its Jacobian in that layout instead, with ``JᵀJ``
    and ``Jᵀr`` cached across Broyden updates (the private ``LinearModel``).

    Args:
        jacobian: ``[residuals, controls]``, the derivative of ``residuals`` with respect to the controls.
        residuals: ``[residuals]`` at the current point.
        damping: ``λ >= 0``; 0 gives the Gauss-Newton step.
        floor: the least a control's damping scales with, as a fraction of ``diag(JᵀJ)``'s largest entry
            (a control the residuals hardly hear must not take a huge step on its say-so).

    Returns:
        ``[controls]``, in float64.
    """
    return LinearModel(jacobian.T, residuals).step(damping, floor)


def broyden_update(jacobian: torch.Tensor, step: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """Broyden's rank-one correction: the Jacobian nearest ``jacobian`` that maps ``step`` to ``change``.

    Args:
        jacobian: ``[residuals, controls]``.
        step: ``[controls]``, the move just rendered.
        change: ``[residuals]``, how the residuals changed over it.

    Returns:
        ``J + (Δr - J δ) δᵀ / (δᵀ δ)``, ``[residuals, controls]`` (``jacobian`` unchanged for a zero step).
    """
    length = float(step.double().square().sum())
    if length == 0.0:
        return jacobian
    moved = step.to(jacobian.dtype)
    miss = change.to(jacobian.dtype) - jacobian @ moved
    return torch.addr(jacobian, miss, moved, alpha=1.0 / length)


class _Controls:
    """The black-box tensors of a latent as one flat vector of normalised values in ``[0, 1]``.

    Steps are taken in the normalised space, not the raw one the latent holds: a long raw step can
    park a control deep in the sigmoid's flat tail, where a finite difference no longer moves it
    (float32 controls) and it never comes back.
    """

    def __init__(self, tensors: list[torch.nn.Parameter]) -> None:
        self.tensors = tensors
        self.count = sum(t.numel() for t in tensors)

    def get(self) -> torch.Tensor:
        return torch.sigmoid(torch.cat([t.detach().reshape(-1) for t in self.tensors]).double())

    def set(self, vector: torch.Tensor) -> None:
        raw = torch.logit(vector.clamp(_EDGE, 1 - _EDGE))
        offset = 0
        with torch.no_grad():
            for t in self.tensors:
                t.copy_(raw[offset:offset + t.numel()].reshape(t.shape).to(t.dtype))
                offset += t.numel()


@dataclass
class _Point:
    """A rendered point: its mix, loss and residuals weighted at itself."""

    mix: torch.Tensor
    loss: float
    residuals: torch.Tensor


@dataclass
class _State:
    """What the iterations carry: the damping, trust radius, Jacobian (weighted at the centre) and compass steps."""

    damping: float
    radius: float
    jacobian: LinearModel | None  # weighted at the centre, its residuals the centre's
    fresh: bool  # the Jacobian is a finite-difference one, not a Broyden-updated one
    compass: torch.Tensor
    stalled: int = 0
    sweeps: int = 1  # compass sweeps that must help before Levenberg-Marquardt is tried again
    backoff: int = 1  # doubles each time Levenberg-Marquardt fails straight after the compass helped
    scanned: bool = False
    stretch: float = 1.0  # the next step's length in Gauss-Newton steps, learned by the last extrapolation
    held: int | None = None  # a control left at a cusp that finite differences do not see: no Jacobian column
    aged: bool = False  # measure the Jacobian again before the next step: an updated one's step barely helped

    def restart(self) -> None:
        """Levenberg-Marquardt starts afresh at a point a search moved to: a new Jacobian, damping and radius."""
        self.jacobian, self.stalled = None, 0
        self.damping, self.radius = _START_DAMPING, _START_RADIUS


def _fresh_state(count: int) -> _State:
    return _State(_START_DAMPING, _START_RADIUS, None, False, torch.full((count,), _COMPASS_START, dtype=torch.float64))


def gauss_newton(run: Run, render: Render, loss: Loss, learning_rate: float, options: Mapping[str, Any],
                 seed: int = 0) -> None:
    """Run the hybrid (see the module's description) until ``run`` is done.

    Args:
        options: ``fd_step`` (finite-difference step, normalised units, default 0.005), ``adam_steps`` (Adam
            steps of the analytic parameters per iteration, default the control count), ``starts`` (points
            screened before the fit, the given one included; default ``2P + 1``; 1: none), ``scan`` (whether
            a stall far above the fit scans the controls' profiles, default true), ``stretch`` (whether a step
            starts as long as the last extrapolation found best, in Gauss-Newton steps; default true), ``bands``
            (whether a stalled fit scans each band's frequency jointly with its node's other controls, default
            true), ``rough`` (whether the scan starts as soon as the fit crawls, the rough control it found is searched
            again once the fit stalls, and a cusp found is left out of the Jacobian; default true; see
            :mod:`._rough`), ``nodes`` (whether a stall that outlasts the band scans searches each node's controls
            jointly, see :mod:`._node_search`; default true), ``remeasure`` (whether a Broyden-updated Jacobian
            whose accepted step barely helped is measured again before the next step, instead of counting towards
            the stall; default false: on the bench's pedalboard chain it saved renders to the goal at the default
            finite-difference step and cost as many at steps 2 % either side, see
            ``bench/results/gradient_free/gradfree8b/``).
        seed: seeds the screened starts.

    Raises:
        ValueError: the latent parameters hold no black-box controls, or ``starts`` is below 1.
    """
    parameters, flags = list(run.latent.parameters()), run.latent.black_box_flags()
    # Parameters frozen by LatentParameters.freeze (no gradient) stay where they are.
    controls = _Controls([p for p, black in zip(parameters, flags) if black and p.requires_grad])
    analytic = [p for p, black in zip(parameters, flags) if not black and p.requires_grad]
    if not controls.count:
        raise ValueError("--optimizer gauss-newton steps black-box controls, and this graph has none: use adam")
    fd_step = float(options.get("fd_step", 0.005))
    adam_steps = int(options.get("adam_steps", controls.count)) if analytic else 0
    adam = torch.optim.Adam(analytic, lr=learning_rate) if analytic else None
    # Without a render budget the screening's renders would be taken from the steps: only when asked for.
    starts = int(options.get("starts", 2 * controls.count + 1 if run.budget.limit is not None else 1))
    if starts < 1:
        raise ValueError(f"gauss-newton: starts must be at least 1 (the given point), got {starts}")
    scan = _switch(options, "scan", True)
    stretch = _switch(options, "stretch", True)
    remeasure = _switch(options, "remeasure", False)
    state = _fresh_state(controls.count)
    valleys = _Valleys(run, controls) if _switch(options, "bands", True) else None
    rough = RoughWatch(2 * (controls.count + 1), _SCAN_ABOVE, _SCAN_FINE + _REFINE_COST) \
        if scan and _switch(options, "rough", True) else None

    def crawling() -> bool:  # the first scan is due before any Levenberg-Marquardt failure (see ._rough)
        return rough is not None and not state.scanned and _scan_affordable(run, controls.count) \
            and rough.crawling(run.budget.renders, run.best_loss, run.losses[0])

    nodes = _Nodes(run, controls, seed) if _switch(options, "nodes", True) else None
    centre: _Point | None = None  # while valid
    if starts > 1 and _affordable(run, starts, controls.count):
        centre, state = _screen(run, render, loss, controls, starts, fd_step, seed, stretch, rough)
    while not run.done():
        if adam is not None and adam_steps:
            _adam_steps(run, render, loss, adam, controls, adam_steps, learning_rate)
            centre, state.jacobian = None, None
        if centre is None:
            if run.budget.exhausted():  # the Adam steps spent the last renders
                break
            centre = _render(run, render, loss)
        run.record(centre.loss, run.vector(), state.damping)
        if rough is not None:
            rough.note(run.budget.renders, run.best_loss)
        if run.done():
            break
        if valleys is not None and valleys.due(run):
            centre = valleys.scan(run, render, loss, controls, centre, state, fd_step)
        elif scan and (state.stalled or crawling()) and not state.scanned and centre.loss > _SCAN_ABOVE * run.losses[0] \
                and _scan_affordable(run, controls.count):
            centre, found = _scan(run, render, loss, controls, centre, state, hold=rough is not None,
                                  crawled=not state.stalled)
            if rough is not None:
                rough.scanned(found, run.budget.renders)
        elif rough is not None and rough.again(run.budget.renders, run.best_loss, run.losses[0]) \
                and _SCAN_FINE + _REFINE_COST <= _left(run) / 2:
            centre = _search_again(run, render, loss, controls, centre, state, rough)
        elif nodes is not None and nodes.due(run, valleys):
            centre = nodes.search(run, render, loss, controls, centre, state, fd_step)
        elif state.stalled >= _STALLED or _left(run) < controls.count + 1:
            centre = _compass(run, render, loss, controls, centre, state)
        else:
            centre = _levenberg_marquardt(run, render, loss, controls, centre, state, fd_step, stretch, remeasure)
    if centre is not None and centre.loss < run.best_loss:  # the last centre, found after the last record
        run.record(centre.loss, run.vector(), state.damping)


def _switch(options: Mapping[str, Any], key: str, default: bool) -> bool:
    """Option ``key`` as a switch: true/false (or 1/0, as a command line's numbers parse). A string such as
    ``"false"`` is refused, because ``bool("false")`` is true and the option would silently stay on."""
    value = options.get(key, default)
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"gauss-newton: option {key!r} must be true or false, got {value!r}")


def _affordable(run: Run, starts: int, count: int) -> bool:
    """Whether screening ``starts`` points and their short runs fits in the render budget's allowed share."""
    cost = starts + _KEEP * _SLICE * (count + 1)
    return run.budget.limit is None or cost <= _SCREEN_SHARE * run.budget.limit


def _scan_affordable(run: Run, count: int) -> bool:
    return count * _SCAN_COARSE + _SCAN_FINE <= _left(run) / 2


def _screen(run: Run, render: Render, loss: Loss, controls: _Controls, starts: int, fd_step: float,
            seed: int, stretch: bool = True, rough: RoughWatch | None = None) -> tuple[_Point, _State]:
    """Render the given point and ``starts - 1`` scrambled-Sobol points of the controls once each, run
    Levenberg-Marquardt briefly from the best few, and return the best of those runs' centres and its state
    (the controls are left there). Every recorded loss is noted in ``rough``: a crawl that began in the
    screening's runs makes the scan due as soon as the fit's own iterations start."""
    given = controls.get()
    engine = torch.quasirandom.SobolEngine(controls.count, scramble=True, seed=seed)
    candidates = [given, *engine.draw(starts - 1, dtype=torch.float64).clamp(_EDGE, 1 - _EDGE)]
    scored: list[tuple[float, int, torch.Tensor, _Point]] = []
    for index, x in enumerate(candidates):
        if run.done():
            break
        controls.set(x)
        point = _render(run, render, loss)
        run.record(point.loss, run.vector())
        if rough is not None:
            rough.note(run.budget.renders, run.best_loss)
        scored.append((point.loss, index, controls.get(), point))
    scored.sort(key=lambda entry: (entry[0], entry[1]))
    ends: list[tuple[_Point, _State, torch.Tensor]] = []
    for _, _, x, point in scored[:_KEEP]:
        controls.set(x)
        state, centre = _fresh_state(controls.count), point
        until = run.budget.renders + _SLICE * (controls.count + 1)
        while not run.done() and run.budget.renders < until:
            if state.stalled >= _STALLED or _left(run) < controls.count + 1:
                centre = _compass(run, render, loss, controls, centre, state)
            else:
                centre = _levenberg_marquardt(run, render, loss, controls, centre, state, fd_step, stretch)
            run.record(centre.loss, run.vector(), state.damping)
            if rough is not None:
                rough.note(run.budget.renders, run.best_loss)
        ends.append((centre, state, controls.get()))
    if not ends:  # the budget or the steps ran out while screening
        controls.set(given)
        return _render(run, render, loss), _fresh_state(controls.count)
    centre, state, x = min(ends, key=lambda end: end[0].loss)
    controls.set(x)
    return centre, state


def _left(run: Run) -> float:
    return float("inf") if run.budget.limit is None else run.budget.limit - run.budget.renders


def _levenberg_marquardt(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
                         fd_step: float, stretch: bool = True, remeasure: bool = False) -> _Point:
    """One iteration: up to a few trial steps from ``centre``; returns the new centre (``centre`` if none helped).
    With ``stretch`` the step starts as long as the last extrapolation found best (see :func:`_extrapolate`); with
    ``remeasure`` a Broyden-updated Jacobian whose accepted step barely helped is measured again before the next."""
    x = controls.get()
    if state.jacobian is None:
        state.jacobian, state.fresh = _jacobian(run, render, loss, controls, x, centre, fd_step, held=state.held), True
        state.stretch = 1.0  # a fresh start: the last point's stretch is not this one's
    elif state.aged and _left(run) >= controls.count + 1:
        state.jacobian, state.fresh = _jacobian(run, render, loss, controls, x, centre, fd_step, held=state.held), True
    state.aged = False
    for _ in range(_MAX_TRIALS):
        if run.budget.exhausted():
            break
        measured = state.fresh  # _move clears it once a step is taken
        newton = state.jacobian.step(state.damping)
        delta = state.stretch * newton
        length = float(delta.norm())
        if length > state.radius:
            delta = delta * (state.radius / length)
        trial = _move(run, render, loss, controls, centre, state, x, x + delta)
        if trial.loss < centre.loss:
            start = centre
            state.damping = max(state.damping / 3, 1e-7)
            state.radius = min(max(state.radius, 2 * min(length, state.radius)), _MAX_RADIUS)
            trial, learned = _extrapolate(run, render, loss, controls, start, trial, state, x, delta, newton)
            state.stretch = learned if stretch else 1.0
            # A step that barely helps (a 0.1 % fall) counts towards the stall, as a failed one does, unless an
            # updated Jacobian took it and ``remeasure`` is on, or it would start the compass search: that
            # Jacobian is measured again first, as after a failed step (on the bench's pedalboard chain such steps
            # had sent the fit into compass sweeps of 80-230 renders that bought 1-3 %, where a fresh Jacobian's
            # next steps halved the loss; measured only before the compass, the chain's seeds 0-2 reached the goal
            # or floor at 517 / 354 / 379 renders instead of 877 / 432 / 438, and no run at steps 2 % either side
            # was lost, where measuring after every such step lost two).
            helped = trial.loss < start.loss * (1 - _MIN_GAIN)
            state.aged = (remeasure or state.stalled + 1 >= _STALLED) and not helped and not measured
            state.stalled = 0 if helped or state.aged else state.stalled + 1
            state.backoff = 1 if not state.stalled else state.backoff
            return trial
        controls.set(x)
        if state.stretch > 1.0:
            # The stretched step overshot: the plain one before doubting the Jacobian or damping more.
            state.stretch = 1.0
            continue
        if not state.fresh and _left(run) >= controls.count + 1:
            # An updated Jacobian misled the step: measure it again before damping more.
            state.jacobian, state.fresh = _jacobian(run, render, loss, controls, x, centre, fd_step,
                                                    held=state.held), True
            continue
        state.damping, state.radius = state.damping * 4, max(state.radius / 2, _MIN_RADIUS)
    controls.set(x)
    if state.stalled == _STALLED - 1:  # tried again after the compass helped, and failed: wait longer next time
        state.backoff = min(2 * state.backoff, 16)
    state.stalled += 1
    return centre


def _move(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
          x: torch.Tensor, target: torch.Tensor) -> _Point:
    """Render the controls at ``target`` (projected into range) from ``centre`` at ``x``, correct the Jacobian
    with what the render showed, and, if the loss fell, leave the controls there and the Jacobian weighted at
    the new point; otherwise the controls are left at ``target`` for the caller to restore."""
    moved = target.clamp(_EDGE, 1 - _EDGE)  # a bound-constrained step: projected into range
    controls.set(moved)
    trial = _render(run, render, loss)
    seen = loss.residuals(trial.mix, centre.mix).detach()  # type: ignore[attr-defined]
    assert state.jacobian is not None
    state.jacobian.broyden(moved - x, seen - centre.residuals)
    if trial.loss < centre.loss:
        # The residuals' weights move with the centre: rescale the Jacobian's rows as they do.
        ratio = torch.where(seen != 0, trial.residuals / seen.where(seen != 0, torch.ones_like(seen)),
                            torch.ones_like(seen))
        state.jacobian.recentre(ratio, trial.residuals)
        state.fresh = False
    return trial


def _extrapolate(run: Run, render: Render, loss: Loss, controls: _Controls, start: _Point, centre: _Point,
                 state: _State, x: torch.Tensor, delta: torch.Tensor, newton: torch.Tensor) -> tuple[_Point, float]:
    """Double an accepted step ``delta`` from ``x`` (at ``start``; ``centre`` is its render) while that keeps
    lowering the loss (one render per doubling); returns the new centre and the next iteration's stretch.

    The reweighted residuals make the Gauss-Newton model of this loss (norms and an L1 distance, V-shaped at
    their minimum) too curved: its steps were measured pointing the right way (cosine 0.85-0.93 with the
    way to the hidden values) but 5-10 times too short. The stretch carries what was learned here into the
    next step, which starts that many Gauss-Newton steps long (``newton``, the damped step before the trust
    radius clipped it): the multiple of it taken, moved to the minimum of the parabola through the losses
    at ``x``, the step taken and the doubling that failed, so a curved valley's iterations cost two renders
    instead of three.
    """
    total, failed = delta, None
    while not run.budget.exhausted() and float((2 * total).norm()) <= _MAX_RADIUS:
        here = x + total
        trial = _move(run, render, loss, controls, centre, state, here, x + 2 * total)
        if not trial.loss < centre.loss:
            controls.set(here.clamp(_EDGE, 1 - _EDGE))
            failed = trial.loss
            break
        centre, total = trial, 2 * total
        state.radius = min(max(state.radius, float(total.norm())), _MAX_RADIUS)
    taken = float(total.norm()) / max(float(newton.norm()), 1e-30)
    if failed is not None:
        # Losses at 0, 1 and 2 times the step taken: the parabola's minimum, within [1/2, 3/2] of it.
        taken *= _vertex(start.loss, centre.loss, failed)
    return centre, min(max(taken, 1.0), _MAX_STRETCH)


def _vertex(at_zero: float, at_one: float, at_two: float) -> float:
    """Where the parabola through ``(0, at_zero)``, ``(1, at_one)`` and ``(2, at_two)`` is least, clamped to
    ``[1/2, 3/2]`` (``at_one`` below both ends; 1 where the three are collinear)."""
    curvature = at_zero - 2 * at_one + at_two
    if curvature <= 0:
        return 1.0
    return min(max(1.0 + (at_zero - at_two) / (2 * curvature), 0.5), 1.5)


def _compass(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State) -> _Point:
    """One sweep of the compass search over every control; returns the new centre."""
    improved = False
    x = controls.get()
    for j in range(controls.count):
        for sign in (1.0, -1.0):
            if run.budget.exhausted():
                break
            moved = x.clone()
            moved[j] = (x[j] + sign * state.compass[j]).clamp(_EDGE, 1 - _EDGE)
            if moved[j] == x[j]:
                continue
            controls.set(moved)
            trial = _render(run, render, loss)
            if trial.loss < centre.loss:
                x, centre, improved = moved, trial, True
                state.compass[j] = min(2 * float(state.compass[j]), 0.5)
                break
        else:
            state.compass[j] = max(float(state.compass[j]) / 2, _COMPASS_MIN)
    controls.set(x)
    if improved:
        state.sweeps -= 1
    if improved and state.sweeps <= 0:
        # Back to Levenberg-Marquardt from here with a fresh Jacobian and the damping reset (the last
        # iterations drove it up on the old point); one failure returns here, after twice the sweeps.
        state.jacobian, state.stalled, state.sweeps = None, _STALLED - 1, state.backoff
        state.damping, state.radius = _START_DAMPING, _START_RADIUS
    return centre


def _scan(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
          hold: bool = True, crawled: bool = False) -> tuple[_Point, int | None]:
    """Sample every control's profile over its range from ``centre`` (the others held), search the roughest one
    on a fine grid, and return the best point of that search (``centre`` if none beat it), with Levenberg-Marquardt
    reset to start there afresh, and the roughest control (``None``: no profile had several valleys). With
    ``hold``, a cusp found is left out of Levenberg-Marquardt's Jacobians from then on (``state.held``). With
    ``crawled`` (the scan ran because the fit crawled, not because it failed), the search's point is kept only
    where it lowers the loss below ``_CUSP`` of ``centre``'s: the fit was still moving, and a slightly better
    point in another valley can be a wrong one (the pedalboard chain's seed 0 at a finite-difference step of
    0.0049: its bell's frequency moved to a valley 3 % lower, and the fit stalled there at 0.0068 of the start
    at 1,024 renders, where staying reached the goal at 418)."""
    state.scanned = True
    x = controls.get()
    start, given = centre, x
    profiles = [[(float(x[j]), centre.loss), *((value, point.loss) for value, point in
                                                 _profile(run, render, loss, controls, x, j, _SCAN_COARSE))]
                for j in range(controls.count)]
    rough = roughest(profiles)
    if rough is not None:
        for value, point in _profile(run, render, loss, controls, x, rough, _SCAN_FINE):
            if point.loss < centre.loss:
                centre, x = point, x.clone()
                x[rough] = value
        refined, moved = _refine(run, render, loss, controls, centre, x, rough, _GRID_STEP / 2)
        # The hidden value's valley ends in a cusp: searched, the loss fell to 0.17-0.83 of the grid's on LV2
        # seeds 1-4. A wrong valley's bottom is smooth (seed 0: 0.99), and kept there, the compass search no
        # longer walks out of it (0.42 of the start at 1,024 renders, against 0.08 from the grid's point).
        if refined.loss < _CUSP * centre.loss:
            centre, x = refined, moved
            state.held = rough if hold else None
        if crawled and not centre.loss < _CUSP * start.loss:
            centre, x, state.held = start, given, None
    controls.set(x)
    state.restart()
    return centre, rough


def _search_again(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
                  rough: RoughWatch) -> _Point:
    """The rough control the scan found, searched again from ``centre`` (see :mod:`._rough`): its fine grid,
    shifted, away from the valley it is in, and from the grid's best point a search of it alone; that point is
    kept where it lowers the loss below ``_CUSP`` of the centre's (Levenberg-Marquardt then restarts there)."""
    assert rough.control is not None
    j, x, renders, best = rough.control, controls.get(), run.budget.renders, run.best_loss
    values = [v for v in shifted_grid(_SCAN_FINE, _EDGE, rough.shift()) if abs(v - float(x[j])) > _GRID_STEP]
    found: tuple[_Point, torch.Tensor] | None = None
    for value, point in _profile_at(run, render, loss, controls, x, j, values):
        if found is None or point.loss < found[0].loss:
            moved = x.clone()
            moved[j] = value
            found = (point, moved)
    moved_centre = centre
    if found is not None:
        refined, moved = _refine(run, render, loss, controls, found[0], found[1], j, _GRID_STEP / 2)
        if refined.loss < _CUSP * centre.loss:
            moved_centre, x, state.held = refined, moved, j
    if moved_centre is centre:
        # No other valley: the control's own, polished to a finer step than the scan's search took. The right
        # value's flat is a few millionths wide (LV2 seed 3: 0.023 of the start within -5e-6..+1e-6 of the
        # hidden size, 0.041 at +1e-6, 0.060 at -1e-5), which comparisons at 1e-5 can step over.
        controls.set(x)
        polished, moved = _refine(run, render, loss, controls, centre, x, j, _POLISH_START, _POLISH_MIN)
        if polished is not centre:
            # Held only where the polish found a flat as a cusp's (a tenth or more off the loss): a control held
            # for a sliver of gain is lost to Levenberg-Marquardt for the rest of the fit.
            moved_centre, x = polished, moved
            state.held = j if polished.loss < _CUSP * centre.loss else state.held
    controls.set(x)
    rough.searched(renders, best, moved_centre is not centre)
    if moved_centre is not centre:
        state.restart()
    return moved_centre


def _refine(run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, x: torch.Tensor, j: int,
            step: float, smallest: float = _REFINE_MIN) -> tuple[_Point, torch.Tensor]:
    """Control ``j`` alone, from ``x`` (at ``centre``): a step up and down, moving to whichever lowers the loss
    and halving the step where neither does, down to ``smallest``; returns the best point and its controls.

    The scan's grid finds a rough control's valley, not its bottom: the valley of a reverb's size is a cusp
    (LV2 seed 3, the others held: 0.25 of the start loss 0.007 of the range off, 0.15 at 1e-4, 0.086 at the
    hidden value), which Levenberg-Marquardt's finite differences do not see and the compass search walks to in
    sweeps over every control. Comparisons of this control alone get there in about 25 renders.
    """
    while step >= smallest and not run.budget.exhausted():
        for sign in (1.0, -1.0):
            if run.budget.exhausted():
                break
            moved = x.clone()
            moved[j] = (x[j] + sign * step).clamp(_EDGE, 1 - _EDGE)
            if moved[j] == x[j]:
                continue
            controls.set(moved)
            point = _render(run, render, loss)
            if point.loss < centre.loss:
                x, centre = moved, point
                break
        else:
            step /= 2
    controls.set(x)
    return centre, x


class _Valleys:
    """The joint band scans of one fit (see :mod:`._valley`): due once the best loss stalls far above the first."""

    def __init__(self, run: Run, controls: _Controls) -> None:
        self.bands = bands(*_declared(run, controls))
        self.cost = sum(band.cost(_BAND_GRID) for band in self.bands)
        # A scan is due once the fit has gone twice its cost in renders without a tenth off the loss: on the
        # LV2 chain (168 renders a scan) the compass search leaves plateaus of 100-300 renders on its own.
        self.watch = StallWatch(window=max(4 * (controls.count + 1), 2 * self.cost))

    def due(self, run: Run) -> bool:
        self.watch.note(run.budget.renders, run.best_loss)
        return bool(self.bands) and self.cost <= _left(run) / 2 and self.watch.stalled(
            run.budget.renders, run.best_loss, run.losses[0])

    def scan(self, run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
             fd_step: float) -> _Point:
        """Scan every band from ``centre`` in turn; Levenberg-Marquardt restarts afresh from the best point."""
        renders, best = run.budget.renders, run.best_loss
        x = controls.get()
        evaluate, jacobian = _probes(run, render, loss, controls, fd_step)

        start = centre
        for band in self.bands:
            centre, x = scan_band(evaluate, jacobian, x, centre, band, _BAND_GRID, _EDGE, run.budget.exhausted)
        controls.set(x)
        self.watch.scanned(renders, best, centre is not start)
        if centre is not start:
            state.restart()
        return centre


def _declared(run: Run, controls: _Controls) -> tuple[list[tuple[int, int]], list[tuple[str, Any]]]:
    """What the band scan and the node search group the controls by: per tensor of the flat vector, its
    ``(nodes, elements)`` and its ``(node_type, declared control or None)``."""
    parameters, flags = list(run.latent.parameters()), run.latent.black_box_flags()
    described = [(node_type, control) for (node_type, _, control), p, black
                 in zip(run.latent.controls(), parameters, flags) if black and p.requires_grad]
    return [(t.shape[0] if t.dim() else 1, t.numel()) for t in controls.tensors], described


def _probes(run: Run, render: Render, loss: Loss, controls: _Controls, fd_step: float) -> tuple[
        Callable[[torch.Tensor], _Point], Callable[[torch.Tensor, _Point, list[int]], LinearModel]]:
    """What the band scan and the node search render with: a point of the controls, and the finite-difference
    Jacobian of some of them there."""

    def evaluate(y: torch.Tensor) -> _Point:
        controls.set(y)
        return _render(run, render, loss)

    def jacobian(y: torch.Tensor, point: _Point, indices: list[int]) -> LinearModel:
        controls.set(y)
        return _jacobian(run, render, loss, controls, y, point, fd_step, indices)

    return evaluate, jacobian


class _Nodes:
    """The joint searches of each node's controls (see :mod:`._node_search`): due once a stall outlasts them
    and the band scans."""

    def __init__(self, run: Run, controls: _Controls, seed: int) -> None:
        self.groups = node_groups(*_declared(run, controls))
        self.watch = NodeWatch(search_cost(self.groups))
        self.seed = seed

    def due(self, run: Run, valleys: _Valleys | None) -> bool:
        scanned = valleys.watch.last if valleys is not None and valleys.watch.scans else float("-inf")
        return bool(self.groups) and self.watch.due(run.budget.renders, run.best_loss, run.losses[0], _left(run),
                                                    scanned)

    def search(self, run: Run, render: Render, loss: Loss, controls: _Controls, centre: _Point, state: _State,
               fd_step: float) -> _Point:
        """Search every node from ``centre``; Levenberg-Marquardt restarts afresh from the best point."""
        renders, best = run.budget.renders, run.best_loss
        evaluate, jacobian = _probes(run, render, loss, controls, fd_step)

        found, x = search_nodes(evaluate, jacobian, controls.get(), centre, self.groups, _EDGE,
                                run.budget.exhausted, self.seed + 1000 * self.watch.watch.scans)
        controls.set(x)
        self.watch.searched(renders, best, found is not centre)
        if found is not centre:
            state.restart()
        return found  # type: ignore[return-value]


def _profile(run: Run, render: Render, loss: Loss, controls: _Controls, x: torch.Tensor, j: int,
             count: int) -> Iterator[tuple[float, _Point]]:
    """Control ``j`` at ``count`` evenly spaced values of its range, the others at ``x``: ``(value, point)``
    rendered one at a time, as far as the budget goes (the controls are left at the last one)."""
    yield from _profile_at(run, render, loss, controls, x, j, torch.linspace(_EDGE, 1 - _EDGE, count,
                                                                             dtype=torch.float64).tolist())


def _profile_at(run: Run, render: Render, loss: Loss, controls: _Controls, x: torch.Tensor, j: int,
                values: list[float]) -> Iterator[tuple[float, _Point]]:
    """Control ``j`` at each of ``values``, the others at ``x`` (see :func:`_profile`)."""
    for value in values:
        if run.budget.exhausted():
            break
        moved = x.clone()
        moved[j] = value
        controls.set(moved)
        yield value, _render(run, render, loss)


def _render(run: Run, render: Render, loss: Loss) -> _Point:
    with torch.no_grad():
        mix = render(run.latent.values())
        return _Point(mix, float(loss(mix)), loss.residuals(mix).detach())  # type: ignore[attr-defined]


def _jacobian(run: Run, render: Render, loss: Loss, controls: _Controls, x: torch.Tensor, centre: _Point,
              step: float, indices: list[int] | None = None, held: int | None = None) -> LinearModel:
    """Forward differences (backward ones at the top of the range): one render per control (of ``indices``
    only, where given: the model's controls are then those, in that order). Control ``held`` is not rendered:
    its column is zero, so the model's steps leave it where it is (Broyden updates keep a zero column zero,
    as the steps never move it)."""
    chosen = list(range(controls.count)) if indices is None else indices
    rows = torch.zeros(len(chosen), centre.residuals.numel(), dtype=centre.residuals.dtype,
                       device=centre.residuals.device)  # Jᵀ, [controls, residuals]
    for row, j in enumerate(chosen):
        if j == held:
            continue
        moved = x.clone()
        signed = step if x[j] + step <= 1 - _EDGE else -step
        moved[j] += signed
        controls.set(moved)
        with torch.no_grad():
            mix = render(run.latent.values())
            rows[row] = (loss.residuals(mix, centre.mix).detach() - centre.residuals) / signed  # type: ignore[attr-defined]
    controls.set(x)
    return LinearModel(rows, centre.residuals)


def _adam_steps(run: Run, render: Render, loss: Loss, adam: torch.optim.Optimizer, controls: _Controls, steps: int,
                learning_rate: float) -> None:
    limit = run.budget.limit
    fraction = run.budget.renders / limit if limit else len(run.losses) / max(run.steps, 1)
    for group in adam.param_groups:
        group["lr"] = learning_rate * 0.1 ** min(fraction, 1.0)  # tenfold decay over the run, as Adam's fit
    for t in controls.tensors:
        t.requires_grad_(False)
    try:
        for _ in range(steps):
            if run.budget.exhausted():
                break
            adam.zero_grad(set_to_none=True)
            value = loss(render(run.latent.values()))
            if not torch.isfinite(value):
                raise NonFiniteLossError(f"the loss became {value.item()} in an Adam step of the analytic "
                                         f"parameters{NON_FINITE_HINT}")
            value.backward()
            adam.step()
    finally:
        for t in controls.tensors:
            t.requires_grad_(True)
