"""Gain, pan and the stereo image against their formulas."""

import math

import pytest
import torch

import grafx_dsp as dsp
from grafx_dsp import ChannelCountError


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_gain_is_pedalboards_decibel_curve():
    x = noise(3, 2, 100)
    gain_db = torch.tensor([[-12.0], [0.0], [7.5]], dtype=torch.float64)
    expected = x * torch.tensor([10 ** (-0.6), 1.0, 10 ** (7.5 / 20)], dtype=torch.float64).reshape(3, 1, 1)
    torch.testing.assert_close(dsp.Gain()(x, gain_db=gain_db), expected)


def test_pan_keeps_constant_power_and_reaches_the_sides():
    pans = torch.linspace(-1, 1, 21, dtype=torch.float64).unsqueeze(1)
    x = noise(21, 1, 256)
    y = dsp.StereoGain()(x, gain_db=torch.zeros_like(pans), pan=pans)
    torch.testing.assert_close(y.square().sum(dim=1), x[:, 0].square())
    torch.testing.assert_close(y[0, 1], torch.zeros(256, dtype=torch.float64), atol=1e-15, rtol=0)
    torch.testing.assert_close(y[-1, 0], torch.zeros(256, dtype=torch.float64), atol=1e-15, rtol=0)
    torch.testing.assert_close(y[10, 0], x[10, 0] / math.sqrt(2))  # centre: -3 dB each side


def test_stereo_gain_scales_each_channel_of_a_stereo_input():
    x = noise(1, 2, 64)
    y = dsp.StereoGain()(x, gain_db=torch.tensor([[6.0]], dtype=torch.float64),
                         pan=torch.tensor([[0.5]], dtype=torch.float64))
    left, right = math.cos(3 * math.pi / 8), math.sin(3 * math.pi / 8)
    torch.testing.assert_close(y, x * 10 ** 0.3 * torch.tensor([left, right], dtype=torch.float64).reshape(1, 2, 1))


def test_width_scales_the_side_signal_only():
    x = noise(3, 2, 128)
    width = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    y = dsp.StereoWidth()(x, width=width)
    mid, side = (x[:, 0] + x[:, 1]) / 2, (x[:, 0] - x[:, 1]) / 2
    torch.testing.assert_close((y[:, 0] + y[:, 1]) / 2, mid)
    torch.testing.assert_close((y[:, 0] - y[:, 1]) / 2, side * width)


def test_mid_side_round_trip_is_exact_and_mono_to_stereo_copies():
    x = noise(2, 2, 99)
    mid, side = dsp.StereoToMidSide()(x)
    assert mid.shape == side.shape == (2, 1, 99)
    torch.testing.assert_close(dsp.MidSideToStereo()(mid, side), x, rtol=0, atol=1e-15)
    mono = noise(2, 1, 50)
    torch.testing.assert_close(dsp.MonoToStereo()(mono), mono.repeat(1, 2, 1))


@pytest.mark.parametrize(("processor", "channels"), [
    (dsp.StereoWidth(), 1), (dsp.StereoToMidSide(), 3), (dsp.MonoToStereo(), 2), (dsp.StereoGain(), 4)])
def test_wrong_channel_count_names_processor_and_inlet(processor, channels):
    x = torch.zeros(1, channels, 8)
    params = {name: torch.zeros(1, *shape) for name, shape in processor.parameter_size().items()}
    with pytest.raises(ChannelCountError, match=f"{type(processor).__name__}: inlet 'main'"):
        processor(x, **params)
