"""A whole pedalboard.Pedalboard as one node: controls, output and gradients."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import torch

from grafx_core.errors import ParameterError
from grafx_pedalboard import PluginParameterError, pedalboard_chain


def board() -> pedalboard.Pedalboard:
    return pedalboard.Pedalboard([
        pedalboard.Compressor(threshold_db=-24, ratio=3, attack_ms=2, release_ms=80),
        pedalboard.Gain(gain_db=2),
        pedalboard.Mix([pedalboard.Gain(gain_db=-3), pedalboard.Chain([pedalboard.PeakFilter(2000, 6, 1.5),
                                                                         pedalboard.Gain(gain_db=1)])]),
        pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.HPF24, cutoff_hz=150, resonance=0.2, drive=2),
        pedalboard.Invert(),
    ])


def test_controls_are_the_prefixed_union_of_the_plugins_controls():
    processor = pedalboard_chain(board())
    names = [s.name for s in processor.specs]
    assert names == [
        "compressor_threshold_db", "compressor_ratio", "compressor_attack_ms", "compressor_release_ms",
        "gain1_gain_db", "gain2_gain_db",
        "peak_filter_cutoff_frequency_hz", "peak_filter_gain_db", "peak_filter_q",
        "gain3_gain_db",
        "ladder_filter_cutoff_hz", "ladder_filter_resonance", "ladder_filter_drive",
    ]
    natural = {k: float(v) for k, v in processor.natural_parameters(
        **{k: torch.tensor([[v]]) for k, v in processor.default_parameters().items()}).items()}
    assert natural["compressor_threshold_db"] == pytest.approx(-24, abs=1e-4)  # starts from the board's values
    assert natural["gain2_gain_db"] == pytest.approx(-3, abs=1e-4)
    assert natural["peak_filter_cutoff_frequency_hz"] == pytest.approx(2000, rel=1e-5)
    assert processor.gradient_kind == "spsa"  # 13 differentiable controls


def test_output_equals_the_board_rendered_by_pedalboard(bursts, record):
    processor = pedalboard_chain(board())
    recording = record(processor)
    gen = torch.Generator().manual_seed(2)
    raw = {s.name: torch.randn(3, 1, generator=gen) for s in processor.specs}
    x = bursts(3)
    y = processor(x, **raw)
    for n, v in enumerate(recording.seen):
        reference = pedalboard.Pedalboard([
            pedalboard.Compressor(v["compressor_threshold_db"], v["compressor_ratio"], v["compressor_attack_ms"],
                                  v["compressor_release_ms"]),
            pedalboard.Gain(v["gain1_gain_db"]),
            pedalboard.Mix([pedalboard.Gain(v["gain2_gain_db"]), pedalboard.Chain([
                pedalboard.PeakFilter(v["peak_filter_cutoff_frequency_hz"], v["peak_filter_gain_db"],
                                      v["peak_filter_q"]), pedalboard.Gain(v["gain3_gain_db"])])]),
            pedalboard.LadderFilter(pedalboard.LadderFilter.Mode.HPF24, v["ladder_filter_cutoff_hz"],
                                    v["ladder_filter_resonance"], v["ladder_filter_drive"]),
            pedalboard.Invert(),
        ])
        np.testing.assert_array_equal(y[n].numpy(), reference(x[n].numpy(), 44100))


def test_gradients_reach_every_differentiable_control(bursts):
    processor = pedalboard_chain(board())
    raw = {k: torch.full((2, 1), v, requires_grad=True) for k, v in processor.default_parameters().items()}
    y = processor(bursts(2), **raw)
    (y * bursts(2, seed=9)).sum().backward()
    for name, value in raw.items():
        assert torch.isfinite(value.grad).all() and (value.grad != 0).all(), name


def test_a_board_function_is_needed_for_plugins_that_cannot_be_copied(bursts, record):
    impulse = np.random.default_rng(0).standard_normal(64).astype(np.float32) * 0.1
    with pytest.raises(PluginParameterError, match="pass a function that builds the board"):
        pedalboard_chain(pedalboard.Pedalboard([pedalboard.Convolution(impulse, 0.5, 44100)]))
    processor = pedalboard_chain(lambda: pedalboard.Pedalboard([pedalboard.Convolution(impulse, 0.5, 44100)]))
    assert [s.name for s in processor.specs] == ["convolution_mix"]
    recording = record(processor)
    x = bursts(1)
    y = processor(x, **processor.raw_parameters(convolution_mix=0.25))
    expected = pedalboard.Convolution(impulse, recording.seen[0]["convolution_mix"], 44100)(x[0].numpy(), 44100)
    np.testing.assert_array_equal(y[0].numpy(), expected)
    with pytest.raises(PluginParameterError, match="not a pedalboard plug-in"):
        pedalboard_chain(lambda: "reverb")


def test_overrides_name_existing_controls():
    processor = pedalboard_chain(board(), differentiable={"compressor_release_ms": False})
    assert not next(s for s in processor.specs if s.name == "compressor_release_ms").differentiable
    with pytest.raises(ParameterError, match="release_ms"):
        pedalboard_chain(board(), differentiable={"release_ms": False})


def test_a_board_value_outside_the_default_range_is_kept_not_clamped(bursts, record):
    # pedalboard's own NoiseGate default threshold (-100 dB) lies below the node's default range
    gate = pedalboard.NoiseGate(threshold_db=-100.0, ratio=4.0)
    processor = pedalboard_chain(pedalboard.Pedalboard([gate, pedalboard.Gain(gain_db=30.0)]))
    specs = {s.name: s for s in processor.specs}
    assert specs["noise_gate_threshold_db"].minimum == -100.0 and specs["gain_gain_db"].maximum == 30.0
    recording = record(processor)
    x = bursts(1)
    y = processor(x, **{k: torch.tensor([[v]]) for k, v in processor.default_parameters().items()})
    # a default at a range's end starts 0.1% of the range inside it (a finite raw value)
    assert recording.seen[0]["noise_gate_threshold_db"] == pytest.approx(-100.0, abs=0.11)
    assert recording.seen[0]["gain_gain_db"] == pytest.approx(30.0, abs=0.1)
    reference = pedalboard.Pedalboard([pedalboard.NoiseGate(threshold_db=recording.seen[0]["noise_gate_threshold_db"],
                                                            ratio=recording.seen[0]["noise_gate_ratio"]),
                                       pedalboard.Gain(gain_db=recording.seen[0]["gain_gain_db"])])
    np.testing.assert_array_equal(y[0].numpy(), reference(x[0].numpy(), 44100))


def test_a_board_value_beyond_the_safe_limits_is_refused_with_its_name():
    # pedalboard accepts a chorus feedback of 0.99 without a word; it rings towards 1e19
    with pytest.raises(PluginParameterError, match=r"Chorus at \(1,\).*feedback=0\.99.*-0\.95"):
        pedalboard_chain(pedalboard.Pedalboard([pedalboard.Gain(), pedalboard.Chorus(feedback=0.99)]))
