"""The black-box processor: batching, threads, devices, determinism, faults."""

import copy
import math
import threading
import warnings

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_core.blackbox import MARGIN, BlackBoxProcessor, ParameterSpec
from grafx_core.errors import BlackBoxError, ParameterError
from grafx_core.estimators import NonDifferentiableParameterWarning, StoppedSignalGradientWarning

SR = 48000
SPECS = [ParameterSpec("cutoff_hz", 50.0, 16000.0, default=1000.0, scale="log"),
         ParameterSpec("gain_db", -24.0, 12.0, default=0.0)]


def lowpass(audio, sample_rate, cutoff_hz, gain_db):
    """One-pole lowpass then gain, with scipy (releases the GIL in lfilter)."""
    a = math.exp(-2 * math.pi * cutoff_hz / sample_rate)
    return scipy.signal.lfilter([1 - a], [1, -a], audio, axis=-1) * 10 ** (gain_db / 20)


def natural(raw, spec):
    n = 1 / (1 + np.exp(-raw))
    u = min(max((n - MARGIN) / (1 - 2 * MARGIN), 0.0), 1.0)  # the margins map onto the bounds
    if spec.scale == "log":
        return spec.minimum * (spec.maximum / spec.minimum) ** u
    return spec.minimum + u * (spec.maximum - spec.minimum)


def test_matches_a_per_item_scipy_reference(device):
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 4000, generator=gen)
    raw = {"cutoff_hz": torch.randn(5, 1, generator=gen), "gain_db": torch.randn(5, 1, generator=gen)}
    y = box(x.to(device), **{k: v.to(device) for k, v in raw.items()})
    assert y.device == x.to(device).device and y.dtype == torch.float32 and y.shape == (5, 2, 4000)
    for n in range(5):
        values = {s.name: float(np.float32(natural(float(raw[s.name][n, 0]), s))) for s in SPECS}
        ref = lowpass(x[n].numpy(), SR, **values)
        np.testing.assert_allclose(y[n].cpu().numpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator", ["finite-difference", "spsa"])
def test_gradients_follow_the_device_and_match_a_torch_twin(device, estimator):
    spec = ParameterSpec("gain_db", -12.0, 12.0)

    def gain(audio, sample_rate, gain_db):
        return audio * 10 ** (gain_db / 20)

    box = BlackBoxProcessor(gain, [spec], estimator=estimator, signal_gradient="straight-through", workers=2,
                            **({"samples": 1, "seed": 0} if estimator == "spsa" else {}))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 256, generator=gen).to(device).requires_grad_()
    raw = torch.randn(3, 1, generator=gen).to(device).requires_grad_()
    g = torch.randn(3, 2, 256, generator=gen).to(device)
    grad_x, grad_raw = torch.autograd.grad(box(x, gain_db=raw), (x, raw), g)
    twin = x * 10 ** (spec.to_natural(torch.sigmoid(raw))[:, :, None] / 20)
    (exact,) = torch.autograd.grad(twin, raw, g)
    assert grad_x.device == grad_raw.device == x.device
    assert torch.equal(grad_x, g)  # straight-through: the incoming gradient as is
    # one parameter: SPSA's single direction is exact too (+-1 times the slope, times the same sign)
    torch.testing.assert_close(grad_raw, exact, rtol=1e-3, atol=1e-5)


def test_deterministic_and_independent_of_the_thread_count():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 2, 3000, generator=gen)
    raw = {"cutoff_hz": torch.randn(7, 1, generator=gen), "gain_db": torch.randn(7, 1, generator=gen)}
    one = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=1)(x, **raw)
    three = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=3)
    assert torch.equal(three(x, **raw), one)
    assert torch.equal(three(x, **raw), one)


def test_output_follows_the_input_dtype_and_keeps_float64():
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=1)
    x = torch.randn(2, 1, 100, dtype=torch.float64)
    y = box(x, cutoff_hz=torch.zeros(2, 1), gain_db=torch.zeros(2, 1))
    assert y.dtype == torch.float64


class RecordingEffect:
    """An effect object that records which threads used it."""

    made = []

    def __init__(self):
        self.gain_db = None
        self.threads = set()
        RecordingEffect.made.append(self)

    def __call__(self, audio, sample_rate):
        self.threads.add(threading.get_ident())
        return audio * 10 ** (self.gain_db / 20)


