"""Try a plug-in in a separate process before loading it here: a crash or a hang costs only that process.

``python -m grafx_lv2.probe URI SAMPLE_RATE BLOCK_SIZE`` instantiates the
plug-in, runs a few blocks of noise at its default controls and exits 0, or
:data:`SILENT_STATUS` when its output blew up or ended in silence; it imports
neither torch nor grafx-core, so it starts in a fraction of a second.
:func:`probe` runs it once per plug-in, sample rate and block size per process.
A plug-in failing so at a sample rate other than 44.1 kHz is tried at 44.1 kHz
too: working there, it does not work at the asked rate (Calf Saturator's
filters blow up at 8 kHz, and it then outputs zeros), which is an error rather
than a silently wrong render.
"""

from __future__ import annotations

import subprocess
import sys
import threading

__all__ = ["probe", "PROBE_TIMEOUT", "SILENT_STATUS"]

SILENT_STATUS = 3
"""The probe's exit status when the plug-in, fed noise at its defaults, ended in silence (exact zeros) or
blew up (non-finite or beyond about 100 dB above its input)."""

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
        LV2UnsupportedPluginError: its output blows up or falls silent at ``sample_rate`` but not at 44.1 kHz.
    """
    from .errors import LV2InstantiationError, LV2PluginCrashError, LV2UnsupportedPluginError

    timeout = PROBE_TIMEOUT if timeout is None else timeout
    key = (uri, float(sample_rate), int(block_size))
    with _lock:
        if key in _done:
            return
    result = _run(uri, where, sample_rate, block_size, timeout)
    if result.returncode == SILENT_STATUS and float(sample_rate) != _USUAL_RATE and \
            _run(uri, where, _USUAL_RATE, block_size, timeout).returncode == 0:
        raise LV2UnsupportedPluginError(
            f"{where}: at {sample_rate:g} Hz, fed noise at its default controls, its output "
            f"{_last_line(result)} (it blows up or falls silent), but not at {_USUAL_RATE:g} Hz: it does not work "
            "at this sample rate; resample to one it supports")
    if result.returncode < 0:
        raise LV2PluginCrashError(f"{where}: crashed with signal {-result.returncode} when instantiated "
                                  f"and run at {sample_rate:g} Hz in a separate process; it is not loaded")
    if result.returncode not in (0, SILENT_STATUS):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise LV2InstantiationError(f"{where}: failed in a separate process: "
                                    f"{lines[-1] if lines else f'exit status {result.returncode}'}")
    with _lock:
        _done[key] = None


_USUAL_RATE = 44100.0
_BLOCKS = 16
_BLOWN_UP = 1e4
"""A peak this far above the probe's noise (about 100 dB over it) is a filter blowing up, not an effect."""


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def _run(uri: str, where: str, sample_rate: float, block_size: int, timeout: float) -> subprocess.CompletedProcess:
    from .errors import LV2PluginCrashError

    command = [*_COMMAND, uri, repr(float(sample_rate)), str(int(block_size))]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LV2PluginCrashError(f"{where}: hung (no answer within {timeout:g} s when instantiated and "
                                  f"run at {sample_rate:g} Hz in a separate process); it is not loaded") from None


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
    peak, last = 0.0, 0.0
    for k in range(_BLOCKS):
        instance.inputs[:] = noise
        instance.run()
        with np.errstate(invalid="ignore"):
            level = float(np.nan_to_num(np.abs(instance.outputs), nan=np.inf).max(initial=0.0))
        peak = max(peak, level)
        last = max(last, level) if k >= _BLOCKS - 4 else last
    instance.close()
    if peak > _BLOWN_UP or last == 0.0:
        print(f"peak {peak:.3g}, last blocks {'silent' if last == 0.0 else f'at {last:.3g}'}", file=sys.stderr)
        return SILENT_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
