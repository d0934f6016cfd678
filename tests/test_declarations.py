"""What a processor declares about itself (inlet channels, parameter ranges)
and how the engine and the conformance kit read it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from grafx_core import (
    Control,
    Graph,
    InletChannelError,
    ParameterRange,
    accepted_channels,
    create_empty_parameters,
    parameter_ranges,
    render,
)
from grafx_core.errors import ConformanceError
from grafx_core.testing import check_processor


class MonoPan(nn.Module):
    """Mono in, stereo out; records the shapes and parameters it was called with."""

    inlet_channels = 1

    def __init__(self):
        super().__init__()
        self.seen = []

    def parameter_size(self):
        return {"pan": 1}

    def forward(self, x, pan):
        self.seen.append(x.shape[1])
        angle = (torch.tanh(pan) + 1) * (math.pi / 4)
        return torch.cat([x * torch.cos(angle)[..., None], x * torch.sin(angle)[..., None]], 1)


class Ranged(nn.Module):
    """A gain in dB and a log-scaled cutoff, recording the values it was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def controls(self):
        return {"gain_db": Control(low=-24.0, high=24.0, unit="dB", default=20.0),  # near the top: draws fold back
                "tone": {"cutoff_hz": Control(shape=(2,), low=20.0, high=20000.0, unit="Hz", scale="log")}}

    def forward(self, x, gain_db, tone):
        self.calls.append((gain_db.detach().clone(), tone["cutoff_hz"].detach().clone()))
        tilt = torch.log(tone["cutoff_hz"]).mean(1, keepdim=True)
        return x * (10 ** (gain_db / 20) * tilt)[..., None]


class OldRanged(Ranged):
    """The same, declared with the older attributes (deprecated, working for one more release)."""

    controls = None

    def parameter_size(self):
        return {"gain_db": 1, "tone": {"cutoff_hz": 2}}

    def parameter_ranges(self):
        return {"gain_db": ParameterRange(-24.0, 24.0, "dB"),
                "tone": {"cutoff_hz": ParameterRange(20.0, 20000.0, "Hz", "log")}}

    def default_parameters(self):
        return {"gain_db": 20.0}  # near the top: draws must fold back under 24 dB

    def forward(self, x, gain_db, tone):
        self.calls.append((gain_db.detach().clone(), tone["cutoff_hz"].detach().clone()))
        tilt = torch.log(tone["cutoff_hz"]).mean(1, keepdim=True)
        return x * (10 ** (gain_db / 20) * tilt)[..., None]


def test_the_kit_feeds_a_mono_inlet_mono_and_refuses_to_feed_it_stereo():
    processor = MonoPan()
    check_processor(processor)
    assert set(processor.seen) == {1}
    assert accepted_channels(processor) == {"main": (1,)}
    with pytest.raises(ValueError, match=r"gives inlet 'main' of MonoPan 2 channel\(s\), but its inlet_channels "
                                         r"accepts 1"):
        check_processor(processor, channels=2)


def test_the_engine_names_the_node_inlet_and_counts_when_a_declaration_is_broken():
    processors = {"pan": MonoPan()}
    graph = Graph()
    source = graph.add("in")
    pan = graph.add("pan", name="lead")
    graph.connect(source, pan)
    graph.connect(pan, graph.add("out"))
    params = create_empty_parameters(graph, processors)
    y, _ = render(graph, processors, params, torch.randn(1, 1, 32))
    assert y.shape == (1, 2, 32)
    with pytest.raises(InletChannelError, match=r"lead.*inlet 'main'.*MonoPan.*gets 2 channel\(s\); it accepts 1"):
        render(graph, processors, params, torch.randn(1, 2, 32))
    assert processors["pan"].seen == [1]  # the stereo call never reached forward


def test_declarations_that_name_no_inlet_or_no_count_are_rejected():
    broken = MonoPan()
    broken.inlet_channels = {"side": 1}
    with pytest.raises(ValueError, match=r"MonoPan: inlet_channels names \['side'\]"):
        accepted_channels(broken)
    broken.inlet_channels = "stereo"
    with pytest.raises(ConformanceError, match=r"\[protocol\].*positive int"):
        check_processor(broken)


def test_parameter_ranges_are_checked_against_parameter_size():
    processor = OldRanged()
    assert parameter_ranges(processor)["tone"]["cutoff_hz"] == (20.0, 20000.0, "Hz", "log")
    assert ParameterRange(20.0, 20000.0, "Hz", "log").centre() == pytest.approx(632.4555, rel=1e-6)
    processor.parameter_ranges = lambda: {"q": ParameterRange(0.1, 10.0)}
    with pytest.raises(ValueError, match=r"OldRanged: parameter_ranges\(\) has 'q', which parameter_size\(\)"):
        parameter_ranges(processor)
    processor.parameter_ranges = lambda: {"tone": {"cutoff_hz": ParameterRange(0.0, 1.0, "Hz", "log")}}
    with pytest.raises(ValueError, match=r"'tone.cutoff_hz' is on a log scale, so it needs low > 0"):
        parameter_ranges(processor)


@pytest.mark.parametrize("declaration", ["controls", "old attributes"])
def test_the_kit_draws_each_parameter_within_its_range_at_a_spread_that_follows_the_range(declaration):
    processor = Ranged() if declaration == "controls" else OldRanged()
    if declaration == "controls":
        check_processor(processor, num_nodes=400, skip=("gradcheck", "batch-consistency"))
    else:
        with pytest.warns(DeprecationWarning, match="OldRanged: parameter_ranges is deprecated"):
            check_processor(processor, num_nodes=400, skip=("gradcheck", "batch-consistency"))
    gain_db, cutoff_hz = processor.calls[0]
    assert float(gain_db.min()) >= -24 and float(gain_db.max()) <= 24
    assert float(cutoff_hz.min()) >= 20 and float(cutoff_hz.max()) <= 20000
    # Linear: around the default 20 dB with 0.1 x 48 dB of spread, folded at 24 dB.
    assert 15 < float(gain_db.median()) < 21 and float(gain_db.std()) > 2.5
    # Log: around the geometric centre, 0.1 x ln(1000) of spread in log frequency.
    log_cutoff = cutoff_hz.log()
    assert abs(float(log_cutoff.mean()) - math.log(632.4555)) < 0.1
    assert float(log_cutoff.std()) == pytest.approx(0.1 * math.log(1000.0), rel=0.15)


def test_a_failing_forward_is_reported_with_the_values_the_kit_gave_it():
    class Picky(nn.Module):
        def parameter_size(self):
            return {"ratio": 1, "taps": 8}

        def forward(self, x, ratio, taps):
            if not bool((ratio > 5).all()):
                raise AssertionError  # a bare assert in a third-party library, as the kit meets it
            return x

    with pytest.raises(ConformanceError) as caught:
        check_processor(Picky(), num_nodes=2)
    message = str(caught.value)
    assert "forward raised AssertionError: (no message), given signals main [2, 2, 256]" in message
    assert "ratio=[[" in message and "taps=[2, 8] in [" in message
