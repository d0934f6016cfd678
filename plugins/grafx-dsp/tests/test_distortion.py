"""Colour against closed forms: tanh drive, and numpy's Chebyshev series."""

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev

import grafx_dsp as dsp


def test_distortion_is_tanh_of_the_driven_signal():
    x = torch.linspace(-2, 2, 401, dtype=torch.float64).reshape(1, 1, -1).repeat(3, 2, 1)
    drive_db = torch.tensor([[-6.0], [0.0], [25.0]], dtype=torch.float64)
    y = dsp.Distortion()(x, drive_db=drive_db)
    expected = np.tanh(x.numpy() * 10 ** (drive_db.numpy()[:, :, None] / 20))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("n_harmonics", [1, 2, 5, 8])
def test_waveshaper_is_a_chebyshev_series_of_the_tanh_stage(n_harmonics):
    gen = torch.Generator().manual_seed(n_harmonics)
    x = torch.randn(2, 2, 300, generator=gen, dtype=torch.float64)
    weights = torch.randn(2, n_harmonics, generator=gen, dtype=torch.float64).clamp(-1.5, 1.5)
    drive_db = torch.tensor([[3.0], [-10.0]], dtype=torch.float64)
    y = dsp.ChebyshevWaveshaper(n_harmonics)(x, drive_db=drive_db, harmonic_gain=weights).numpy()
    for n in range(2):
        u = np.tanh(x[n].numpy() * 10 ** (drive_db[n, 0].item() / 20))
        series = np.r_[0.0, weights[n].numpy()]
        np.testing.assert_allclose(y[n], chebyshev.chebval(u, series) - chebyshev.chebval(0.0, series),
                                   atol=1e-12)


def test_waveshaper_turns_a_full_scale_cosine_into_the_chosen_harmonics():
    samples, period = 4096, 64
    cosine = 0.999999 * np.cos(2 * np.pi * np.arange(samples) / period)
    x = torch.tensor(np.arctanh(cosine), dtype=torch.float64).reshape(1, 1, -1)  # tanh(x) is the cosine
    weights = torch.tensor([[0.5, 0.0, -0.25, 0.125]], dtype=torch.float64)
    y = dsp.ChebyshevWaveshaper(4)(x, drive_db=torch.zeros(1, 1, dtype=torch.float64), harmonic_gain=weights)
    spectrum = np.abs(np.fft.rfft(y[0, 0].numpy())) * 2 / samples
    harmonics = spectrum[[samples // period * k for k in range(1, 5)]]
    np.testing.assert_allclose(harmonics, [0.5, 0.0, 0.25, 0.125], atol=1e-4)
