"""Automated pedalboard controls: blocks run through one instance without a reset between them."""

import numpy as np
import pedalboard
import torch
from grafx_core import describe

from grafx_pedalboard.processor import pedalboard_processor


def test_an_automated_reverb_wet_level_is_set_block_by_block_in_one_instance():
    bb = pedalboard_processor("reverb", sample_rate=44100)
    assert ("wet_level",) in describe(bb).time_varying()
    block = bb.control_block
    x = (torch.randn(1, 2, 3000, generator=torch.Generator().manual_seed(0)) * 0.3)
    params = {k: torch.full((1, 1), float(v)) for k, v in bb.default_parameters().items()}
    wet = torch.linspace(0.05, 0.9, 3000, dtype=torch.float64)
    params["wet_level"] = bb.specs[[s.name for s in bb.specs].index("wet_level")].to_raw(wet).float().reshape(1, 1, -1)
    y = bb(x, **params)
    constant = dict(params, wet_level=params["wet_level"][..., 0])
    natural = {k: float(v) for k, v in bb.natural_parameters(**constant).items()}
    reverb = pedalboard.Reverb(**{k: v for k, v in natural.items() if k != "wet_level"})
    audio = x[0].numpy()
    chunks = []
    for b, start in enumerate(range(0, 3000, block)):
        raw = params["wet_level"][0, 0, start]
        reverb.wet_level = float(bb.specs[[s.name for s in bb.specs].index("wet_level")]
                                 .to_natural(torch.sigmoid(raw.double()).float().double()).float())
        chunks.append(reverb.process(audio[:, start:start + block], 44100, reset=b == 0))
    np.testing.assert_array_equal(y[0].numpy(), np.concatenate(chunks, axis=-1))


def test_a_constant_wet_level_curve_renders_the_static_reverb_bit_for_bit():
    bb = pedalboard_processor("reverb", sample_rate=44100)
    x = torch.randn(2, 2, 2500, generator=torch.Generator().manual_seed(1)) * 0.3
    params = {k: torch.full((2, 1), float(v)) for k, v in bb.default_parameters().items()}
    curved = dict(params, wet_level=params["wet_level"].unsqueeze(-1).expand(2, 1, 2500))
    assert torch.equal(bb(x, **params), bb(x, **curved))
