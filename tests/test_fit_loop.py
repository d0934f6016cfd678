"""The fitting loop's stopping rules (early stopping, time budget) and what the report says was applied."""

from __future__ import annotations

import time

import pytest
import torch

from grafx_core.commands._arguments import duration
from grafx_core.fitting.latent import LatentParameters
from grafx_core.fitting.loop import fit
from grafx_core.fitting.metrics import log_spectral_distance_db


def _scripted(losses: list[float]):
    """A fit whose loss at step k is losses[k], whatever the parameters (the gradient is zero)."""
    latent = LatentParameters({"gain": {"gain_db": torch.zeros(1, 1)}}, {"gain": object()})
    calls = iter(range(10**6))

    def loss(values):
        k = next(calls)
        return values["gain"]["gain_db"].sum() * 0 + losses[min(k, len(losses) - 1)]

    return latent, loss


def test_a_loss_still_falling_slowly_is_not_called_converged():
    # 0.09 % a step: never 0.1 % in one step, but 3.5 % over 40 steps (the case the old rule stopped).
    losses = [0.9991**k for k in range(101)]
    latent, loss = _scripted(losses)
    result = fit(lambda p: p, latent, loss, 100, patience=40)
    assert result.stopped == "completed" and result.steps == 100


def test_a_flat_loss_converges_after_patience_steps():
    losses = [1.0 - 1e-6 * k for k in range(200)]
    latent, loss = _scripted(losses)
    result = fit(lambda p: p, latent, loss, 200, patience=40)
    assert result.stopped == "converged" and result.steps == 41


def test_a_time_budget_ends_the_fit_and_the_learning_rate_decays_with_the_time_spent():
    latent = LatentParameters({"gain": {"gain_db": torch.zeros(1, 1)}}, {"gain": object()})

    def slow(values):
        time.sleep(0.05)
        return values

    rates = []

    class Log:
        def record(self, step, loss, rate, seconds):
            rates.append(rate)

    result = fit(slow, latent, lambda p: (p["gain"]["gain_db"] - 12.0).pow(2).sum(), 10_000, 0.1,
                 log=Log(), seconds=0.5)
    assert result.stopped == "time" and 3 <= result.steps < 15
    assert rates[0] == pytest.approx(0.1, rel=1e-2) and 0.01 <= rates[-1] < 0.06


def test_durations_read_as_seconds():
    assert [duration(t) for t in ("90", "90s", "2m", "1m30s", "0.5h")] == [90, 90, 120, 90, 1800]
    for bad in ("", "2 m", "m", "0", "-3s", "1x"):
        with pytest.raises(Exception, match="duration"):
            duration(bad)


def test_log_spectral_distance_counts_only_the_audible_band():
    rate = 96000
    generator = torch.Generator().manual_seed(0)
    music = 0.1 * torch.randn(1, rate // 2, generator=generator, dtype=torch.float64)
    spectrum = torch.fft.rfft(torch.randn(1, rate // 2, generator=generator, dtype=torch.float64))
    spectrum[..., torch.fft.rfftfreq(rate // 2, 1 / rate) < 25000] = 0
    hiss = torch.fft.irfft(spectrum, rate // 2)  # all above hearing, as loud as the music
    audible = log_spectral_distance_db(music + hiss, music, sample_rate=rate)
    assert audible < 0.5 and log_spectral_distance_db(music + hiss, music) > 10 * audible


def test_out_of_range_values_are_reported_as_applied():
    pytest.importorskip("grafx_dsp")
    from grafx_dsp.gain import StereoGain

    from grafx_core.fitting.report import natural_parameters, outside_range

    fader = StereoGain(sample_rate=44100)
    held = {"dsp:stereo_gain": {"gain_db": torch.tensor([[-6.0], [3.0]]), "pan": torch.tensor([[1.5], [0.25]])}}
    applied = natural_parameters({"dsp:stereo_gain": fader}, held)["dsp:stereo_gain"]
    assert 1.0 < float(applied["pan"][0]) < 1.05 and float(applied["pan"][1]) == 0.25
    assert applied["gain_db"].flatten().tolist() == [-6.0, 3.0]
    assert outside_range({"dsp:stereo_gain": fader}, held) == {"dsp:stereo_gain": {"pan": [[1.5], [0.25]]}}


def test_a_fitted_mix_peaking_far_above_its_target_is_warned_about():
    from grafx_core.fitting.session import _peak_warnings

    target = torch.full((2, 100), 0.5)  # -6 dBFS
    quiet = _peak_warnings({"target": target, "initial": target, "fitted": 0.6 * target})
    loud = _peak_warnings({"target": target, "initial": target, "fitted": 2.4 * target})  # +1.6 dBFS
    assert quiet == []
    assert any("fitted.wav peaks 7.6 dB above the target" in w for w in loud)
    assert any(w.startswith("fitted.wav peaks at +1.6 dBFS") for w in loud)


def test_a_loss_that_becomes_nan_is_a_named_grafx_error():
    from grafx_core import GrafxError, NonFiniteLossError

    latent, loss = _scripted([1.0, 0.9, 0.8, float("nan")])
    with pytest.raises(NonFiniteLossError, match=r"nan at step 3 .*learning rate") as caught:
        fit(lambda p: p, latent, loss, 10)
    # The CLI reports GrafxErrors in one line; callers catching FloatingPointError keep working.
    assert isinstance(caught.value, GrafxError) and isinstance(caught.value, FloatingPointError)
