"""Try a plug-in in a separate process before loading it here: a crash or a hang costs only that process.

``python -m grafx_lv2.probe URI SAMPLE_RATE BLOCK_SIZE`` instantiates the
plug-in, runs a few blocks of noise at its default controls and exits 0; it
imports neither torch nor grafx-core, so it starts in a fraction of a second.
:func:`probe` runs it once per plug-in, sample rate and block size per process.
"""

from __future__ import annotations

import subprocess
import sys
import threading

__all__ = ["probe", "PROBE_TIMEOUT"]

PROBE_TIMEOUT = 30.0
"""Seconds a probe may take before the plug-in counts as hung."""

_COMMAND = [sys.executable, "-m", "grafx_lv2.probe"]
_done: dict[tuple[str, float, int], None] = {}
_lock = threading.Lock()


def probe(uri: str, where: str, sample_rate: float, block_size: int, timeout: float | None = None) -> None:
    """Instantiate and run ``uri`` in a child process once (per process, sample rate and block size).

    ``where`` names the plug-in in messages; ``timeout`` defaults to :data:`PROBE_TIMEOUT` seconds.

    Raises:
        LV2PluginCrashError: the child died from a signal, or ran past ``timeout``.
        LV2InstantiationError: the child reported an error (its last line is in the message).
    """
    from .errors import LV2InstantiationError, LV2PluginCrashError

    timeout = PROBE_TIMEOUT if timeout is None else timeout
    key = (uri, float(sample_rate), int(block_size))
    with _lock:
        if key in _done:
            return
    command = [*_COMMAND, uri, repr(float(sample_rate)), str(int(block_size))]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LV2PluginCrashError(f"{where}: hung (no answer within {timeout:g} s when instantiated and "
                                  f"run at {sample_rate:g} Hz in a separate process); it is not loaded") from None
    if result.returncode < 0:
        raise LV2PluginCrashError(f"{where}: crashed with signal {-result.returncode} when instantiated "
                                  f"and run at {sample_rate:g} Hz in a separate process; it is not loaded")
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise LV2InstantiationError(f"{where}: failed in a separate process: "
                                    f"{lines[-1] if lines else f'exit status {result.returncode}'}")
    with _lock:
        _done[key] = None


def _main(argv: list[str]) -> int:
    import numpy as np

    from .instance import Instance
    from .world import world

    uri, sample_rate, block_size = argv[0], float(argv[1]), int(argv[2])
    ports = world().ports(uri)
    instance = Instance(uri, ports, sample_rate, block_size, uri)
    for port in ports:
        if port.kind == "control" and port.direction == "input":
            value = port.default if np.isfinite(port.default) else port.minimum
            instance.controls[port.index] = value if np.isfinite(value) else 0.0
    noise = np.random.default_rng(0).standard_normal(instance.inputs.shape).astype(np.float32) * 0.1
    for _ in range(4):
        instance.inputs[:] = noise
        instance.run()
    instance.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
