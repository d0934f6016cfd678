"""Ports become specs: log ranges from 0, discrete controls, held designations, fixed and excluded ports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grafx_core import Graph, create_empty_parameters, describe
from grafx_lv2 import LV2PortError, lv2_processor, port_values
from grafx_lv2.controls import parameter_name
from grafx_lv2.world import world


def test_lsp_compressor_ports_map_to_log_discrete_and_held_controls(require):
    processor = lv2_processor(require("lsp_compressor_stereo"))
    specs = {s.name: s for s in processor.specs}
    # Log ranges from 0 (9 of this plug-in's ports) are shifted log scales that reach 0 itself.
    assert (specs["at"].minimum, specs["at"].maximum, specs["at"].scale) == (0.0, 2000.0, "log")
    assert specs["cr"].scale == "log" and specs["cr"].minimum == 1.0  # a plain log range
    assert specs["scm"].values == (0.0, 1.0, 2.0, 3.0) and not specs["scm"].differentiable  # an enumeration
    assert specs["pause"].values == (0.0, 1.0)  # a toggle
    assert [parameter_name(s) for s in ("x", "clear", "at")] == ["x_", "clear", "at"]  # x is forward's signal
    g = Graph()
    g.connect(g.add("in"), g.add("comp"))
    g.connect(1, g.add("out"))
    assert sorted(create_empty_parameters(g, {"comp": processor})["comp"]) == sorted(specs)
    assert "enabled" not in specs and "out_latency" not in specs  # lv2:enabled is held; outputs are not controls
    defaults = {k: torch.tensor([[v]], dtype=torch.float64) for k, v in processor.default_parameters().items()}
    values = port_values(processor, **defaults)[0]
    assert values["enabled"] == 1.0
    on_bound = 0
    for port in world().ports(processor.process.uri):
        if port.kind == "control" and port.direction == "input":
            # Every default reaches the plug-in exactly (from float64 raw values), on a bound or not.
            assert values[port.symbol] == np.float32(port.default), port.symbol
            on_bound += port.default in (port.minimum, port.maximum)
    assert on_bound >= 20


def test_fixed_excluded_and_included_ports(require):
    name = require("lsp_compressor_stereo")
    processor = lv2_processor(name, fixed={"cr": 1.0, "sla": 5.0}, exclude=["g_in"], differentiable={"at": False})
    names = [s.name for s in processor.specs]
    assert not {"cr", "sla", "g_in"} & set(names) and "at" in names
    assert not next(s for s in processor.specs if s.name == "at").differentiable
    defaults = {k: torch.tensor([[v]], dtype=torch.float64) for k, v in processor.default_parameters().items()}
    values = port_values(processor, **defaults)[0]
    assert values["cr"] == 1.0 and values["sla"] == 5.0 and values["g_in"] == 1.0
    assert [s.name for s in lv2_processor(name, include=["at", "rt"]).specs] == ["at", "rt"]


@pytest.mark.parametrize("options, match", [
    (dict(fixed={"ratio": 2.0}), r"fixed names \['ratio'\].*input controls are \['enabled', 'g_in'"),
    (dict(fixed={"cr": 500.0}), r"fixed cr=500 is outside its range \[1, 100\]"),
    (dict(fixed={"scm": 1.5}), r"fixed scm=1.5 is not one of its values \{0, 1, 2, 3\}"),
    (dict(exclude=["nope"]), r"exclude names \['nope'\]"),
    (dict(differentiable={"scm": True}), r"port 'scm' is discrete .* cannot be differentiable"),
    (dict(fixed=[1.0]), r"fixed must be a mapping \{symbol: number\}"),
    (dict(include="at"), r"include must be a list of port symbols"),
])
def test_bad_port_options_name_the_plugin_and_the_port(require, options, match):
    with pytest.raises(LV2PortError, match=r"lv2:lsp_compressor_stereo \(http://lsp-plug.in/plugins/lv2/"
                                           r"compressor_stereo\): " + match):
        lv2_processor(require("lsp_compressor_stereo"), **options)


def test_calf_reverb_predelay_is_declared_stepwise_and_mverb_gets_its_pre_roll(require):
    reverb = lv2_processor(require("calf_reverb"))
    specs = {s.name: s for s in reverb.specs}
    assert not specs["predelay"].differentiable and specs["decay_time"].differentiable
    assert ("predelay",) in describe(reverb).nondifferentiable()
    assert next(s for s in lv2_processor("calf_reverb", differentiable={"predelay": True}).specs
                if s.name == "predelay").differentiable  # the user may still say otherwise
    assert lv2_processor(require("dpf_mverb")).process.pre_roll == 4096


def test_port_values_report_what_each_node_received_whatever_the_stage_size(require, noise):
    processor = lv2_processor(require("calf_saturator"), check_determinism=False)
    raw = {s.name: torch.randn(16, 1, generator=torch.Generator().manual_seed(k)) * 3
           for k, s in enumerate(processor.specs)}
    received = []
    render = processor.process
    processor.process = lambda effect, audio, rate, **natural: (received.append(natural), render(
        effect, audio, rate, **natural))[1]
    processor(noise(16), **raw)
    processor.process = render
    batch = port_values(processor, **raw)
    by_row = {}
    for row in range(16):
        single = port_values(processor, **{k: v[row:row + 1] for k, v in raw.items()})[0]
        assert single == batch[row]
        by_row[tuple(sorted(render.port_values(received[row]).items()))] = row
    assert sorted(by_row.values()) == list(range(16))  # each received vector is one of the reported ones
    assert {tuple(sorted(v.items())) for v in batch} == set(by_row)


def test_port_units_reach_the_controls(require):
    # ZamEQ2 declares units:unit on its ports (Hz, dB; none on the bandwidths): gauss-newton's band scan reads them.
    processor = lv2_processor(require("urn_zamaudio_zam_eq2"))
    units = {path[0]: control.unit for path, control in describe(processor).controls.items()}
    assert units["f1"] == units["fl"] == "Hz" and units["boost1"] == "dB" and units["bw1"] == ""
