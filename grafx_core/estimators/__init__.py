"""Gradient estimators for processors torch cannot differentiate."""

from .finite_difference import FiniteDifference
from .proxy import NeuralProxy
from .spsa import SPSA
from .straight_through import StraightThrough

__all__ = ["FiniteDifference", "SPSA", "StraightThrough", "NeuralProxy"]
