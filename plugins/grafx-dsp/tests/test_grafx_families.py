"""The processor families ported from GRAFX, each against an independent
reference: the graphic EQ and the all-pass cascade as scipy's bilinear
transform of their analog prototypes, the state-variable filter as a
trapezoidal SVF run sample by sample, the STFT-masked reverb as a
hand-written overlap-add, the multitap delay as a direct sum, the parallel
mix as its branches applied one at a time; and each type rendered batched
as it renders one node at a time."""

import math

import numpy as np
import pytest
import scipy.signal as signal
import torch

import grafx_dsp as dsp
from grafx_core import Graph, create_empty_parameters, render

FS = 44100.0
RTOL = 1e-8  # the frequency-sampled IIR filters match sosfilt to ~1e-12 (see test_filters)


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def bilinear_sos(analog_sections, fs=FS):
    """Each ``(b(s), a(s), cutoff_hz)`` (cutoff normalised to 1 rad/s) by scipy's
    bilinear transform with the cutoff prewarped, stacked as second-order sections."""
    sections = []
    for b, a, cutoff in analog_sections:
        warped = 2 * fs * math.tan(math.pi * cutoff / fs)
        scale = lambda poly: [c / warped ** (len(poly) - 1 - k) for k, c in enumerate(poly)]  # noqa: E731
        bz, az = signal.bilinear(scale(b), scale(a), fs=fs)
        sections.append(np.concatenate([bz, az]) / az[0])
    return np.array(sections)


def assert_filtered_like(y, x, sos_per_node):
    for node, sos in enumerate(sos_per_node):
        expected = signal.sosfilt(sos, x[node].numpy(), axis=-1)
        np.testing.assert_allclose(y[node].numpy(), expected, rtol=0, atol=RTOL * np.abs(expected).max())


def test_graphic_eq_is_a_cascade_of_fixed_peaking_bands():
    eq = dsp.GraphicEQ(bands_per_octave=1)
    centres = eq.band_hz.numpy()
    np.testing.assert_allclose(centres, 1000 * 2.0 ** np.arange(-5, 5))  # 31.25 Hz .. 16 kHz
    assert eq.q == pytest.approx(math.sqrt(2))  # one octave wide
    gains = torch.tensor([[-12.0, 6, 0, 3, -3, 9, -6, 12, 0, -9], [0.0] * 10], dtype=torch.float64)
    x = noise(2, 2, 4096)
    y = eq(x, gains)
    sos = []
    for row in gains.tolist():
        amps = [10 ** (g / 40) for g in row]
        sos.append(bilinear_sos([([1, amp / eq.q, 1], [1, 1 / (amp * eq.q), 1], f)
                                 for amp, f in zip(amps, centres)]))
    assert_filtered_like(y, x, sos)
    torch.testing.assert_close(y[1], x[1], rtol=0, atol=1e-10)  # all sliders at 0 dB: the identity
    third = dsp.GraphicEQ(bands_per_octave=3).band_hz  # 31.25 Hz .. 16 kHz: 20.16 kHz is above 0.45 fs
    np.testing.assert_allclose(third.numpy(), 1000 * 2.0 ** (np.arange(-15, 13) / 3))


def tpt_state_variable_filter(x, cutoff_hz, q, lowpass, bandpass, highpass, fs=FS):
    """A trapezoidal (topology-preserving) SVF, one sample at a time."""
    g = math.tan(math.pi * cutoff_hz / fs)
    r = 1 / (2 * q)
    s1 = s2 = 0.0
    y = np.empty_like(x)
    for n, sample in enumerate(x):
        hp = (sample - (2 * r + g) * s1 - s2) / (1 + 2 * r * g + g * g)
        bp = g * hp + s1
        s1 = g * hp + bp
        lp = g * bp + s2
        s2 = g * bp + lp
        y[n] = highpass * hp + bandpass * bp + lowpass * lp
    return y


@pytest.mark.parametrize(("cutoff_hz", "q", "mix"), [(200.0, 0.7071, (1.0, 0.0, 0.0)),
                                                   (2000.0, 4.0, (0.5, 1.0, -0.5)),
                                                   (9000.0, 0.3, (0.0, -1.5, 1.0))])
def test_state_variable_filter_matches_a_trapezoidal_svf_run_sample_by_sample(cutoff_hz, q, mix):
    x = noise(1, 1, 3000, seed=2)
    column = lambda value: torch.tensor([[value]], dtype=torch.float64)  # noqa: E731
    y = dsp.StateVariableFilter()(x, column(cutoff_hz), column(q), *(column(m) for m in mix))
    expected = tpt_state_variable_filter(x[0, 0].numpy(), cutoff_hz, q, *mix)
    np.testing.assert_allclose(y[0, 0].numpy(), expected, rtol=0, atol=RTOL * np.abs(expected).max())


def test_allpass_cascade_matches_scipy_and_keeps_the_magnitude():
    cutoff = torch.tensor([[300.0, 3000.0, 12000.0]], dtype=torch.float64)
    q = torch.tensor([[0.5, 2.0, 8.0]], dtype=torch.float64)
    x = noise(1, 2, 4096, seed=3)
    y = dsp.AllPass(n_stages=3)(x, cutoff, q)
    sos = bilinear_sos([([1, -1 / qq, 1], [1, 1 / qq, 1], f) for f, qq in zip(cutoff[0].tolist(), q[0].tolist())])
    assert_filtered_like(y, x, [sos])
    _, response = signal.sosfreqz(sos, worN=512)
    np.testing.assert_allclose(np.abs(response), 1.0, atol=1e-12)


