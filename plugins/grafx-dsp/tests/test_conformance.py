"""Every grafx-dsp processor passes grafx-core's conformance kit, and the
plugin is found through its entry point with exactly those processors."""

import dataclasses

import pytest
import torch
from grafx_core.registry import ENV_ALLOW, ENV_STRICT, Registry
from grafx_core.testing import check_processor

import grafx_dsp as dsp
from grafx_dsp.plugin import PROCESSORS


def with_defaults(processor, **defaults):
    """``processor`` with some documented defaults moved so that, for the kit's
    input (noise of standard deviation 0.5, 256 samples), every parameter
    changes the output: a threshold near the signal's level, an echo that
    lands inside 256 samples."""
    for name, value in defaults.items():
        processor.ranges[name] = dataclasses.replace(processor.ranges[name], default=value)
    return processor


def active_compressor(cls=dsp.Compressor):
    return with_defaults(cls(), threshold_db=-2.0)


# Every registered processor that needs no constructor argument is checked as
# built with none and with no kit options (what a plugin author is promised:
# the declarations tell the kit what to feed). CASES adds the ones that need
# arguments, and the ones whose defaults leave a parameter silent on the kit's
# 256-sample noise: name -> factory of a processor instance.
NO_ARGUMENTS = [spec for spec in PROCESSORS if spec.name not in ("dry_wet", "chain", "parallel_mix")]
CASES = {
    "compressor": active_compressor,
    "sidechain_compressor": lambda: active_compressor(dsp.SidechainCompressor),
    "noise_gate": lambda: with_defaults(dsp.NoiseGate(), threshold_db=-8.0),
    "delay": lambda: with_defaults(dsp.Delay(sample_rate=2000), delay_ms=50.0),
    "multitap_delay": lambda: dsp.MultitapDelay(n_taps=2, sample_rate=1000),  # taps at 100 and 200 samples
    "state_variable_filter": lambda: with_defaults(dsp.StateVariableFilter(), bandpass_gain=0.5, highpass_gain=-0.3),
    "dry_wet": lambda: dsp.DryWet(active_compressor()),
    "chain": lambda: dsp.Chain({"eq": dsp.ParametricEQ(n_peaks=1), "width": dsp.StereoWidth(),
                                "drive": dsp.Distortion()}),
    "parallel_mix": lambda: dsp.ParallelMix({"drive": dsp.Distortion(), "eq": dsp.Biquad("peak")}),
}


# The gate smooths a gain of up to 60 dB in float32: one forward is itself about 1e-6 of the peak away
# from the float64 result, and a block-wise render as far on the other side.
STREAM_ATOL = {"noise_gate": 3e-6}


@pytest.mark.parametrize("spec", NO_ARGUMENTS, ids=lambda spec: spec.name)
def test_every_processor_built_without_arguments_passes_check_processor_without_options(spec, device):
    ran = check_processor(spec.factory(), device=device, stream_atol=STREAM_ATOL.get(spec.name, 1e-6))
    assert "gradcheck" in ran and "streaming" in ran  # every grafx-dsp processor streams


@pytest.mark.parametrize("name", sorted(CASES))
def test_processor_passes_check_processor(name, device):
    ran = check_processor(CASES[name](), device=device, stream_atol=STREAM_ATOL.get(name, 1e-6))
    assert "gradcheck" in ran and "batch-consistency" in ran and "streaming" in ran


def test_every_registered_processor_is_checked_and_autograd():
    assert {spec.name for spec in PROCESSORS} == {spec.name for spec in NO_ARGUMENTS} | set(CASES)
    assert {spec.gradient for spec in PROCESSORS} == {"autograd"}


def test_entry_point_registers_the_plugin_under_dsp(monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "dsp")
    monkeypatch.setenv(ENV_STRICT, "1")
    registry = Registry()
    found = {info.short_name: info for info in registry.list_processors() if info.plugin == "dsp"}
    assert set(found) == {spec.name for spec in PROCESSORS}
    assert found["compressor"].distribution == "grafx-dsp"
    lowpass = registry.get_processor("dsp:lowpass", sample_rate=48000)
    assert isinstance(lowpass, dsp.Biquad)
    assert (lowpass.filter_type, lowpass.sample_rate) == ("lowpass", 48000.0)


@pytest.mark.parametrize("name", ["lowpass", "compressor", "reverb", "fir_eq"])
def test_random_normal_parameters_give_finite_output(name):
    """The soft limits make any real parameter safe, even far outside the ranges."""
    processor = {"compressor": active_compressor, "lowpass": lambda: dsp.Biquad("lowpass"),
                 "reverb": lambda: dsp.NoiseReverb(ir_seconds=0.05, n_fft=128),
                 "fir_eq": lambda: dsp.FIREQ(n_bands=8, taps=255)}[name]()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2, 512, generator=generator)
    params = {key: 30.0 * torch.randn(4, *shape, generator=generator)
              for key, shape in processor.parameter_size().items()}
    assert torch.isfinite(processor(x, **params)).all()
