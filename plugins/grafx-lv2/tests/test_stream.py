"""LV2 plug-ins stream block by block in one instance per node, bit for bit against one render."""

from __future__ import annotations

import pytest
import torch

from grafx_core import Graph, compile_render, describe
from grafx_core.state import render_in_blocks
from grafx_lv2 import lv2_processor


@pytest.mark.parametrize("name", ["lsp_compressor_stereo", "x42_fil4_stereo"])
def test_blocks_through_one_instance_equal_one_render_bit_for_bit(require, name):
    processor = lv2_processor(require(name))
    late = describe(processor).latency_samples  # input waiting for a whole run, plus the plug-in's latency
    x = 0.3 * torch.randn(2, 2, 9000, generator=torch.Generator().manual_seed(0))
    params = {k: torch.full((2, 1), float(v)) for k, v in processor.default_parameters().items()}
    with torch.no_grad():
        whole = processor(x, **params)
        for sizes in ([4096], [64], [1000, 37]):
            blocked = render_in_blocks(processor, [torch.nn.functional.pad(x, (0, late))], params, sizes)[0]
            assert torch.equal(blocked[..., late:], whole)


def test_a_console_of_plug_ins_streams_bit_for_bit_with_its_latency_compensated(require):
    # Two tracks through a compressor, one dry: the dry path is delayed to meet the late one at the bus.
    graph = Graph()
    a, b = graph.add("in"), graph.add("in")
    comp, out = graph.add("comp"), graph.add("out")
    graph.connect(a, comp)
    graph.connect(comp, out)
    graph.connect(b, out)
    processors = {"comp": lv2_processor(require("lsp_compressor_stereo"))}
    plan = compile_render(graph, processors)
    params = {"comp": {k: torch.full((1, 1), float(v)) for k, v in processors["comp"].default_parameters().items()}}
    x = 0.3 * torch.randn(2, 2, 12000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, _ = plan(params, x)
        streamed = torch.cat(list(plan.stream(params, [x[..., s:s + 700] for s in range(0, 12000, 700)])), -1)
    assert torch.equal(streamed, whole)


def test_a_chain_of_plug_ins_streams_bit_for_bit(require):
    # The compressor's input arrives late by the EQ's lateness; it skips that silence, so it runs the
    # very blocks of a one-shot render (hearing it cost 4.8e-7: the plug-in is not at rest after silence).
    graph = Graph()
    source, eq, comp, out = graph.add("in"), graph.add("eq"), graph.add("comp"), graph.add("out")
    graph.connect(source, eq)
    graph.connect(eq, comp)
    graph.connect(comp, out)
    processors = {"eq": lv2_processor(require("x42_fil4_stereo")), "comp": lv2_processor(require("lsp_compressor_stereo"))}
    plan = compile_render(graph, processors)
    params = {t: {k: torch.full((1, 1), float(v)) for k, v in p.default_parameters().items()}
              for t, p in processors.items()}
    x = 0.3 * torch.randn(1, 2, 12000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole, _ = plan(params, x)
        for size in (700, 4096):
            streamed = torch.cat(list(plan.stream(params, [x[..., s:s + size] for s in range(0, 12000, size)])), -1)
            assert torch.equal(streamed, whole)