def overlap_add_istft(spectrum, n_fft, hop, length):
    """Inverse STFT by hand: inverse FFT of each centred Hann-windowed frame,
    overlap-added and divided by the summed squared window."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    total = n_fft + hop * (spectrum.shape[-1] - 1)
    out, norm = np.zeros(total), np.zeros(total)
    for m in range(spectrum.shape[-1]):
        out[m * hop:m * hop + n_fft] += np.fft.irfft(spectrum[:, m], n=n_fft) * window
        norm[m * hop:m * hop + n_fft] += window ** 2
    return (out[n_fft // 2:] / norm[n_fft // 2:])[:length]


def test_stft_masked_reverb_masks_every_bin_and_convolves_its_response():
    reverb = dsp.STFTMaskedNoiseReverb(ir_seconds=0.1, n_fft=128)
    bins = reverb.n_fft // 2 + 1
    gain_db = torch.linspace(-30.0, 6.0, 2 * bins, dtype=torch.float64).reshape(1, 2, bins)
    decay_s = torch.linspace(0.05, 2.0, 2 * bins, dtype=torch.float64).flip(0).reshape(1, 2, bins)
    length = 1500
    x = noise(1, 2, length, seed=4)
    y = reverb(x, gain_db, decay_s)
    noise_stft = reverb.noise_stft(x).numpy()
    frame_s = np.arange(noise_stft.shape[-1]) * reverb.hop / FS
    mid_side = []
    for row in range(2):
        mask = 10 ** (gain_db[0, row, :, None].numpy() / 20) * np.exp(
            -math.log(1000) * frame_s / decay_s[0, row, :, None].numpy())
        mid_side.append(overlap_add_istft(noise_stft[row] * mask, reverb.n_fft, reverb.hop, length))
    mid, side = mid_side
    for channel, response in enumerate((mid + side, mid - side)):
        expected = np.convolve(x[0, channel].numpy(), response)[:length]
        np.testing.assert_allclose(y[0, channel].numpy(), expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_multitap_delay_is_a_sum_of_linearly_interpolated_taps():
    x = noise(2, 2, 2000, seed=5)
    delay_ms = torch.tensor([[1.3, 7.0, 20.05], [1.6, 33.3, 60.0]], dtype=torch.float64)
    gain = torch.tensor([[0.9, -0.4, 0.25], [1.0, 0.5, -1.0]], dtype=torch.float64)
    y = dsp.MultitapDelay(n_taps=3)(x, delay_ms, gain).numpy()
    for node in range(2):
        expected = np.zeros((2, 2000))
        for d, g in zip(delay_ms[node].tolist(), gain[node].tolist()):
            position = d * FS / 1000
            whole, fraction = math.floor(position), position - math.floor(position)
            for offset, weight in ((whole, 1 - fraction), (whole + 1, fraction)):
                if offset < 2000:  # the 60 ms tap lands past the end
                    expected[:, offset:] += g * weight * x[node, :, :2000 - offset].numpy()
        np.testing.assert_allclose(y[node], expected, atol=1e-10)


def test_parallel_mix_weights_its_branches_and_passes_their_aux_on():
    class Level(torch.nn.Module):
        def parameter_size(self):
            return {}

        def forward(self, x):
            return x.mean(1, keepdim=True), {"level": x.pow(2).mean((1, 2))}

    mix = dsp.ParallelMix({"drive": dsp.Distortion(), "mono": Level(), "eq": dsp.Biquad("peak")})
    x = noise(3, 2, 512, seed=6)
    params = mix.default_parameters(3, dtype=torch.float64)
    params["weights"] = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.6, 0.4]], dtype=torch.float64)
    y, aux = mix(x, **params)
    drive = dsp.Distortion()(x, **params["drive"])
    mono, mono_aux = Level()(x)
    eq = dsp.Biquad("peak")(x, **params["eq"])
    w = params["weights"][:, :, None, None]
    torch.testing.assert_close(y, w[:, 0] * drive + w[:, 1] * mono + w[:, 2] * eq)
    torch.testing.assert_close(aux["mono.level"], mono_aux["level"])
    assert set(mix.parameter_size()) == {"weights", "drive", "eq"}


@pytest.mark.parametrize("processor", [
    dsp.GraphicEQ(), dsp.StateVariableFilter(), dsp.AllPass(), dsp.MultitapDelay(n_taps=2, sample_rate=1000),
    dsp.STFTMaskedNoiseReverb(ir_seconds=0.05, n_fft=64),
    dsp.ParallelMix([dsp.Distortion(), dsp.StereoWidth()]),
], ids=lambda p: type(p).__name__)
def test_a_batched_render_equals_the_node_by_node_render(processor):
    graph = Graph()
    out = graph.add("out")
    for _ in range(3):
        node = graph.add("fx")
        graph.connect(graph.add("in"), node)
        graph.connect(node, out)
    processors = {"fx": processor}
    params = create_empty_parameters(graph, processors, dtype=torch.float64, std=0.1,
                                     generator=torch.Generator().manual_seed(7))
    x = noise(3, 2, 512, seed=8)
    batched, _ = render(graph, processors, params, x)
    one_by_one, _ = render(graph, processors, params, x, method="one-by-one")
    torch.testing.assert_close(batched, one_by_one, rtol=1e-10, atol=1e-12)
