"""pedalboard effects stream block by block bit for bit: one instance per node, reset=False between blocks."""

from __future__ import annotations

import pedalboard
import pytest
import torch

from grafx_core import Graph, compile_render
from grafx_core.state import render_in_blocks
from grafx_pedalboard import pedalboard_processor

EFFECTS = ["compressor", "reverb", "delay", "chorus", "phaser", "ladder_filter", "limiter", "noise_gate"]


@pytest.mark.parametrize("name", EFFECTS)
def test_blocks_through_one_instance_equal_one_render_bit_for_bit(name):
    processor = pedalboard_processor(name)
    x = 0.3 * torch.randn(2, 2, 20000, generator=torch.Generator().manual_seed(0))
    params = {k: torch.full((2, 1), float(v)) for k, v in processor.default_parameters().items()}
    with torch.no_grad():
        whole = processor(x, **params)
        for sizes in ([4096], [64], [1000, 37]):
            assert torch.equal(render_in_blocks(processor, [x], params, sizes)[0], whole)


def test_a_stream_keeps_one_fresh_reverb_per_node_with_its_tail():
    # pedalboard's Reverb carries dry_level over between calls: every node's own instance, set every block.
    graph = Graph()
    graph.add_serial_chain(["in", "verb", "out"])
    graph.add_serial_chain(["in", "verb", "out"])
    processors = {"verb": pedalboard_processor("reverb")}
    plan = compile_render(graph, processors)
    defaults = processors["verb"].default_parameters()
    params = {"verb": {k: torch.tensor([[float(v)], [float(v) - 0.5]]) for k, v in defaults.items()}}
    x = torch.zeros(2, 2, 30000)
    x[:, :, :100] = 0.5  # a burst whose tail outlives the first block
    with torch.no_grad():
        whole, _ = plan(params, x)
        streamed = torch.cat(list(plan.stream(params, [x[..., s:s + 4096] for s in range(0, 30000, 4096)])), -1)
    assert torch.equal(streamed, whole)
    assert float(streamed[..., 8192:].abs().max()) > 1e-4  # the tail crossed the blocks


def test_a_black_box_stream_refuses_a_gradient():
    processor = pedalboard_processor("compressor")
    params = {k: torch.full((1, 1), float(v), requires_grad=True) for k, v in processor.default_parameters().items()}
    state = processor.initial_state(torch.zeros(1, 1, 8), **params)
    with pytest.raises(Exception, match="without a gradient"):
        processor.forward_stateful(state, torch.zeros(1, 1, 8), **params)
    assert isinstance(state[0], pedalboard.Compressor)
