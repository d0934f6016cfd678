"""Registrations that load but would surprise: a sample rate under another
name, a spec whose gradient disagrees with the module it builds."""

from __future__ import annotations

import warnings

import pytest

from grafx_core import ProcessorSpec
from grafx_core.errors import PluginWarning


def test_a_factory_taking_sr_instead_of_sample_rate_is_warned_about_once(registry, helpers):
    def grafx_style(sr: int = 44100):  # GRAFX processors take the rate as `sr`
        return helpers.Gain()

    registry.register(helpers.make_plugin("mod_sr", [ProcessorSpec("gain", grafx_style),
                                                     ProcessorSpec("fine", helpers.Gain)]), "sr")
    with pytest.warns(PluginWarning, match=r"processor 'sr:gain' .* takes 'sr'.*name the argument sample_rate"):
        registry.list_processors()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.list_processors()  # said once


def test_a_spec_gradient_that_disagrees_with_the_module_is_warned_about(registry, helpers):
    registry.register(helpers.make_plugin("mod_g", [ProcessorSpec("gain", helpers.Gain, gradient="spsa")]), "g")
    with pytest.warns(PluginWarning, match=r"'g:gain'.*declares gradient='spsa'.*gradient_kind 'autograd'"):
        registry.get_processor("g:gain")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.get_processor("g:gain", scale=2.0)  # options may change the gradient on purpose
