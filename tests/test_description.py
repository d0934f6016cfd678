"""One Control record per parameter and one cached description per processor."""

from __future__ import annotations

import pytest
import torch

from grafx_core import Control, ParameterRange, Processor, describe, get_processor, list_processors
from grafx_core.processor import normalized_parameter_size


class GrafxStyleGain(torch.nn.Module):
    """Written against GRAFX's protocol only: forward and parameter_size."""

    def forward(self, x, gain_db):
        return x * (10 ** (gain_db / 20))[..., None]

    def parameter_size(self):
        return {"gain_db": 1}


class OldAttributesEq(Processor):
    nondifferentiable_parameters = ("band.mode",)

    def forward(self, x, band):
        return x

    def parameter_size(self):
        return {"band": {"gain_db": (3,), "mode": 1}}

    def parameter_ranges(self):
        return {"band": {"gain_db": ParameterRange(-12, 12, "dB")}}

    def default_parameters(self):
        return {"band": {"gain_db": torch.tensor([1.0, 2.0, 3.0]), "mode": torch.tensor([1.0])}}


class DeclaredFader(Processor):
    latency_samples = 64

    def forward(self, x, gain_db, cutoff_hz):
        return x

    def controls(self):
        return {"gain_db": Control(low=-60, high=12, default=0, unit="dB", time_varying=True),
                "cutoff_hz": Control(low=20, high=20000, unit="Hz", scale="log")}


def test_grafx_style_processor_is_described_from_parameter_size_alone():
    description = describe(GrafxStyleGain())
    assert description.inlets == ("main",) and description.outlets == ("main",)
    assert description.controls == {("gain_db",): Control(shape=(1,))}
    assert description.gradient_kind == "autograd" and not description.stateful


def test_old_attributes_become_one_record_per_control():
    with pytest.warns(DeprecationWarning, match=r"OldAttributesEq: parameter_ranges and "
                                                 r"nondifferentiable_parameters are deprecated.*controls\(\)"):
        description = describe(OldAttributesEq())
    gain = description.control("band.gain_db")
    assert (gain.low, gain.high, gain.unit, gain.shape) == (-12.0, 12.0, "dB", (3,))
    assert gain.default_values() == (1.0, 2.0, 3.0)
    assert description.nondifferentiable() == (("band", "mode"),)
    assert description.parameter_size() == normalized_parameter_size(OldAttributesEq())


def test_declared_controls_give_shapes_defaults_and_time_variation():
    description = describe(DeclaredFader())
    assert description.parameter_size() == {"gain_db": (1,), "cutoff_hz": (1,)}
    assert description.time_varying() == (("gain_db",),)
    assert description.control("cutoff_hz").default_values() == pytest.approx((632.4555,), rel=1e-6)
    assert description.latency_samples == 64
    with pytest.raises(KeyError, match="no control 'q'.*gain_db"):
        description.control("q")


def test_description_is_cached_per_processor():
    processor = DeclaredFader()
    assert describe(processor) is describe(processor)
    assert describe(DeclaredFader()) == describe(processor)


@pytest.mark.parametrize("kwargs, message", [
    ({"low": 1, "high": 1}, "low < high"),
    ({"low": 0, "high": 1, "default": 2}, "outside"),
    ({"scale": "log"}, "needs both"),
    ({"scale": "mel", "low": 1, "high": 2}, "not one of"),
    ({"shape": (3,), "default": (1, 2)}, "needs 1 or 3"),
    ({"values": (1, 0)}, "sorted"),
])
def test_malformed_controls_are_named_errors(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Control(**kwargs)


def test_discrete_controls_are_not_differentiable():
    assert not Control(low=0, high=2, values=(0, 1, 2)).differentiable


def test_every_dsp_processor_describes_its_parameter_size():
    containers = ("chain", "dry_wet", "parallel_mix")
    names = [f"dsp:{info.spec.name}" for info in list_processors()
             if info.plugin == "dsp" and info.spec.name not in containers]
    assert len(names) > 20
    for name in names:
        processor = get_processor(name)
        assert describe(processor).parameter_size() == normalized_parameter_size(processor), name


class ThirdPartyOldTilt(torch.nn.Module):
    """A third-party processor written against the older optional attributes."""

    nondifferentiable_parameters = ("order",)

    def parameter_size(self):
        return {"tilt_db": 1, "order": 1}

    def default_parameters(self):
        return {"tilt_db": 2.0, "order": 1.0}

    def parameter_ranges(self):
        return {"tilt_db": ParameterRange(-6.0, 6.0, "dB"), "order": ParameterRange(1.0, 4.0)}

    def forward(self, x, tilt_db, order):
        ramp = torch.linspace(-1.0, 1.0, x.shape[-1], dtype=x.dtype)
        return x * 10 ** (tilt_db[..., None] * ramp / 20) * order.round()[..., None].clamp(min=1) ** 0


class ThirdPartyNewTilt(ThirdPartyOldTilt):
    """The same processor declared with one Control per parameter."""

    nondifferentiable_parameters = None
    parameter_size = default_parameters = parameter_ranges = None

    def controls(self):
        return {"tilt_db": Control(low=-6.0, high=6.0, default=2.0, unit="dB"),
                "order": Control(low=1.0, high=4.0, default=1.0, values=(1.0, 2.0, 3.0, 4.0))}


def test_third_party_processors_old_and_new_pass_the_kit_with_no_options_and_describe_alike():
    from grafx_core.testing import check_processor

    with pytest.warns(DeprecationWarning, match="ThirdPartyOldTilt: parameter_ranges and "
                                                "nondifferentiable_parameters are deprecated"):
        old_checks = check_processor(ThirdPartyOldTilt())
    new_checks = check_processor(ThirdPartyNewTilt())
    assert old_checks == new_checks and "gradcheck" in new_checks
    with pytest.warns(DeprecationWarning):
        old = describe(ThirdPartyOldTilt())
    new = describe(ThirdPartyNewTilt())
    assert old.nondifferentiable() == new.nondifferentiable() == (("order",),)
    assert old.control("tilt_db") == new.control("tilt_db")
