"""Discovery: installed plug-ins become named processors without being instantiated."""

from __future__ import annotations

import pytest

from grafx_core import Registry
from grafx_lv2 import LV2PluginNotFoundError, lv2_processor
from grafx_lv2 import instance as instance_module
from grafx_lv2.plugin import grafx_register_processors


def test_installed_plugins_are_listed_by_name_with_their_uri_and_none_is_instantiated(require, monkeypatch):
    require("lsp_compressor_stereo")

    def refuse(*args, **kwargs):
        raise AssertionError("listing instantiated a plug-in")

    monkeypatch.setattr(instance_module.Instance, "__init__", refuse)
    specs = {s.name: s for s in grafx_register_processors()}
    assert "plugin" in specs and len(specs) > 100
    assert specs["lsp_compressor_stereo"].description == (
        "LSP Compressor Stereo (http://lsp-plug.in/plugins/lv2/compressor_stereo)")
    assert specs["lsp_compressor_stereo"].gradient == "spsa"  # 24 continuous controls
    # Instruments and MIDI tools have no audio input: not processors.
    assert not any(name.startswith("x42_midifilter") for name in specs)


def test_the_registry_finds_them_through_the_entry_point(require):
    require("dpf_3_band_eq")
    registry = Registry()
    info = registry.processor_info("lv2:dpf_3_band_eq")
    assert info.distribution == "grafx-lv2" and "http://distrho.sf.net/plugins/3BandEQ" in info.description
    processor = registry.get_processor("lv2:dpf_3_band_eq", sample_rate=48000.0)
    assert processor.name == "lv2:dpf_3_band_eq" and processor.sample_rate == 48000.0


def test_a_missing_plugin_is_named_and_near_names_are_suggested(require):
    require("lsp_compressor_stereo")
    with pytest.raises(LV2PluginNotFoundError, match=r"'lsp_compresor_stereo'.*did you mean.*lsp_compressor_stereo"):
        lv2_processor("lsp_compresor_stereo")


def test_the_listing_marks_plug_ins_this_host_cannot_load(require):
    from grafx_core import PluginError, get_processor, list_processors

    name = require("urn_dragonfly_room")  # needs the LV2 worker feature
    listed = {info.spec.name: info.spec.description for info in list_processors() if info.plugin == "lv2"}
    assert listed[name].endswith("[will not load: needs LV2 worker#schedule]")
    assert "will not load" not in listed[require("calf_reverb")]
    with pytest.raises(PluginError, match="LV2UnsupportedPluginError.*worker#schedule"):
        get_processor(f"lv2:{name}")