def test_effect_factory_gives_one_instance_per_thread():
    RecordingEffect.made = []
    box = BlackBoxProcessor(effect_factory=RecordingEffect, parameters=[ParameterSpec("gain_db", -12.0, 12.0)],
                            workers=2)
    x = torch.randn(8, 2, 500)
    raw = box.raw_parameters(gain_db=np.linspace(-6, 6, 8))
    y = box(x, **raw)
    expected = x * torch.tensor(10 ** (np.linspace(-6, 6, 8) / 20), dtype=torch.float32)[:, None, None]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    assert 1 <= len(RecordingEffect.made) <= 2
    assert all(len(effect.threads) == 1 for effect in RecordingEffect.made)


def failing(kind):
    def effect(audio, sample_rate, gain_db):
        if gain_db > 0:
            if kind == "raise":
                raise RuntimeError("plug-in crashed")
            if kind == "nan":
                return audio * np.nan
            if kind == "shape":
                return audio[:, :-1]
        return audio

    return effect


@pytest.mark.parametrize("kind, problem", [
    ("raise", "the effect raised RuntimeError: plug-in crashed"),
    ("nan", "the effect returned NaN or Inf"),
    ("shape", r"the effect returned shape \(1, 99\); expected \(1, 100\) \(\[channels, samples\], as long as its input\)"),
])
def test_faults_name_the_processor_node_and_parameter_values(kind, problem):
    box = BlackBoxProcessor(failing(kind), [ParameterSpec("gain_db", -12.0, 12.0)], name="flaky", workers=2)
    raw = box.raw_parameters(gain_db=[-3.0, -3.0, 6.0])
    with pytest.raises(BlackBoxError, match=rf"black box 'flaky', node row 2: {problem}; parameters gain_db=6\b"):
        box(torch.randn(3, 1, 100), **raw)


def test_node_labels_replace_row_numbers_and_perturbed_renders_say_so():
    box = BlackBoxProcessor(failing("raise"), [ParameterSpec("gain_db", -12.0, 12.0)], name="flaky", workers=1)
    box.node_labels = ["kick", "snare"]
    with pytest.raises(BlackBoxError, match=r"black box 'flaky', snare: the effect raised RuntimeError"):
        box(torch.randn(2, 1, 50), **box.raw_parameters(gain_db=[-3.0, 3.0]))
    # at -1e-4 dB the forward render works but a finite-difference render crosses 0 dB
    raw = box.raw_parameters(gain_db=[-3.0, -1e-4])["gain_db"].requires_grad_()
    y = box(torch.randn(2, 1, 50), gain_db=raw)
    with pytest.raises(BlackBoxError, match=r"snare \(finite-difference render\)"):
        y.sum().backward()


def test_the_effect_cannot_write_into_the_callers_tensor():
    def in_place(audio, sample_rate):
        audio *= 2
        return audio

    box = BlackBoxProcessor(in_place, [], name="in_place", workers=1)
    x = torch.ones(1, 1, 10)
    with pytest.raises(BlackBoxError, match="read-only"):
        box(x)
    assert torch.equal(x, torch.ones(1, 1, 10))


def test_non_differentiable_parameter_gets_zero_and_one_warning():
    calls = []

    def stepped(audio, sample_rate, gain_db, bits):
        calls.append(1)
        return np.round(audio * 10 ** (gain_db / 20) * 2**bits) / 2**bits

    specs = [ParameterSpec("gain_db", -6.0, 6.0), ParameterSpec("bits", 4.0, 16.0, default=8.0, differentiable=False)]
    box = BlackBoxProcessor(stepped, specs, workers=1)
    raw = {k: torch.tensor([[v]], requires_grad=True) for k, v in box.default_parameters().items()}
    # Seeded and long enough that the gain's finite difference crosses some
    # rounding steps; an unseeded 64-sample input sometimes crossed none.
    x = torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(0))
    with pytest.warns(NonDifferentiableParameterWarning, match="'bits' is not differentiable"):
        y = box(x, **raw)
    calls.clear()
    y.sum().backward()
    assert len(calls) == 2  # central differences for gain_db only
    assert raw["bits"].grad.item() == 0.0 and raw["gain_db"].grad.item() != 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        box(x, **raw)  # the warning is given once


