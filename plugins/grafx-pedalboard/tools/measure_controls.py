"""Measure whether each built-in effect's controls are differentiable in practice.

Runs :func:`grafx_pedalboard.probe.probe_controls` on every control of every
effect (0.5 s stereo at 44.1 kHz: noise bursts alternating 0 and -50 dB plus a
decaying tone), with the other controls at their defaults or at a setting
where the probed control acts (``ACTIVE``), and prints the figures, the
verdict and the flag in ``grafx_pedalboard.effects``; ``MISMATCH`` marks a flag
the measurement disagrees with.

    .venv/bin/python plugins/grafx-pedalboard/tools/measure_controls.py [effect ...]
"""

from __future__ import annotations

import sys

import numpy as np

from grafx_pedalboard.effects import EFFECTS
from grafx_pedalboard.probe import probe_controls
from grafx_pedalboard.processor import pedalboard_processor

SR = 44100
LENGTH = 22050

ACTIVE = {
    "noise_gate": {"threshold_db": -20.0},
    "delay": {"delay_seconds": 0.05},
    "peak_filter": {"gain_db": 6.0},
    "low_shelf_filter": {"gain_db": 6.0},
    "high_shelf_filter": {"gain_db": 6.0},
}
"""Settings of the other controls under which the probed control acts (a 0 dB EQ band has no frequency)."""


def test_signal(seed: int = 0) -> np.ndarray:
    """``[2, LENGTH]`` float32: noise bursts at 0 and -50 dB every 50 ms, plus a decaying 220 Hz tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / SR
    envelope = np.where((t // 0.05) % 2 == 0, 1.0, 10 ** (-50 / 20))
    tone = np.sin(2 * np.pi * 220 * t) * np.exp(-10 * t)
    return (0.4 * rng.standard_normal((2, LENGTH)) * envelope + 0.3 * tone).astype(np.float32)


def main(names: list[str]) -> None:
    x = test_signal()
    ir = np.exp(-np.arange(2000) / 300.0) * np.random.default_rng(2).standard_normal(2000) * 0.1
    print(f"{'effect.control':40s} {'spread':>9s} {'steps':>6s} {'minima':>7s} {'measured':>9s} {'flag':>8s}")
    for name in names or list(EFFECTS):
        options = {"impulse_response": ir} if name == "convolution" else {}
        processor = pedalboard_processor(name, sample_rate=SR, **options)
        for p in probe_controls(processor, x, values=ACTIVE.get(name)):
            measured = "diff" if p.differentiable else "nondiff"
            flag = "diff" if p.flagged else "nondiff"
            note = "" if measured == flag else "  MISMATCH"
            print(f"{name + '.' + p.name:40s} {p.spread:9.2e} {p.steps:6.2f} {p.minima:7d} {measured:>9s} "
                  f"{flag:>8s}{note}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
