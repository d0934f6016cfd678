"""The default gradient estimator of a pedalboard node, chosen from its differentiable controls.

Central finite differences cost two renders per differentiable control and
give the exact direction; SPSA costs ``2 * samples`` renders whatever the
number of controls and gives a noisy direction (cosine about
``sqrt(K / (K + P - 1))`` with the truth). Measured on pedalboard effects
(``tools/measure_estimators.py``, figures in the README): at equal render
budgets, gradient descent with central differences reached lower losses than
SPSA up to :data:`FD_MAX_PARAMETERS` differentiable controls, and SPSA did
beyond. A node without differentiable controls gets the straight-through
estimator, whose only job is the input signal's gradient (identity for
codecs and quantisers, whose output is close to their input). Any processor
takes ``estimator=`` (a name or an instance) to override the choice for its
node type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafx_core.blackbox import ParameterSpec
from grafx_core.blackbox import BlackBoxProcessor
from grafx_core.estimators import SPSA, Estimator, FiniteDifference, StraightThrough, resolve_estimator

__all__ = ["FD_MAX_PARAMETERS", "SPSA_SAMPLES", "default_estimator_name", "make_estimator",
           "settle_gradient_kind"]

FD_MAX_PARAMETERS = 12
"""Central finite differences up to this many differentiable controls, SPSA beyond."""

SPSA_SAMPLES = 4
"""Perturbations per node of the default SPSA estimator (8 extra renders per node)."""

SPSA_SEED = 0
"""Seed of the default SPSA estimator, so that training runs repeat exactly."""


def default_estimator_name(specs: Sequence[ParameterSpec]) -> str:
    """``"straight-through"`` (no differentiable control), ``"finite-difference"`` or ``"spsa"``."""
    differentiable = sum(1 for s in specs if s.differentiable)
    if differentiable == 0:
        return "straight-through"
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
        name = default_estimator_name(specs)
        if name == "straight-through":
            return StraightThrough(**options)
        if name == "finite-difference":
            return FiniteDifference(**options)
        options.setdefault("samples", SPSA_SAMPLES)
        options.setdefault("seed", SPSA_SEED)
        return SPSA(**options)
    return resolve_estimator(estimator, **options)


def settle_gradient_kind(processor: BlackBoxProcessor) -> BlackBoxProcessor:
    """Report ``gradient_kind = "none"`` for a processor that passes no gradient to anything.

    That is a node without differentiable controls whose input signal's
    gradient is stopped (a pitch shifter, a resampler): its estimator never runs.
    """
    if processor.signal_gradient == "none" and not any(s.differentiable for s in processor.specs):
        processor.gradient_kind = "none"
    return processor
