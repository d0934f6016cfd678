"""Rendering: graphs are deterministic and equal node-by-node calls; latency is compensated; options reproduce."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from grafx_core import Graph, compile_render, save_parameters
from grafx_core.commands.render import render_files
from grafx_core.wavfile import write_wav
from grafx_lv2 import lv2_processor


def test_latency_is_compensated_so_a_transparent_compressor_lines_up_with_the_dry_signal(require, noise):
    # Ratio 1 compresses nothing; a 5 ms look-ahead makes LSP report 220 samples of latency at 44.1 kHz.
    processor = lv2_processor(require("lsp_compressor_stereo"), fixed={"cr": 1.0, "sla": 5.0}, include=["g_out"])
    x = noise(2)
    y = processor(x, g_out=torch.full((2, 1), processor.default_parameters()["g_out"]))
    assert processor.process.last_latency == 220
    torch.testing.assert_close(y, x, rtol=0, atol=1e-6)
    assert float((y[..., 1:] - x[..., :-1]).abs().max()) > 0.1  # one sample off is far off


def _graph():
    g = Graph()
    ins = [g.add("in") for _ in range(3)]
    out = g.add("out")
    for k, i in enumerate(ins):
        eq = g.add("lv2:dpf_3_band_eq", name=f"eq{k}")
        g.connect(i, eq)
        if k < 2:
            sat = g.add("lv2:calf_saturator", name=f"sat{k}")
            g.connect(eq, sat)
            g.connect(sat, out)
        else:
            g.connect(eq, out)
    return g


def _processors(options):
    return {t: lv2_processor(t.split(":", 1)[1], **options.get(t, {})) for t in ("lv2:dpf_3_band_eq",
                                                                                  "lv2:calf_saturator")}


def test_a_graph_of_lv2_nodes_is_deterministic_and_equals_node_by_node_calls(require, noise):
    require("dpf_3_band_eq"), require("calf_saturator")
    g = _graph()
    options = {"lv2:calf_saturator": {"include": ["drive", "blend"]}}
    processors = _processors(options)
    gen = torch.Generator().manual_seed(1)
    params = {t: {k: torch.full((len(g.nodes_of_type(t)), 1), v) + 0.5 * torch.randn(len(g.nodes_of_type(t)), 1,
                                                                                       generator=gen)
                  for k, v in p.default_parameters().items()} for t, p in processors.items()}
    sources = noise(3, seed=2)
    plan = compile_render(g, processors)
    first, _ = plan(params, sources)
    again, _ = compile_render(g, _processors(options))(params, sources)
    assert torch.equal(first, again)
    eq, sat = processors["lv2:dpf_3_band_eq"], processors["lv2:calf_saturator"]
    row = {t: {n: k for k, n in enumerate(g.nodes_of_type(t))} for t in processors}

    def node(t, name, x):
        r = row[t][g.node(name).id]
        return processors[t](x[None], **{k: v[r:r + 1] for k, v in params[t].items()})[0]

    mix = sum(node("lv2:calf_saturator", f"sat{k}", node("lv2:dpf_3_band_eq", f"eq{k}", sources[k]))
              for k in range(2)) + node("lv2:dpf_3_band_eq", "eq2", sources[2])
    torch.testing.assert_close(first[0], mix, rtol=0, atol=1e-6)
    assert eq.instances == sat.instances == "per-item" and eq.serialise_instantiation


def test_pickled_processor_keeps_its_plugin_and_options_and_renders_the_same(require, noise):
    processor = lv2_processor(require("calf_saturator"), include=["drive"], block_size=256)
    x = noise(2)
    raw = {"drive": torch.tensor([[0.3], [-1.0]])}
    copy = pickle.loads(pickle.dumps(processor))
    assert copy.process.options == processor.process.options and copy.process.options["block_size"] == 256
    assert torch.equal(copy(x, **raw), processor(x, **raw))


def test_the_options_file_makes_grafx_core_render_repeat_a_render_bit_for_bit(require, noise, tmp_path):
    require("dpf_3_band_eq"), require("calf_saturator")
    g = _graph()
    options = {"lv2:calf_saturator": {"include": ["drive", "blend"], "block_size": 512, "pre_roll": 2048},
               "lv2:dpf_3_band_eq": {"exclude": ["low_mid"]}}
    processors = _processors(options)
    gen = torch.Generator().manual_seed(4)
    params = {t: {k: 0.7 * torch.randn(len(g.nodes_of_type(t)), 1, generator=gen) for k in p.parameter_size()}
              for t, p in processors.items()}
    sources = noise(3, seed=5)
    expected, _ = compile_render(g, processors)(params, sources)
    g.save(tmp_path / "graph.json")
    save_parameters(params, tmp_path / "p.json")
    recorded = {t: p.process.options for t, p in processors.items()}
    (tmp_path / "options.json").write_text(json.dumps(recorded))
    wavs = []
    for k in range(3):
        wavs.append(str(tmp_path / f"s{k}.wav"))
        write_wav(wavs[-1], sources[k], 44100)
    out = render_files(tmp_path / "graph.json", wavs, [str(tmp_path / "mix.wav")], str(tmp_path / "p.json"),
                       str(tmp_path / "options.json"))
    np.testing.assert_array_equal(out[0].numpy(), expected[0].numpy())


def test_a_mono_plugin_runs_each_channel_of_a_stereo_signal_on_its_own_instance(require, noise):
    processor = lv2_processor(require("lsp_compressor_mono"), include=["at", "cr"], workers=1)
    x = noise(2)
    raw = {"at": torch.tensor([[0.2], [-0.4]]), "cr": torch.tensor([[1.0], [0.5]])}
    y = processor(x, **raw)
    assert y.shape == x.shape
    for c in range(2):
        assert torch.equal(y[:, c:c + 1], processor(x[:, c:c + 1].contiguous(), **raw))


def test_the_tail_policy_warns_when_a_reverb_still_rings_at_the_end(require, noise):
    from grafx_lv2 import TailCutWarning

    name = require("calf_reverb")
    x = noise(1, samples=4096)
    quiet = lv2_processor(name, workers=1)
    loud = lv2_processor(name, tail="warn", workers=1)
    raw = {k: torch.full((1, 1), v) for k, v in quiet.default_parameters().items()}
    with pytest.warns(TailCutWarning, match=r"lv2:calf_reverb .*still at -?\d+\.\d dBFS when the item ended"):
        y = loud(x, **raw)
    assert torch.equal(y, quiet(x, **raw))  # the policy only speaks; the cut output is the same
