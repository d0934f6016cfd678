"""The default gradient estimator of a pedalboard node, chosen from its differentiable controls.

Central finite differences cost two renders per differentiable control and
give the exact direction; SPSA costs ``2 * samples`` renders whatever the
number of controls and gives a noisy direction (cosine about
``sqrt(K / (K + P - 1))`` with the truth). Measured on pedalboard effects
(``tools/measure_estimators.py``, figures in the README): at equal render
budgets, gradient descent with central differences reached lower losses than
SPSA up to :data:`FD_MAX_PARAMETERS` differentiable controls, and SPSA did
beyond. Any processor takes ``estimator=`` (a name or an instance) to override
the choice for its node type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafx_core.blackbox import ParameterSpec
from grafx_core.estimators import SPSA, Estimator, FiniteDifference, resolve_estimator

__all__ = ["FD_MAX_PARAMETERS", "SPSA_SAMPLES", "default_estimator_name", "make_estimator"]

FD_MAX_PARAMETERS = 4
"""Central finite differences up to this many differentiable controls, SPSA beyond."""

SPSA_SAMPLES = 4
"""Perturbations per node of the default SPSA estimator (8 extra renders per node)."""

SPSA_SEED = 0
"""Seed of the default SPSA estimator, so that training runs repeat exactly."""


def default_estimator_name(specs: Sequence[ParameterSpec]) -> str:
    """``"finite-difference"`` or ``"spsa"`` for a node with these controls."""
    differentiable = sum(1 for s in specs if s.differentiable)
    return "finite-difference" if differentiable <= FD_MAX_PARAMETERS else "spsa"


def make_estimator(specs: Sequence[ParameterSpec], estimator: Estimator | str | None,
                   options: Mapping[str, Any] | None) -> Estimator:
    """The estimator a processor with ``specs`` uses.

    Args:
        specs: the node's controls.
        estimator: ``None`` for the measured default, a registered name
            (``"finite-difference"``, ``"spsa"``, ``"straight-through"``,
            ``"neural-proxy"``) or an instance.
        options: keyword options for the estimator (not with an instance).

    Raises:
        EstimatorError: an unknown name, or options given with an instance.
    """
    options = dict(options or {})
    if estimator is None:
        if default_estimator_name(specs) == "finite-difference":
            return FiniteDifference(**options)
        options.setdefault("samples", SPSA_SAMPLES)
        options.setdefault("seed", SPSA_SEED)
        return SPSA(**options)
    return resolve_estimator(estimator, **options)
