"""The report in a mixing engineer's words: per-stem moves and what the console could not express."""

from __future__ import annotations

import math

import pytest
import torch

from grafx_core.fitting.engineer import describe_stems, residual_report
from grafx_core.graph import Graph

RATE = 16000


def _node(name: str, **parameters: list[float]) -> dict:
    return {"name": name, "parameters": {k: {"fitted": v} for k, v in parameters.items()}}


def test_each_stem_is_described_by_its_fader_pan_eq_and_gain_reduction():
    t = torch.arange(RATE, dtype=torch.float64) / RATE
    sine = 10 ** (-6 / 20) * torch.sin(2 * math.pi * 440 * t).expand(2, -1)  # peaks at -6 dBFS
    nodes = [_node("vox_fader", gain_db=[-4.25], pan=[-0.3]),
             _node("vox_eq", low_shelf_gain_db=[0.1], low_shelf_cutoff_hz=[100.0], peak_gain_db=[3.2],
                   peak_cutoff_hz=[2400.0], peak_q=[1.4], high_shelf_gain_db=[-2.0], high_shelf_cutoff_hz=[8000.0]),
             _node("vox_compressor", threshold_db=[-16.0], ratio=[4.0], knee_db=[0.0])]
    described = describe_stems(Graph(), ["vox"], nodes, sine[None].float(), RATE)["vox"]
    # A steady sine 10 dB over the threshold at 4:1 is reduced by 7.5 dB in every frame.
    assert described["compression_db"]["mean"] == pytest.approx(7.5, abs=0.05)
    assert described["words"] == ("fader -4.2 dB, 30% left; EQ +3.2 dB at 2.4 kHz (Q 1.4), high shelf -2.0 dB above "
                                  "8.0 kHz; compressed about 7.5 dB on average (7.6 dB at peaks), 4.0:1 above -16 dBFS")


def test_a_band_the_fit_misses_is_reported_with_the_stems_that_play_there():
    generator = torch.Generator().manual_seed(0)
    low = torch.randn(2, 2 * RATE, generator=generator, dtype=torch.float64)
    spectrum = torch.fft.rfft(low)
    freqs = torch.fft.rfftfreq(2 * RATE, 1 / RATE)
    hiss = torch.fft.irfft(torch.where(freqs > 3000, spectrum, 0), 2 * RATE)
    body = torch.fft.irfft(torch.where(freqs <= 3000, spectrum, 0), 2 * RATE)
    stems = torch.stack([body, hiss])
    target = body + hiss
    good = residual_report(target + 1e-3 * body, target, stems, ["body", "hiss"], RATE)
    assert good["expressed"]
    missed = residual_report(body, target, stems, ["body", "hiss"], RATE)
    assert not missed["expressed"] and "does not express" in missed["words"]
    assert all(row["hz"] > 3000 and row["stems"] == ["hiss"] for row in missed["worst"])
