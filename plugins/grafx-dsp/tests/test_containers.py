"""Containers equal the processors they hold, composed by hand."""

import pytest
import torch
from grafx_core import ParameterError

import grafx_dsp as dsp


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_dry_wet_mixes_the_first_inlet_with_the_wrapped_output():
    inner = dsp.SidechainCompressor()
    wrapped = dsp.DryWet(inner)
    assert wrapped.inlets == ("main", "sidechain")
    assert wrapped.parameter_size() == {"mix": (1,), "processor": inner.parameter_size()}
    x, side = noise(2, 2, 1000), noise(2, 1, 1000, seed=1)
    params = wrapped.default_parameters(2, dtype=torch.float64)
    params["mix"] = torch.tensor([[0.25], [1.0]], dtype=torch.float64)
    wet = inner(x, side, **params["processor"])
    torch.testing.assert_close(wrapped(x, side, **params), 0.75 * x * torch.tensor([1.0, 0.0]).reshape(2, 1, 1)
                               .to(x) + params["mix"].reshape(2, 1, 1) * wet)


def test_dry_wet_spreads_a_mono_dry_signal_over_a_stereo_wet_one():
    wrapped = dsp.DryWet(dsp.StereoGain())
    x = noise(1, 1, 64)
    params = wrapped.default_parameters(1, dtype=torch.float64)
    params["mix"][:] = 0.5
    torch.testing.assert_close(wrapped(x, **params), 0.5 * x + 0.5 * dsp.StereoGain()(x, **params["processor"]))


def test_chain_equals_its_stages_applied_in_turn_and_ends_in_their_outlets():
    stages = {"eq": dsp.ParametricEQ(n_peaks=1), "mono": dsp.StereoToMidSide(), "split": dsp.Crossover()}
    with pytest.raises(ValueError, match="stage 'mono'.*one outlet"):
        dsp.Chain(stages)
    chain = dsp.Chain([dsp.ParametricEQ(n_peaks=1), dsp.MonoToStereo(), dsp.Distortion(), dsp.Crossover()])
    assert chain.outlets == ("low", "high")
    assert set(chain.parameter_size()) == {"0", "2", "3"}  # the stage without parameters is left out
    x = noise(2, 1, 512)
    params = chain.default_parameters(2, dtype=torch.float64)
    params["0"]["peak_gain_db"][:] = 9.0
    y = dsp.ParametricEQ(n_peaks=1)(x, **params["0"])
    y = dsp.Distortion()(dsp.MonoToStereo()(y), **params["2"])
    expected = dsp.Crossover()(y, **params["3"])
    for got, want in zip(chain(x, **params), expected):
        torch.testing.assert_close(got, want)


def test_chain_rejects_parameters_for_unknown_stages():
    chain = dsp.Chain({"drive": dsp.Distortion()})
    with pytest.raises(ParameterError, match=r"\['driv'\] name no stage"):
        chain(noise(1, 1, 8), driv={"drive_db": torch.zeros(1, 1)})
