"""Filters against scipy: RBJ biquads as scipy's bilinear transform of the
cookbook's analog prototypes, the parametric EQ as scipy's cascade, the FIR EQ
as scipy's firwin2, the crossover as twice scipy's Butterworth; FFT
convolution as numpy's.

Tolerances: the frequency-sampled IIR filters keep the impulse response until
it has fallen below 1e-9 of its peak, so in float64 they match
``scipy.signal.lfilter``/``sosfilt`` to about 1e-10 relative (measured:
below 3e-13); the tests allow 1e-8.
"""

import math

import numpy as np
import pytest
import scipy.signal as signal
import torch

import grafx_dsp as dsp
from grafx_dsp.biquad import FILTER_TYPES, sos_impulse_head, sos_impulse_response

FS = 44100.0
SAMPLES = 8192
RTOL_TIME = 1e-8


def cookbook_analog(filter_type, q, gain_db):
    """The cookbook's analog prototypes H(s), cutoff normalised to 1 rad/s."""
    amp = 10 ** (gain_db / 40)
    sqrt_amp = math.sqrt(amp)
    return {
        "lowpass": ([1], [1, 1 / q, 1]),
        "highpass": ([1, 0, 0], [1, 1 / q, 1]),
        "bandpass": ([1 / q, 0], [1, 1 / q, 1]),
        "notch": ([1, 0, 1], [1, 1 / q, 1]),
        "peak": ([1, amp / q, 1], [1, 1 / (amp * q), 1]),
        "low_shelf": ([amp, amp * sqrt_amp / q, amp * amp], [amp, sqrt_amp / q, 1]),
        "high_shelf": ([amp * amp, amp * sqrt_amp / q, amp], [1, sqrt_amp / q, amp]),
    }[filter_type]


def scipy_design(filter_type, cutoff_hz, q, gain_db, fs=FS):
    """Bilinear transform with the cutoff prewarped, by scipy."""
    b, a = cookbook_analog(filter_type, q, gain_db)
    warped = 2 * fs * math.tan(math.pi * cutoff_hz / fs)
    scale = lambda poly: [c / warped ** (len(poly) - 1 - k) for k, c in enumerate(poly)]  # noqa: E731
    return signal.bilinear(scale(b), scale(a), fs=fs)


SETTINGS = [(60.0, 0.5, -9.0), (1000.0, 0.7071, 6.0), (5000.0, 4.0, 12.0), (18000.0, 12.0, -20.0)]


@pytest.mark.parametrize("filter_type", FILTER_TYPES)
def test_biquad_matches_scipy_bilinear_design_in_frequency_and_time(filter_type):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(len(SETTINGS), 2, SAMPLES, generator=gen, dtype=torch.float64)
    cutoff, q, gain_db = (torch.tensor(column, dtype=torch.float64) for column in zip(*SETTINGS))
    y = dsp.biquad(x, filter_type, cutoff, q, gain_db, FS).numpy()
    b, a = dsp.biquad_coefficients(filter_type, cutoff, q, gain_db, FS)
    for n, (f, qq, g) in enumerate(SETTINGS):
        b_ref, a_ref = scipy_design(filter_type, f, qq, g)
        _, h_ref = signal.freqz(b_ref, a_ref, worN=512, fs=FS)
        _, h = signal.freqz(b[n].numpy(), a[n].numpy(), worN=512, fs=FS)
        np.testing.assert_allclose(h, h_ref, rtol=1e-9, atol=1e-9 * np.abs(h_ref).max())
        y_ref = signal.lfilter(b_ref, a_ref, x[n].numpy(), axis=-1)
        np.testing.assert_allclose(y[n], y_ref, rtol=0, atol=RTOL_TIME * np.abs(y_ref).max())


def test_butterworth_case_equals_scipy_butter():
    b, a = dsp.biquad_coefficients("lowpass", torch.tensor(2000.0, dtype=torch.float64),
                                   torch.tensor(math.sqrt(0.5), dtype=torch.float64), sample_rate=FS)
    b_ref, a_ref = signal.butter(2, 2000.0, fs=FS)
    np.testing.assert_allclose(b.numpy(), b_ref, rtol=1e-12)
    np.testing.assert_allclose(a.numpy(), a_ref, rtol=1e-12)


def test_biquad_processor_runs_in_float32_close_to_scipy():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, SAMPLES, generator=gen)
    y = dsp.Biquad("peak")(x, cutoff_hz=torch.tensor([[300.0]]), q=torch.tensor([[2.0]]),
                           gain_db=torch.tensor([[9.0]]))
    y_ref = signal.lfilter(*scipy_design("peak", 300.0, 2.0, 9.0), x[0, 0].double().numpy())
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y[0, 0].numpy(), y_ref, atol=1e-5 * np.abs(y_ref).max())


