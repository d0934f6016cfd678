"""The sox compand twin against sox itself, and the learned impulse response against scipy."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

import grafx_dsp as dsp

soundfile = pytest.importorskip("soundfile", reason="soundfile reads sox's float WAV")


def _snr_db(a, ref):
    return 10 * np.log10((ref**2).sum() / ((a - ref) ** 2).sum())


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (apt-get install sox)")
@pytest.mark.parametrize("threshold, ratio, knee, attack, decay, initial", [(-20.0, 3.0, 6.0, 0.005, 0.1, 0.0),
                                                                             (-35.0, 1.5, 2.0, 0.001, 0.3, -40.0)])
def test_sox_compand_twin_equals_sox(tmp_path, threshold, ratio, knee, attack, decay, initial):
    rng = np.random.default_rng(0)
    rate, n = 44100, 22050
    t = np.arange(n) / rate
    # Bursts of noise and tone at levels across the knee, on two channels that differ.
    envelope = 0.6 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 3 + 0.01
    x = np.stack([envelope * rng.standard_normal(n) * 0.5, envelope * np.sin(2 * np.pi * 220 * t)]) * 0.9
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    soundfile.write(source, x.T, rate, subtype="FLOAT")
    top = threshold * (1 - 1 / ratio)
    subprocess.run(["sox", "-D", "-V1", str(source), "-e", "floating-point", "-b", "32", str(out), "compand",
                    f"{attack},{decay}", f"{knee}:-90,-90,{threshold},{threshold},0,{top}", "0", f"{initial}"],
                   check=True)
    reference = soundfile.read(out, dtype="float64")[0].T
    params = [torch.tensor([[v]], dtype=torch.float64)
              for v in (threshold, ratio, knee, attack * 1e3, decay * 1e3, 0.0, initial)]
    twin = dsp.SoxCompand(rate)(torch.from_numpy(x)[None], *params)[0].numpy()
    assert _snr_db(x, reference) < 10  # the test compresses audibly
    assert _snr_db(twin, reference) > 90  # sox computes in 32-bit integers


def test_sox_transfer_is_flat_below_the_knee_and_follows_the_ratio_above():
    level = torch.tensor([-60.0, -27.0, -10.0, -5.0], dtype=torch.float64)
    gain = dsp.sox_transfer_db(level, torch.tensor(-20.0, dtype=torch.float64), torch.tensor(4.0, dtype=torch.float64),
                               torch.tensor(3.0, dtype=torch.float64))
    assert gain[:2].abs().max() < 1e-12
    np.testing.assert_allclose(gain[3] - gain[2], (1 / 4 - 1) * 5.0, rtol=1e-9)


def test_impulse_response_equals_scipy_convolution():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1, 5000))
    ir = rng.standard_normal((3, 2, 700)) * 0.1
    out = dsp.ImpulseResponse(taps=700)(torch.from_numpy(x), torch.from_numpy(ir)).numpy()
    for node in range(3):
        for channel in range(2):
            expected = fftconvolve(x[node, 0], ir[node, channel])[:5000]
            np.testing.assert_allclose(out[node, channel], expected, atol=1e-10)
