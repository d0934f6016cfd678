"""Automated LV2 controls: changed between runs of one instance, as a DAW automates a plug-in."""

from __future__ import annotations

import torch
from grafx_core import describe

from grafx_lv2 import lv2_processor


def test_an_lv2_compressor_threshold_moves_between_runs_of_one_instance(require, noise):
    processor = lv2_processor(require("lsp_compressor_mono"), include=["al", "cr"], workers=1)
    names = [s.name for s in processor.specs]
    threshold = names[0]
    assert (threshold,) in describe(processor).time_varying()
    x = noise(1, channels=1, samples=4096)
    spec = processor.specs[0]
    low = spec.to_raw(torch.tensor([[spec.minimum + 0.2 * (spec.maximum - spec.minimum)]], dtype=torch.float64))
    high = spec.to_raw(torch.tensor([[spec.minimum + 0.8 * (spec.maximum - spec.minimum)]], dtype=torch.float64))
    params = {s.name: torch.full((1, 1), float(v)) for s, v in zip(processor.specs,
                                                                   processor.default_parameters().values())}
    static_low = processor(x, **dict(params, **{threshold: low.float()}))
    # A constant curve renders the plain value bit for bit.
    constant = low.float().unsqueeze(-1).expand(1, 1, 4096)
    assert torch.equal(processor(x, **dict(params, **{threshold: constant})), static_low)
    # A step at sample 2048 (a block boundary): the output before it is the low threshold's, after it differs.
    step = torch.cat([low.float().expand(1, 1, 2048), high.float().expand(1, 1, 2048)], dim=-1)
    stepped = processor(x, **dict(params, **{threshold: step}))
    static_high = processor(x, **dict(params, **{threshold: high.float()}))
    block = processor.control_block
    assert torch.equal(stepped[..., :2048 - block], static_low[..., :2048 - block])
    assert not torch.equal(stepped[..., 2048 + block:], static_low[..., 2048 + block:])
    assert not torch.equal(stepped, static_high)