def test_parametric_eq_equals_scipy_sosfilt_of_its_bands():
    eq = dsp.ParametricEQ(n_peaks=2)
    params = eq.default_parameters(2, dtype=torch.float64)
    params["low_shelf_gain_db"] = torch.tensor([[6.0], [-4.0]], dtype=torch.float64)
    params["peak_gain_db"] = torch.tensor([[3.0, -12.0], [10.0, 2.0]], dtype=torch.float64)
    params["peak_q"] = torch.tensor([[0.8, 5.0], [2.0, 1.0]], dtype=torch.float64)
    params["high_shelf_gain_db"] = torch.tensor([[-6.0], [3.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, SAMPLES, generator=gen, dtype=torch.float64)
    y = eq(x, **params).numpy()
    for n in range(2):
        bands = [("low_shelf", "low_shelf_cutoff_hz", "low_shelf_q", "low_shelf_gain_db", 0)]
        bands += [("peak", "peak_cutoff_hz", "peak_q", "peak_gain_db", k) for k in range(2)]
        bands += [("high_shelf", "high_shelf_cutoff_hz", "high_shelf_q", "high_shelf_gain_db", 0)]
        sos = np.stack([np.concatenate(scipy_design(kind, float(params[f][n, k]), float(params[q][n, k]),
                                                    float(params[g][n, k])))
                        for kind, f, q, g, k in bands])
        y_ref = signal.sosfilt(sos, x[n].numpy(), axis=-1)
        _, h_ref = signal.sosfreqz(sos, worN=256, fs=FS)
        b, a = eq.coefficients(**{k: v[n:n + 1] for k, v in params.items()})
        _, h = signal.sosfreqz(np.concatenate([b[0].numpy(), a[0].numpy()], axis=-1), worN=256, fs=FS)
        np.testing.assert_allclose(h, h_ref, rtol=1e-9)
        np.testing.assert_allclose(y[n], y_ref, atol=RTOL_TIME * np.abs(y_ref).max())


def test_a_slowly_decaying_eq_computes_only_the_samples_it_uses_and_equals_scipy():
    # A resonant low shelf at 25 Hz takes ~200,000 samples to decay: the filter computes the response's
    # first SAMPLES by its recursion instead of sampling it on a grid that long.
    eq = dsp.ParametricEQ(n_peaks=1)
    params = eq.default_parameters(2, dtype=torch.float64)
    params["low_shelf_cutoff_hz"] = torch.tensor([[25.0], [40.0]], dtype=torch.float64)
    params["low_shelf_q"] = torch.tensor([[18.0], [12.0]], dtype=torch.float64)
    params["low_shelf_gain_db"] = torch.tensor([[-20.0], [12.0]], dtype=torch.float64)
    params["peak_q"] = torch.tensor([[15.0], [0.5]], dtype=torch.float64)
    params["peak_gain_db"] = torch.tensor([[9.0], [-6.0]], dtype=torch.float64)
    b, a = eq.coefficients(**params)
    assert sos_impulse_response(b, a).shape[-1] > 100_000
    head = sos_impulse_head(b, a, SAMPLES)
    assert sos_impulse_response(b, a, SAMPLES).shape[-1] == SAMPLES
    x = torch.randn(2, 2, SAMPLES, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = eq(x, **params).numpy()
    impulse = np.zeros(SAMPLES)
    impulse[0] = 1.0
    for n in range(2):
        sos = np.concatenate([b[n].numpy(), a[n].numpy()], axis=-1)
        h_ref = signal.sosfilt(sos, impulse)
        np.testing.assert_allclose(head[n].numpy(), h_ref, atol=RTOL_TIME * np.abs(h_ref).max())
        y_ref = signal.sosfilt(sos, x[n].numpy(), axis=-1)
        np.testing.assert_allclose(y[n], y_ref, atol=RTOL_TIME * np.abs(y_ref).max())


@pytest.mark.parametrize("samples", [1, 2, 5, 64, 1000])
def test_the_impulse_head_of_a_long_cascade_equals_scipy(samples):
    eq = dsp.GraphicEQ()  # ten sections: their product must not wrap around the transform
    gain_db = torch.randn(2, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 6
    b, a = eq._sections(gain_db)
    head = sos_impulse_head(b, a, samples)
    impulse = np.zeros(samples)
    impulse[0] = 1.0
    for n in range(2):
        h_ref = signal.sosfilt(np.concatenate([b[n].numpy(), a[n].numpy()], axis=-1), impulse)
        np.testing.assert_allclose(head[n].numpy(), h_ref, atol=RTOL_TIME * np.abs(h_ref).max())


def test_the_impulse_heads_gradient_is_autograds_of_the_recursion():
    b, a = dsp.biquad_coefficients("peak", torch.tensor([[60.0]], dtype=torch.float64),
                                   torch.tensor([[9.0]], dtype=torch.float64), torch.tensor([[6.0]], dtype=torch.float64),
                                   FS)
    coefficients = (b.reshape(1, 1, 3).clone().requires_grad_(), a.reshape(1, 1, 3).clone().requires_grad_())
    assert torch.autograd.gradcheck(lambda b_, a_: sos_impulse_head(b_, a_, 300), coefficients)


@pytest.mark.parametrize(("bands", "taps"), [(1, 101), (6, 255), (32, 1023)])
def test_fir_eq_equals_scipy_firwin2_applied_zero_phase(bands, taps):
    eq = dsp.FIREQ(n_bands=bands, taps=taps)
    gen = torch.Generator().manual_seed(bands)
    gain_db = 6.0 * torch.randn(2, bands, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 1, 3001, generator=gen, dtype=torch.float64)
    y = eq(x, gain_db).numpy()
    kernel = eq.kernel(gain_db).numpy()
    nyquist = FS / 2
    for n in range(2):
        linear = 10 ** (gain_db[n].numpy() / 20)
        reference = signal.firwin2(taps, np.r_[0.0, eq.band_hz, nyquist] / nyquist,
                                   np.r_[linear[0], linear, linear[-1]], window="hann")
        np.testing.assert_allclose(kernel[n], reference, atol=1e-12)
        delay = (taps - 1) // 2
        y_ref = np.convolve(x[n, 0].numpy(), reference)[delay:delay + 3001]
        np.testing.assert_allclose(y[n, 0], y_ref, atol=1e-12)


def test_fir_eq_gain_at_band_centres_follows_parameter():
    eq = dsp.FIREQ(n_bands=4, taps=2047)
    gain_db = torch.tensor([[-12.0, 6.0, 0.0, 3.0]], dtype=torch.float64)
    kernel = eq.kernel(gain_db)[0].numpy()
    freqs, response = signal.freqz(kernel, worN=eq.band_hz[1:3], fs=FS)
    np.testing.assert_allclose(20 * np.log10(np.abs(response)), [6.0, 0.0], atol=0.3)


@pytest.mark.parametrize("cutoff_hz", [80.0, 1000.0, 9000.0])
def test_crossover_bands_are_squared_butterworths_and_sum_flat(cutoff_hz):
    impulse = torch.zeros(1, 1, 1 << 15, dtype=torch.float64)
    impulse[..., 0] = 1.0
    low, high = dsp.Crossover()(impulse, cutoff_hz=torch.tensor([[cutoff_hz]], dtype=torch.float64))
    for band, kind in ((low, "lowpass"), (high, "highpass")):
        section = signal.butter(2, cutoff_hz, btype=kind, fs=FS, output="sos")
        reference = signal.sosfilt(np.concatenate([section, section]), impulse[0, 0].numpy())
        np.testing.assert_allclose(band[0, 0].numpy(), reference, atol=1e-9)
    magnitude = np.abs(np.fft.rfft((low + high)[0, 0].numpy()))
    np.testing.assert_allclose(magnitude, 1.0, atol=1e-7)
    at_cutoff = signal.freqz(low[0, 0].numpy(), worN=[cutoff_hz], fs=FS)[1]
    np.testing.assert_allclose(20 * np.log10(np.abs(at_cutoff)), -6.02, atol=0.01)


@pytest.mark.parametrize("samples", [1, 2, 7, 100, 257, 1000])
@pytest.mark.parametrize("taps", [1, 2, 5, 64, 99])
def test_fft_convolve_equals_numpy_convolve_for_odd_and_even_lengths(samples, taps):
    gen = torch.Generator().manual_seed(samples * 100 + taps)
    x = torch.randn(samples, generator=gen, dtype=torch.float64)
    h = torch.randn(taps, generator=gen, dtype=torch.float64)
    full = dsp.fft_convolve(x, h)
    reference = np.convolve(x.numpy(), h.numpy())
    assert full.shape[-1] == samples + taps - 1
    np.testing.assert_allclose(full.numpy(), reference, atol=1e-12 * max(1.0, np.abs(reference).max()))
    np.testing.assert_allclose(dsp.fft_convolve(x, h, mode="causal").numpy(), reference[:samples],
                               atol=1e-12 * max(1.0, np.abs(reference).max()))
