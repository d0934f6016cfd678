"""The delay's echoes land where its parameters say; the reverb's measured
decay time and level follow its parameters."""

import math

import numpy as np
import pytest
import scipy.signal as signal
import torch

import grafx_dsp as dsp

FS = 44100.0


def impulse(samples, nodes=1):
    x = torch.zeros(nodes, 1, samples, dtype=torch.float64)
    x[..., 0] = 1.0
    return x


@pytest.mark.parametrize(("delay_ms", "feedback", "mix"), [(10.0, 0.5, 0.5), (20.0, -0.7, 1.0), (50.0, 0.0, 0.3)])
def test_delay_echoes_land_at_multiples_of_the_delay(delay_ms, feedback, mix):
    samples = 8192
    column = lambda value: torch.tensor([[value]], dtype=torch.float64)  # noqa: E731
    y = dsp.Delay()(impulse(samples), delay_ms=column(delay_ms), feedback=column(feedback),
                    mix=column(mix))[0, 0].numpy()
    step = round(delay_ms * FS / 1000)  # 441, 882 and 2205 samples: whole numbers
    expected = np.zeros(samples)
    expected[0] = 1 - mix
    for k in range(1, (samples - 1) // step + 1):
        expected[k * step] = mix * feedback ** (k - 1)
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_fractional_delay_interpolates_linearly_and_matches_a_direct_sum():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 3000, generator=gen, dtype=torch.float64)
    delay_ms, feedback, mix = 4.1, 0.6, 0.8
    y = dsp.feedback_delay(x, delay_ms, feedback, mix, FS)[0].numpy()
    step = delay_ms * FS / 1000
    expected = (1 - mix) * x[0].numpy()
    for k in range(1, int(2999 // step) + 1):
        position, fraction = math.floor(k * step), k * step - math.floor(k * step)
        for offset, weight in ((position, 1 - fraction), (position + 1, fraction)):
            if offset < 3000:
                shifted = np.zeros_like(expected)
                shifted[:, offset:] = x[0].numpy()[:, : 3000 - offset]
                expected += mix * feedback ** (k - 1) * weight * shifted
    np.testing.assert_allclose(y, expected, atol=1e-10)


def decay_time(response, fs=FS):
    """T60 from the Schroeder energy decay curve between -5 and -25 dB (a T20, times 3)."""
    energy = np.cumsum(response[::-1] ** 2)[::-1]
    curve = 10 * np.log10(energy / energy[0])
    start, stop = np.argmax(curve < -5), np.argmax(curve < -25)
    slope = np.polyfit(np.arange(start, stop) / fs, curve[start:stop], 1)[0]
    return -60 / slope


@pytest.mark.parametrize("decay_s", [0.3, 0.8, 1.5])
def test_reverb_measured_decay_time_follows_its_parameter(decay_s):
    reverb = dsp.NoiseReverb(ir_seconds=2 * decay_s + 0.5)
    params = reverb.default_parameters(1, dtype=torch.float64)
    params["decay_s"][:] = decay_s
    y = reverb(impulse(reverb.ir_length), **params)[0].numpy()
    assert decay_time((y[0] + y[1]) / 2) == pytest.approx(decay_s, rel=0.05)
    assert decay_time(y[0]) == pytest.approx(decay_s, rel=0.05)


def test_reverb_decay_is_set_per_band():
    reverb = dsp.NoiseReverb(n_bands=8, ir_seconds=3.0)
    params = reverb.default_parameters(1, dtype=torch.float64)
    params["decay_s"][0, :, :4] = 0.4  # bands up to about 700 Hz
    params["decay_s"][0, :, 5:] = 1.2  # bands from about 3.3 kHz
    mid = reverb(impulse(reverb.ir_length), **params)[0].mean(dim=0).numpy()
    for low_hz, high_hz, expected in ((120.0, 280.0, 0.4), (4000.0, 7000.0, 1.2)):
        band = signal.sosfilt(signal.butter(4, [low_hz, high_hz], btype="band", fs=FS, output="sos"), mid)
        assert decay_time(band) == pytest.approx(expected, rel=0.1)


def test_reverb_gain_scales_the_response_and_side_gain_sets_the_width():
    reverb = dsp.NoiseReverb(ir_seconds=0.5)
    params = reverb.default_parameters(2, dtype=torch.float64)
    params["gain_db"][1] -= 6.0
    y = reverb(impulse(reverb.ir_length, nodes=2), **params)
    torch.testing.assert_close(y[1], y[0] * 10 ** (-6 / 20))
    params["gain_db"][:, 1] = -80.0  # no side: left and right alike
    narrow = reverb(impulse(reverb.ir_length, nodes=2), **params)[0].numpy()
    assert np.corrcoef(narrow[0], narrow[1])[0, 1] > 0.999


def test_reverb_first_called_under_inference_mode_still_trains():
    """The cached noise spectrum must not become an inference tensor."""
    reverb = dsp.NoiseReverb(ir_seconds=0.05, n_fft=128)
    x = impulse(reverb.ir_length)
    params = reverb.default_parameters(1, dtype=torch.float64)
    with torch.inference_mode():
        preview = reverb(x, **params)
    decay_s = params["decay_s"].clone().requires_grad_()
    y = reverb(x, gain_db=params["gain_db"], decay_s=decay_s)
    y.square().sum().backward()
    torch.testing.assert_close(y.detach(), preview.clone())
    assert decay_s.grad is not None and decay_s.grad.abs().sum() > 0
