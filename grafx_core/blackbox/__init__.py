"""Black-box processors: effects torch cannot differentiate, batched on a thread pool."""

from .parameters import MARGIN, SCALES, ParameterSpec
from .processor import BlackBoxProcessor, BlackBoxTarget
from .runner import PerThread, ThreadPoolRunner

__all__ = ["ParameterSpec", "SCALES", "MARGIN", "BlackBoxProcessor", "BlackBoxTarget", "ThreadPoolRunner", "PerThread"]
