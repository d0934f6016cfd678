"""The default gradient estimator of a pedalboard node: the core's rule, chosen from its differentiable controls.

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

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.estimators import Estimator
from grafx_core.estimators.default import FD_MAX_PARAMETERS, SPSA_SAMPLES, default_estimator, default_estimator_name

__all__ = ["FD_MAX_PARAMETERS", "SPSA_SAMPLES", "default_estimator_name", "make_estimator",
           "settle_gradient_kind"]


def make_estimator(specs: Sequence[ParameterSpec], estimator: Estimator | str | None,
                   options: Mapping[str, Any] | None) -> Estimator:
    """The estimator a processor with ``specs`` uses: the core's rule (:mod:`grafx_core.estimators.default`).

    Args:
        specs: the node's controls.
        estimator: ``None`` for the measured default, a registered name
            (``"finite-difference"``, ``"spsa"``, ``"straight-through"``,
            ``"neural-proxy"``) or an instance.
        options: keyword options for the estimator (not with an instance).

    Raises:
        EstimatorError: an unknown name, or options given with an instance.
    """
    return default_estimator(specs, estimator, options)


def settle_gradient_kind(processor: BlackBoxProcessor) -> BlackBoxProcessor:
    """Report ``gradient_kind = "none"`` for a processor that passes no gradient to anything.

    That is a node without differentiable controls whose input signal's
    gradient is stopped (a pitch shifter, a resampler): its estimator never runs.
    """
    if processor.signal_gradient == "none" and not any(s.differentiable for s in processor.specs):
        processor.gradient_kind = "none"
    return processor
