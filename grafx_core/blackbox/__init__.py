"""Black-box processors: effects torch cannot differentiate, batched on a thread pool."""

from .parameters import SCALES, ParameterSpec
from .processor import BlackBoxProcessor, BlackBoxTarget
from .runner import PerThread, ThreadPoolRunner

__all__ = ["ParameterSpec", "SCALES", "BlackBoxProcessor", "BlackBoxTarget", "ThreadPoolRunner", "PerThread"]
