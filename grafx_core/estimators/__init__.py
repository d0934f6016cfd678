"""Gradient estimators for processors torch cannot differentiate.

Four built-ins, registered through the plugin hooks under the names
``"finite-difference"``, ``"spsa"``, ``"straight-through"`` and
``"neural-proxy"``; :func:`with_estimator` routes any torch processor through
any of them. All return vector-Jacobian products. How the input signal's
gradient is obtained is chosen per processor (see :mod:`.base`): from
linear stand-ins fitted to the forward pass (:mod:`.linearisation`), chosen
automatically by a probe (:mod:`.auto`) unless given.
"""

from ._warnings import (
    GradientWarning,
    NonDifferentiableParameterWarning,
    StoppedSignalGradientWarning,
    WeakSignalGradientWarning,
    RoughSignalGradientWarning,
)
from ._pool import backward_pooling
from .base import SIGNAL_GRADIENTS, Estimator, resolve_estimator
from .finite_difference import FiniteDifference
from .proxy import NeuralProxy
from .proxy_network import ProxyNetwork
from .spsa import SPSA
from .straight_through import StraightThrough
from .target import RenderJob, RenderTarget
from .training import ProxyTraining, load_proxy, random_signals, save_proxy, train_proxy
from .wrap import EstimatedProcessor, TorchTarget, render_target, with_estimator

__all__ = [
    "Estimator",
    "backward_pooling",
    "SIGNAL_GRADIENTS",
    "resolve_estimator",
    "FiniteDifference",
    "SPSA",
    "StraightThrough",
    "NeuralProxy",
    "ProxyNetwork",
    "train_proxy",
    "ProxyTraining",
    "save_proxy",
    "load_proxy",
    "random_signals",
    "with_estimator",
    "EstimatedProcessor",
    "render_target",
    "RenderJob",
    "RenderTarget",
    "TorchTarget",
    "GradientWarning",
    "NonDifferentiableParameterWarning",
    "StoppedSignalGradientWarning",
    "WeakSignalGradientWarning",
    "RoughSignalGradientWarning",
]
