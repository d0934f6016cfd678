"""Black-box processors: effects torch cannot differentiate, batched on a thread pool, isolated worker processes or a Ray cluster."""

from .isolated import IsolatedRunner
from .parameters import MARGIN, SCALES, ParameterSpec
from .processor import BlackBoxProcessor, BlackBoxTarget
from .ray_runner import RayRunner, local_ray_cluster
from .runner import PerThread, ThreadPoolRunner

__all__ = ["ParameterSpec", "SCALES", "MARGIN", "BlackBoxProcessor", "BlackBoxTarget", "ThreadPoolRunner", "IsolatedRunner", "RayRunner",
           "PerThread", "local_ray_cluster"]
