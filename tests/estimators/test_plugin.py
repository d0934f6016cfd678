"""The built-in estimators reach users through the plugin hooks."""

import pytest

from grafx_core.estimators import SPSA, Estimator, FiniteDifference, NeuralProxy, StraightThrough
from grafx_core.estimators._plugin import grafx_register_estimators
from grafx_core.processor import GRADIENT_KINDS
from grafx_core.registry import Registry


def test_hook_registers_the_four_names_with_their_classes():
    specs = {spec.name: spec.factory for spec in grafx_register_estimators()}
    assert specs == {"finite-difference": FiniteDifference, "spsa": SPSA, "straight-through": StraightThrough,
                     "neural-proxy": NeuralProxy}
    for name, factory in specs.items():
        estimator = factory()
        assert isinstance(estimator, Estimator) and estimator.kind == name and name in GRADIENT_KINDS


@pytest.mark.parametrize("name, options, check", [
    ("spsa", {"samples": 3, "seed": 1}, lambda e: isinstance(e, SPSA) and e.samples == 3),
    ("finite-difference", {"mode": "forward"}, lambda e: isinstance(e, FiniteDifference) and e.mode == "forward"),
])
def test_registry_builds_estimators_by_name_with_options(name, options, check):
    registry = Registry(autoload=False)  # the default plugins only, whatever else is installed
    assert check(registry.get_estimator(name, **options))
