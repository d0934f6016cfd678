"""The measured default gradient estimator of a black box, chosen from its differentiable controls.

Central finite differences cost two renders per differentiable control and
give the exact direction; SPSA costs ``2 * samples`` renders whatever the
number of controls and gives a noisy direction (cosine about
``sqrt(K / (K + P - 1))`` with the truth). Measured on pedalboard effects
(grafx-pedalboard's ``tools/measure_estimators.py``): at equal render budgets,
gradient descent with central differences reached lower losses than SPSA up
to :data:`FD_MAX_PARAMETERS` differentiable controls, and SPSA did beyond. A
node without differentiable controls gets the straight-through estimator,
whose only job is the input signal's gradient. :class:`~grafx_core.BlackBoxProcessor`,
grafx-pedalboard and grafx-lv2 all choose by this one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import Estimator, resolve_estimator
from .finite_difference import FiniteDifference
from .spsa import SPSA
from .straight_through import StraightThrough

__all__ = ["FD_MAX_PARAMETERS", "SPSA_SAMPLES", "SPSA_SEED", "default_estimator_name", "default_estimator"]

FD_MAX_PARAMETERS = 12
"""Central finite differences up to this many differentiable controls, SPSA beyond."""

SPSA_SAMPLES = 4
"""Perturbations per node of the default SPSA estimator (8 extra renders per node)."""

SPSA_SEED = 0
"""Seed of the default SPSA estimator, so that training runs repeat exactly."""


def _differentiable(controls: int | Iterable[Any]) -> int:
    if isinstance(controls, int):
        return controls
    return sum(1 for control in controls if control.differentiable)


def default_estimator_name(controls: int | Iterable[Any]) -> str:
    """``"straight-through"`` (no differentiable control), ``"finite-difference"`` or ``"spsa"``.

    Args:
        controls: the number of differentiable controls, or the controls
            themselves (anything with a ``differentiable`` flag: a
            :class:`~grafx_core.Control`, a :class:`~grafx_core.ParameterSpec`).
    """
    count = _differentiable(controls)
    if count == 0:
        return "straight-through"
    return "finite-difference" if count <= FD_MAX_PARAMETERS else "spsa"


def default_estimator(controls: int | Iterable[Any], estimator: Estimator | str | None = None,
                      options: Mapping[str, Any] | None = None) -> Estimator:
    """The estimator a black box with these controls uses: ``estimator`` when given, else the measured default.

    Args:
        controls: as for :func:`default_estimator_name`.
        estimator: ``None`` for the measured default, a registered name or an instance.
        options: keyword options for the estimator (not with an instance); the
            default SPSA gets ``samples=SPSA_SAMPLES`` and ``seed=SPSA_SEED``
            unless they say otherwise.

    Raises:
        EstimatorError: an unknown name, or options given with an instance.
    """
    options = dict(options or {})
    if estimator is not None:
        return resolve_estimator(estimator, **options)
    name = default_estimator_name(controls)
    if name == "straight-through":
        return StraightThrough(**options)
    if name == "finite-difference":
        return FiniteDifference(**options)
    options.setdefault("samples", SPSA_SAMPLES)
    options.setdefault("seed", SPSA_SEED)
    return SPSA(**options)
