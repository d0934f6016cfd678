"""Side-by-side timing shared by the benchmarks (imported, never run by `make bench`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fns: dict[str, Callable[[], object]], repeats: int,
         clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Minimum time of each function over interleaved repeats (one warm-up each), wall time by default.

    Interleaving puts every function under the same machine load, so their
    ratios hold on a noisy machine even where the absolute times do not.
    """
    for fn in fns.values():
        fn()
    times = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name] = min(times[name], clock() - start)
    return times
