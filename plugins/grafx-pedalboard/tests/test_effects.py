"""The effect table: registration, ranges that keep pedalboard safe, options and overrides."""

from __future__ import annotations

import warnings

import numpy as np
import pedalboard
import pytest
import torch

import grafx_core
from grafx_core.errors import ParameterError
from grafx_pedalboard import EFFECTS, EffectOptionError, effect_specs, pedalboard_chain, pedalboard_processor

IMPULSE = np.exp(-np.arange(500) / 80.0) * np.random.default_rng(5).standard_normal(500) * 0.2


def make(name: str, **kwargs):
    options = {"impulse_response": IMPULSE} if name == "convolution" else {}
    return pedalboard_processor(name, **options, **kwargs)


def test_every_effect_is_registered_by_name_with_its_gradient_kind():
    listed = {info.name: info for info in grafx_core.list_processors()}
    for name in EFFECTS:
        info = listed[f"pedalboard:{name}"]
        processor = grafx_core.get_processor(
            f"pedalboard:{name}", **({"impulse_response": IMPULSE} if name == "convolution" else {}))
        assert processor.gradient_kind == info.gradient
        assert processor.name == f"pedalboard:{name}"
    assert {"pedalboard:chain", "pedalboard:external"} <= set(listed)


def test_frequencies_times_and_ratios_use_a_log_scale():
    for name, effect in EFFECTS.items():
        for spec in effect_specs(effect):
            if spec.name.endswith(("_hz", "_ms", "_seconds", "ratio", "sample_rate", "drive")):
                assert spec.scale == "log", f"{name}.{spec.name}"


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_out_of_range_raw_values_never_reach_pedalboard(bursts, record, name):
    processor = make(name)
    recording = record(processor)
    specs = processor.specs
    # node rows: every control far below its range, far above it, and a mix of both
    raw = {s.name: torch.tensor([[-1e6], [1e6], [(-1e6, 1e6)[i % 2]]]) for i, s in enumerate(specs)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = processor(bursts(3, samples=4410), **raw)
    assert torch.isfinite(y).all()
    assert len(recording.seen) == 3
    for natural in recording.seen:
        for spec in specs:
            assert spec.minimum <= natural[spec.name] <= spec.maximum, f"{spec.name}={natural[spec.name]}"
    for spec in specs:  # the extremes are the range's ends, not clipped short of them
        assert recording.seen[0][spec.name] == pytest.approx(spec.minimum, rel=1e-6, abs=1e-9)
        assert recording.seen[1][spec.name] == pytest.approx(spec.maximum, rel=1e-6)


def test_unchecked_feedback_is_kept_where_pedalboard_stays_finite(bursts):
    # pedalboard accepts a Phaser feedback of 1.2 and returns NaN: the range must stop short of it
    x = bursts(1)[0].numpy()
    assert not np.isfinite(pedalboard.Phaser(feedback=1.2)(x, 44100)).all()
    for name in ("chorus", "phaser"):
        spec = next(s for s in make(name).specs if s.name == "feedback")
        assert -1 < spec.minimum and spec.maximum < 1
    with pytest.raises(ParameterError, match="feedback"):
        make("phaser", ranges={"feedback": (-0.5, 1.2)})


def test_range_overrides_narrow_the_range_and_are_checked():
    processor = make("compressor", ranges={"threshold_db": (-30.0, -10.0)})
    spec = processor.specs[0]
    assert (spec.minimum, spec.maximum, spec.default) == (-30.0, -10.0, -20.0)
    with pytest.raises(ParameterError, match="threshold_db"):
        make("compressor", ranges={"threshold_db": (-300.0, 0.0)})
    with pytest.raises(ParameterError, match="no control 'thresh'"):
        make("compressor", ranges={"thresh": (-30.0, 0.0)})
    with pytest.raises(ParameterError, match="log scale"):
        make("chorus", ranges={"rate_hz": (0.0, 5.0)})


def test_frequency_ceilings_follow_the_sample_rate():
    for rate in (16000, 44100, 96000):
        cutoff = make("lowpass_filter", sample_rate=rate).specs[0]
        assert cutoff.maximum == pytest.approx(min(20000.0, 0.45 * rate))


def test_sample_rates_from_numpy_are_taken_and_bad_ones_refused_by_every_factory():
    assert make("lowpass_filter", sample_rate=np.int64(16000)).sample_rate == 16000.0
    assert pedalboard_chain(pedalboard.Gain(), sample_rate=np.float32(22050)).sample_rate == 22050.0
    for bad in (True, -5, float("nan"), "44100"):
        with pytest.raises(EffectOptionError, match=r"pedalboard:gain: sample_rate must be a positive number"):
            make("gain", sample_rate=bad)
        with pytest.raises(EffectOptionError, match=r"pedalboard:chain: sample_rate must be a positive number"):
            pedalboard_chain(pedalboard.Gain(), sample_rate=bad)
    with pytest.raises(EffectOptionError, match="not 11025.5 Hz"):
        make("mp3_compressor", sample_rate=11025.5)


def test_options_reach_the_effect(bursts, record):
    x = bursts(1)
    processor = make("ladder_filter", mode="HPF24")
    recording = record(processor)
    y = processor(x, **processor.raw_parameters(cutoff_hz=800.0, resonance=0.3, drive=2.0))
    expected = pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.HPF24, **recording.seen[0])
    np.testing.assert_array_equal(y[0].numpy(), expected(x[0].numpy(), 44100))
    frozen = make("reverb", freeze_mode=True)
    recording = record(frozen)
    y = frozen(x, **{k: torch.tensor([[v]]) for k, v in frozen.default_parameters().items()})
    expected = pedalboard.Reverb(freeze_mode=1.0, **recording.seen[0])
    np.testing.assert_array_equal(y[0].numpy(), expected(x[0].numpy(), 44100))


def test_bad_options_name_the_effect_and_what_is_allowed():
    with pytest.raises(EffectOptionError, match="pedalboard:ladder_filter.*'LPF12'"):
        make("ladder_filter", mode="LPF96")
    with pytest.raises(EffectOptionError, match=r"unknown options \['mode'\]"):
        make("compressor", mode="LPF12")
    with pytest.raises(EffectOptionError, match="freeze_mode must be True or False"):
        make("reverb", freeze_mode=0.7)
    with pytest.raises(EffectOptionError, match="32000, 44100, 48000"):
        make("mp3_compressor", sample_rate=96000)
    with pytest.raises(EffectOptionError, match="impulse_response is required"):
        pedalboard_processor("convolution")
    with pytest.raises(KeyError, match="known effects"):
        pedalboard_processor("flanger")


def test_marking_a_step_control_differentiable_lets_a_surrogate_train_it(bursts):
    # delay time moves in whole samples; a straight-through surrogate (here: the
    # loss slope of a smooth stand-in) can still drive it when asked to
    def surrogate(x, delay_seconds, feedback, mix):
        return x * (1 + 0 * feedback[:, None, None] + 0 * mix[:, None, None]) * delay_seconds[:, None, None]

    processor = make("delay", differentiable={"delay_seconds": True}, estimator="straight-through",
                     estimator_options={"surrogate": surrogate})
    assert all(s.differentiable for s in processor.specs)
    raw = {k: torch.tensor([[v]], requires_grad=True) for k, v in processor.default_parameters().items()}
    x = bursts(1)
    processor(x, **raw).sum().backward()
    assert float(raw["delay_seconds"].grad.abs().sum()) > 0
