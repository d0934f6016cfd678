"""The built-in gradient estimators, registered through the plugin hooks.

The registry loads this module as a default plugin, so the built-ins are found
exactly as a third-party estimator would be.
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import EstimatorSpec
from .finite_difference import FiniteDifference
from .proxy import NeuralProxy
from .spsa import SPSA
from .straight_through import StraightThrough

__all__ = ["grafx_register_estimators"]


@hookimpl
def grafx_register_estimators() -> list[EstimatorSpec]:
    """The four built-in estimators."""
    return [
        EstimatorSpec(
            "finite-difference",
            FiniteDifference,
            "Central or forward differences, one or two renders per parameter",
        ),
        EstimatorSpec("spsa", SPSA, "Simultaneous perturbation (Rademacher), 2K renders per item"),
        EstimatorSpec(
            "straight-through",
            StraightThrough,
            "Black box forward, differentiable surrogate backward",
        ),
        EstimatorSpec(
            "neural-proxy",
            NeuralProxy,
            "True effect forward, a trained proxy network's gradient backward",
        ),
    ]
