"""Audio metrics of a fit against published and hand-computed values.

ITU-R BS.1770-4 publishes the K-weighting coefficients at 48 kHz and states
that a 0 dBFS 1 kHz sine in one channel reads -3.01 LKFS; EBU Tech 3341
gives -23.0 +- 0.1 LUFS for a stereo 1 kHz sine at -23 dBFS per channel,
and the same with 20 s at -36 dBFS around it (the relative gate drops it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grafx_core.fitting.metrics import (bs1770_loudness, integrated_loudness, k_weighting, log_spectral_distance_db,
                                        peak_dbfs, snr_db)


def _sine(dbfs: float, seconds: float, rate: int, hz: float = 997.0) -> torch.Tensor:
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return 10 ** (dbfs / 20) * torch.sin(2 * math.pi * hz * t)


def test_k_weighting_at_48_khz_matches_the_published_coefficients():
    sos = k_weighting(48000)
    np.testing.assert_allclose(sos[0], [1.53512485958697, -2.69169618940638, 1.19839281085285,
                                        1.0, -1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(sos[1], [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], atol=1e-9)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_loudness_of_reference_sines(rate):
    assert integrated_loudness(_sine(0.0, 3.0, rate)[None], rate) == pytest.approx(-3.01, abs=0.05)
    stereo = torch.stack([_sine(-23.0, 3.0, rate, 1000.0)] * 2)
    assert integrated_loudness(stereo, rate) == pytest.approx(-23.0, abs=0.1)


def test_relative_gate_ignores_quiet_passages():
    rate = 48000
    quiet, loud = _sine(-36.0, 10.0, rate, 1000.0), _sine(-23.0, 60.0, rate, 1000.0)  # EBU 3341 case 3
    signal = torch.cat([quiet, loud, quiet])
    assert integrated_loudness(torch.stack([signal] * 2), rate) == pytest.approx(-23.0, abs=0.1)
    assert integrated_loudness(torch.zeros(2, rate), rate) == -math.inf


def test_snr_and_log_spectral_distance_of_a_half_level_copy_are_6_db():
    reference = torch.randn(2, 8192, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert snr_db(0.5 * reference, reference) == pytest.approx(20 * math.log10(2), abs=1e-9)
    assert log_spectral_distance_db(0.5 * reference, reference) == pytest.approx(20 * math.log10(2), abs=1e-6)
    assert snr_db(reference, reference) == math.inf and log_spectral_distance_db(reference, reference) == 0.0
    assert peak_dbfs(torch.tensor([[0.5, -2.0]])) == pytest.approx(20 * math.log10(2))


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_pyloudnorm_and_our_bs1770_code_agree_within_a_tenth_of_a_lu(rate):
    generator = torch.Generator().manual_seed(rate)
    noise = 0.1 * torch.randn(2, 3 * rate, generator=generator, dtype=torch.float64)
    envelope = torch.linspace(0, 6 * math.pi, 3 * rate, dtype=torch.float64).sin().abs()  # loud and quiet blocks
    for audio in (noise, noise * envelope, torch.stack([_sine(-23.0, 3.0, rate, 1000.0)] * 2), noise[:1]):
        assert integrated_loudness(audio, rate) == pytest.approx(bs1770_loudness(audio, rate), abs=0.1)
    short = noise[:, : rate // 4]  # shorter than one block, which pyloudnorm refuses: measured as one block
    assert integrated_loudness(short, rate) == bs1770_loudness(short, rate)