def test_auto_signal_gradient_is_settled_at_the_first_call_whose_input_wants_one():
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=1)
    raw = {"cutoff_hz": torch.zeros(1, 1), "gain_db": torch.zeros(1, 1)}
    box(torch.randn(1, 1, 2048), **raw)
    assert box.signal_gradient == "auto" and box.signal_probe is None  # nothing wanted a gradient
    x = torch.randn(1, 1, 2048, requires_grad=True, generator=torch.Generator().manual_seed(0))
    y = box(x, **raw)
    assert box.signal_gradient in ("spectral-ratio", "fft-ratio", "smooth-gain") and y.requires_grad
    assert box.signal_probe.scores[box.signal_gradient] > 0.9
    chosen = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=1, signal_gradient="none")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not chosen(x, **raw).requires_grad  # a stop asked for is silent


def test_a_black_box_nothing_linear_explains_stops_with_a_warning_once():
    from grafx_core.demo.multitrack import synthesise_multitrack

    def reverser(audio, sample_rate):  # backwards and mirrored in frequency: the lows come out as highs
        return (audio[:, ::-1] * (1 - 2 * (np.arange(audio.shape[-1]) % 2))).astype(np.float32)

    box = BlackBoxProcessor(reverser, [], name="reverser", workers=1, seed=0)
    # drums: white noise keeps its spectrum however it is shuffled, and a ratio passes its gradient on
    x = synthesise_multitrack(3, 0.25, 44100, seed=0)[1].float()[[0, 2], :1, :8192].clone().requires_grad_()
    with pytest.warns(StoppedSignalGradientWarning, match="black box 'reverser'"):
        assert not box(x).requires_grad
    assert box.signal_gradient == "none"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        box(x)  # settled: no second probe, no second warning


def test_bad_parameters_are_named():
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, name="lp")
    x = torch.randn(2, 1, 10)
    with pytest.raises(ParameterError, match="missing parameter 'gain_db'"):
        box(x, cutoff_hz=torch.zeros(2, 1))
    with pytest.raises(ParameterError, match=r"unexpected parameters \['q'\]"):
        box(x, cutoff_hz=torch.zeros(2, 1), gain_db=torch.zeros(2, 1), q=torch.zeros(2, 1))
    with pytest.raises(ParameterError, match=r"'gain_db' has shape \(3, 1\); expected \[2, 1\]"):
        box(x, cutoff_hz=torch.zeros(2, 1), gain_db=torch.zeros(3, 1))
    with pytest.raises(ParameterError, match="'gain_db' is nan at node row 1"):
        box(x, cutoff_hz=torch.zeros(2, 1), gain_db=torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(BlackBoxError, match="exactly one of function or effect_factory"):
        BlackBoxProcessor(lowpass, SPECS, effect_factory=RecordingEffect)
    with pytest.raises(BlackBoxError, match="black box 'lp': workers must be a positive int or None, got 0"):
        BlackBoxProcessor(lowpass, SPECS, workers=0, name="lp")


def test_a_control_may_share_the_input_signal_s_name():
    def scale(audio, sample_rate, x):
        return audio * x
    box = BlackBoxProcessor(scale, [ParameterSpec("x", 0.0, 2.0)], name="scale")
    audio, raw = torch.randn(2, 1, 16), torch.tensor([[0.3], [-1.0]])
    gains = [natural(float(r), box.specs[0]) for r in raw]
    expected = audio * torch.tensor(gains, dtype=torch.float32).reshape(2, 1, 1)
    torch.testing.assert_close(box(audio, x=raw), expected)


def test_copies_work_and_follow_the_protocol():
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, workers=2)
    assert box.parameter_size() == {"cutoff_hz": 1, "gain_db": 1}
    assert box.gradient_kind == "finite-difference" and box.inlets == ("main",) and box.outlets == ("main",)
    assert list(box.parameters()) == []  # stateless: parameters live outside
    x = torch.randn(4, 2, 200)
    raw = {"cutoff_hz": torch.zeros(4, 1), "gain_db": torch.zeros(4, 1)}
    assert torch.equal(copy.deepcopy(box)(x, **raw), box(x, **raw))
