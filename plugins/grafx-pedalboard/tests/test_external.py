"""External plug-ins: parameters read from the plug-in, tested on a stand-in with pedalboard's interface.

No VST3 file is needed: ``FakePlugin`` offers what ``pedalboard.load_plugin``
returns (a ``parameters`` mapping of parameter objects with ``type``,
``raw_value``, ``valid_values``, ranges and flags, and ``process``).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from grafx_core.blackbox import MARGIN
from grafx_core.errors import BlackBoxError
from grafx_core.testing import check_processor
from grafx_pedalboard import (EffectOptionError, PluginParameterError, external_processor, pedalboard_chain,
                              read_parameters)


class FakeParameter:
    def __init__(self, kind, raw_value, valid_values, min_value=None, max_value=None, label=None,
                 is_discrete=False, is_boolean=False):
        self.type, self.raw_value, self.valid_values = kind, raw_value, valid_values
        self.min_value, self.max_value, self.label = min_value, max_value, label
        self.is_discrete, self.is_boolean = is_discrete, is_boolean


class FakePlugin:
    """``y = (0.5 + gain) * tanh((1 + 4 * drive) * x)``, bypassed when ``bypass`` is on; raises when ``fail`` is on."""

    def __init__(self, parameter_values=None):
        self.parameters = {
            "gain_db": FakeParameter(float, 0.5, [i / 10 for i in range(1001)], -60.0, 12.0, "dB"),
            "drive": FakeParameter(float, 0.25, [i / 10 for i in range(1001)], 0.0, 100.0, "%"),
            "steps": FakeParameter(float, 0.0, [0.0, 1.0, 2.0, 3.0]),
            "detent": FakeParameter(float, 0.0, [i / 10 for i in range(1001)], is_discrete=True),
            "bypass": FakeParameter(bool, 0.0, [False, True], False, True, is_boolean=True),
            "character": FakeParameter(str, 0.0, ["warm", "cold"]),
            "fail": FakeParameter(bool, 0.0, [False, True], False, True, is_boolean=True),
        }
        self.threads = {threading.get_ident()}

    def process(self, audio, sample_rate, reset=True):
        p = {k: v.raw_value for k, v in self.parameters.items()}
        if p["fail"] >= 0.5:
            raise RuntimeError("plug-in crashed")
        if p["bypass"] >= 0.5:
            return audio.copy()
        return ((0.5 + p["gain_db"]) * np.tanh((1 + 4 * p["drive"]) * audio)).astype(np.float32)


class Loader:
    def __init__(self):
        self.calls = []

    def __call__(self, path, parameter_values=None, plugin_name=None):
        self.calls.append((path, plugin_name, threading.get_ident()))
        return FakePlugin(parameter_values)


def test_parameters_are_read_and_classified_from_the_plugin():
    found = {p.name: p for p in read_parameters(FakePlugin())}
    assert list(found) == ["gain_db", "drive", "steps", "detent", "bypass", "character", "fail"]
    assert [n for n, p in found.items() if p.continuous] == ["gain_db", "drive"]
    assert (found["gain_db"].minimum, found["gain_db"].maximum, found["gain_db"].label) == (-60.0, 12.0, "dB")
    assert found["character"].kind == "str" and found["bypass"].kind == "bool"
    spec = found["drive"].spec()
    assert (spec.minimum, spec.maximum, spec.default, spec.differentiable) == (0.0, 1.0, 0.25, True)
    with pytest.raises(PluginParameterError, match="no 'parameters' mapping"):
        read_parameters(object())


def test_controls_follow_include_exclude_and_overrides():
    loader = Loader()
    processor = external_processor("fake.vst3", loader=loader, exclude=["fail", "character"])
    assert [s.name for s in processor.specs] == ["gain_db", "drive", "steps", "detent", "bypass"]
    assert [s.differentiable for s in processor.specs] == [True, True, False, False, False]
    assert processor.gradient_kind == "finite-difference"
    processor = external_processor("fake.vst3", loader=loader, include=["drive"],
                                   differentiable={"drive": False})
    assert [(s.name, s.differentiable) for s in processor.specs] == [("drive", False)]
    with pytest.raises(PluginParameterError, match=r"include names \['volume'\]"):
        external_processor("fake.vst3", loader=loader, include=["volume"])


def normalised(raw):
    """A plug-in parameter's raw_value from a node's raw value: the sigmoid, its margins on the bounds."""
    return ((torch.sigmoid(raw) - MARGIN) / (1 - 2 * MARGIN)).clamp(0, 1)


def test_output_and_gradients_follow_the_plugins_raw_values(bursts):
    loader = Loader()
    processor = external_processor("fake.vst3", loader=loader, include=["gain_db", "drive"], workers=2)
    x = bursts(4, samples=2205)
    gen = torch.Generator().manual_seed(0)
    raw = {s.name: torch.randn(4, 1, generator=gen).requires_grad_() for s in processor.specs}
    y = processor(x, **raw)
    gain, drive = (normalised(raw[k].detach().double())[..., None] for k in ("gain_db", "drive"))
    expected = (0.5 + gain) * torch.tanh((1 + 4 * drive) * x.double())
    torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-6)
    weights = bursts(4, samples=2205, seed=3).double()
    (y.double() * weights).sum().backward()
    exact = {k: v.detach().double().requires_grad_() for k, v in raw.items()}
    g, d = (normalised(exact[k].double())[..., None] for k in ("gain_db", "drive"))
    ((0.5 + g) * torch.tanh((1 + 4 * d) * x.double()) * weights).sum().backward()
    for name in raw:
        torch.testing.assert_close(raw[name].grad.double(), exact[name].grad, rtol=1e-3, atol=1e-6)
    # one load to read the parameters, then one per worker thread that ran items
    assert len(loader.calls) <= 3 and all(c[0] == "fake.vst3" for c in loader.calls)


@pytest.mark.filterwarnings("ignore::grafx_core.estimators.NonDifferentiableParameterWarning")
def test_the_plugin_processor_conforms(bursts):
    processor = external_processor("fake.vst3", loader=Loader(), exclude=["fail"])
    check_processor(processor, nondifferentiable=["steps", "detent", "bypass", "character"])


def test_a_plugin_error_names_the_node_and_the_parameter_values(bursts):
    processor = external_processor("fake.vst3", loader=Loader(), include=["drive", "fail"], workers=1)
    raw = {"drive": torch.zeros(2, 1), "fail": torch.tensor([[-5.0], [5.0]])}
    with pytest.raises(BlackBoxError, match=r"node row 1.*plug-in crashed.*drive=0\.5, fail=0\.99"):
        processor(bursts(2, samples=1000), **raw)


def test_a_missing_plugin_file_raises_from_pedalboard():
    with pytest.raises(ImportError):
        external_processor("/nonexistent/NoSuchPlugin.vst3")
    with pytest.raises(PluginParameterError, match="expected a pedalboard.Pedalboard"):
        pedalboard_chain(FakePlugin())


def test_a_bad_sample_rate_is_refused_before_the_plugin_loads():
    loader = Loader()
    with pytest.raises(EffectOptionError, match=r"plug-in 'fake.vst3'.*sample_rate must be a positive number"):
        external_processor("fake.vst3", loader=loader, sample_rate=0)
    assert loader.calls == []
