"""Minimal example of the grafx_register_estimators hook (run by the test suite)."""

from functools import partial

from grafx_core import EstimatorSpec, hookimpl
from grafx_core.estimators import SPSA


@hookimpl
def grafx_register_estimators():
    # A factory may fix options of an existing estimator class, or build a new Estimator subclass.
    return [EstimatorSpec("spsa-16", partial(SPSA, samples=16), "SPSA averaging 16 perturbations")]


if __name__ == "__main__":
    import sys

    from grafx_core.registry import Registry

    registry = Registry(default_plugins=(), autoload=False)
    registry.register(sys.modules[__name__], "mine")
    estimator = registry.get_estimator("mine:spsa-16", seed=0)  # keyword options reach the factory
    assert isinstance(estimator, SPSA) and estimator.samples == 16
    print(estimator)
