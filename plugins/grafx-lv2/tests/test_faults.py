"""A plug-in that crashes, hangs or fails is a named error, and the others keep working."""

from __future__ import annotations

import sys

import pytest
import torch

from grafx_core import PluginError, Registry
from grafx_lv2 import LV2InstantiationError, LV2PluginCrashError, LV2UnsupportedPluginError, lv2_processor
from grafx_lv2 import probe as probe_module


@pytest.fixture
def child(monkeypatch):
    """``child(code)``: the probe runs ``python -c code`` instead of trying the plug-in (fresh cache)."""

    def use(code: str) -> None:
        monkeypatch.setattr(probe_module, "_COMMAND", [sys.executable, "-c", code])
        monkeypatch.setattr(probe_module, "_done", {})

    return use


@pytest.mark.parametrize("code, error, match", [
    ("import os; os.abort()", LV2PluginCrashError, r"lv2:calf_saturator \(http://calf.*\): crashed with signal 6"),
    ("import time; time.sleep(30)", LV2PluginCrashError, r"lv2:calf_saturator .*: hung \(no answer within 0.5 s"),
    ("import sys; sys.exit('no instance')", LV2InstantiationError, r"failed in a separate process: no instance"),
])
def test_a_crash_a_hang_or_a_failure_is_named_and_the_next_plugin_still_loads(require, child, monkeypatch, code,
                                                                              error, match):
    require("calf_saturator"), require("dpf_3_band_eq")
    monkeypatch.setattr(probe_module, "PROBE_TIMEOUT", 0.5)
    child(code)
    with pytest.raises(PluginError, match=match) as raised:  # the registry names the factory that failed
        Registry().get_processor("lv2:calf_saturator")
    assert isinstance(raised.value.__cause__, error)
    monkeypatch.undo()
    assert Registry().get_processor("lv2:dpf_3_band_eq").name == "lv2:dpf_3_band_eq"


def test_the_real_probe_runs_a_plugin_in_a_child_process(require, monkeypatch):
    name = require("dpf_3_band_eq")
    monkeypatch.setattr(probe_module, "_done", {})
    lv2_processor(name, sample_rate=32000.0)
    assert ("http://distrho.sf.net/plugins/3BandEQ", 32000.0, 1024) in probe_module._done


def test_a_random_plugin_is_refused_by_name_unless_accepted(require):
    from grafx_core import NondeterministicEffectError

    name = require("lsp_noise_generator_x1")
    x = torch.zeros(1, 1, 1024)
    refused = lv2_processor(name, include=[])
    with pytest.raises(NondeterministicEffectError, match=r"'lv2:lsp_noise_generator_x1'.*even fresh instances"):
        refused(x)
    assert lv2_processor(name, include=[], check_determinism=False)(x).shape == x.shape


def test_a_plugin_that_blows_up_only_at_the_asked_rate_is_refused(require, monkeypatch):
    name = require("calf_saturator")  # its filters blow up at 8 kHz (then it outputs zeros); fine at 44.1 kHz
    monkeypatch.setattr(probe_module, "_done", {})
    with pytest.raises(LV2UnsupportedPluginError, match=r"at 8000 Hz, .*peak .* but not at 44100 Hz: it does not "
                                                        r"work at this sample rate"):
        lv2_processor(name, sample_rate=8000)
    assert lv2_processor(name, sample_rate=44100).sample_rate == 44100
