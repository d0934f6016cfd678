"""Tangent stand-ins against autograd of the exact processor, the probe's choice and warnings, and
backward renders pooled across calls."""

from __future__ import annotations

import threading
from types import SimpleNamespace
import time
import warnings

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxProcessor, ParameterSpec, backward_pooling, get_processor
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.errors import EstimatorError, SignalGradientQualityError
from grafx_core.estimators import (
    FiniteDifference,
    StoppedSignalGradientWarning,
    WeakSignalGradientWarning,
    with_estimator,
)
from grafx_core.estimators.auto import probe_generator, probe_signal_gradient, scaled_signals
from grafx_core.estimators.linearisation import diagonal_perturbation, linearise
from grafx_core.estimators.tangent import TANGENT_BANDS, fit_tangent, tangent_directions, tangent_renders
from grafx_core.fitting import SpectralLoss

HEAVY = {"threshold_db": -30.0, "ratio": 6.0, "knee_db": 6.0, "attack_ms": 3.0, "release_ms": 100.0, "makeup_db": 0.0}
MODERATE = {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 6.0, "attack_ms": 10.0, "release_ms": 100.0,
            "makeup_db": 0.0}


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.fixture(scope="module")
def drums():
    _, sources = synthesise_multitrack(3, 0.25, 44100, seed=0)
    return sources.float()[[0, 2], :, :8192]  # kick and a second sounding track, stereo


@pytest.mark.parametrize("kind", ["gain-tangent", "tangent-ratio", "band-tangent", "wide-band-tangent"])
@pytest.mark.parametrize("channels", [(2, 2), (1, 2), (2, 1)])
def test_the_tangent_adjoint_passes_the_dot_product_test(kind, channels):
    gen = torch.Generator().manual_seed(0)
    cin, cout = channels
    x = torch.randn(2, cin, 3001, generator=gen, dtype=torch.float64)
    y = torch.tanh(x.mean(dim=1, keepdim=True).expand(-1, cout, -1))
    moved, directions, h = tangent_renders(kind, x, 1e-3)
    outputs = torch.tanh(moved.mean(dim=1, keepdim=True).expand(-1, cout, -1))
    stand_in = fit_tangent(kind, x, y, outputs, directions, h)
    v, w = torch.randn(x.shape, generator=gen, dtype=torch.float64), torch.randn(y.shape, generator=gen, dtype=torch.float64)
    left, right = float((stand_in.apply(v) * w).sum()), float((v * stand_in.adjoint(w)).sum())
    assert abs(left - right) <= 1e-9 * max(abs(left), 1.0)


@pytest.mark.parametrize("kind", ["band-tangent", "wide-band-tangent"])
def test_the_bands_add_up_to_the_input_and_share_its_energy(kind):
    x = torch.randn(2, 2, 5000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    bands = tangent_directions(kind, x)
    assert bands.shape == (2, TANGENT_BANDS, 2, 5000)
    torch.testing.assert_close(bands.sum(dim=1), x)
    energy = bands.pow(2).sum(dim=(2, 3)) / x.pow(2).sum(dim=(1, 2)).unsqueeze(1)
    assert float(energy.min()) > 0.5 / TANGENT_BANDS and float(energy.max()) < 2.0 / TANGENT_BANDS


def test_the_wide_bands_do_not_wrap_the_signals_end_round_to_its_start():
    # A burst at the very end of a silent signal: the circular split rings past the end into the start,
    # the wide stand-in's zero-padded split does not (what it differentiates along is what an upstream EQ moves).
    x = torch.zeros(2, 2, 8000, dtype=torch.float64)
    x[..., -600:] = torch.randn(2, 2, 600, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    head = {}
    for kind in ("band-tangent", "wide-band-tangent"):
        bands = tangent_directions(kind, x)
        torch.testing.assert_close(bands.sum(dim=1), x)
        head[kind] = float((bands[..., :2000].pow(2).sum(dim=(2, 3)) / bands.pow(2).sum(dim=(2, 3))).max())
    assert head["band-tangent"] > 1e-6 and head["wide-band-tangent"] < 1e-12


def test_the_wide_band_tangent_steps_each_band_by_its_share_of_five_percent():
    from grafx_core.estimators.tangent import WIDE_JVP_STEP

    x = torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    moved, directions, h = tangent_renders("wide-band-tangent", x, 1e-3)
    assert moved.shape == (2 * 2 * TANGENT_BANDS, 2, 4000)
    change = (h * directions).pow(2).mean(dim=(2, 3)).sqrt()  # [N, K]: each band's move, as an RMS
    torch.testing.assert_close(change, WIDE_JVP_STEP * x.pow(2).mean(dim=(1, 2)).sqrt().unsqueeze(1).expand(-1, 2))
    torch.testing.assert_close(moved.reshape(2, 2 * TANGENT_BANDS, 2, 4000)[:, 0], x + h[:, 0] * directions[:, 0])


def _upstream_gradient(processor, settings, x, signal_gradient=None):
    """Gradient of a spectral loss w.r.t. the gains of six fixed FIR colourings of ``x`` (an upstream EQ)."""
    gen = torch.Generator().manual_seed(3)
    taps = torch.randn(6, 1, 1, 48, generator=gen) * torch.exp(-torch.arange(48.0) / 12)
    bands = torch.stack([torch.nn.functional.conv1d(x.reshape(-1, 1, x.shape[-1]), k, padding=47)[..., :x.shape[-1]]
                         .reshape(x.shape) for k in taps])  # [6, N, C, L]
    theta = torch.full((6, 1, 1, 1), 0.3, requires_grad=True)
    box = processor if signal_gradient is None else with_estimator(processor, FiniteDifference(seed=0),
                                                                    signal_gradient=signal_gradient)
    params = {k: torch.full((x.shape[0], 1), v) for k, v in settings.items()}
    upstream = x + (theta * bands).sum(0)
    y = box(upstream, **params)
    with torch.no_grad():
        target = processor(0.5 * x, **params)
    loss = sum(SpectralLoss(target[i])(y[i]) for i in range(x.shape[0]))
    (grad,) = torch.autograd.grad(loss, theta)
    return grad.flatten()


@pytest.mark.parametrize("settings", [HEAVY, MODERATE], ids=["heavy", "moderate"])
def test_the_gain_tangent_gives_a_compressors_upstream_gradient(drums, settings, one_torch_thread):
    compressor = get_processor("dsp:compressor")
    exact = _upstream_gradient(compressor, settings, drums)
    estimate = _upstream_gradient(compressor, settings, drums, "gain-tangent")
    secant = _upstream_gradient(compressor, settings, drums, "spectral-ratio")
    assert _cos(estimate, exact) > 0.95
    assert 0.8 < float(estimate.norm() / exact.norm()) < 1.25
    assert _cos(estimate, exact) > _cos(secant, exact)


class _Saturator(torch.nn.Module):
    """A low-pass, a tanh and a high-pass: filters around a nonlinearity."""

    def forward(self, x, drive):
        lows = torch.nn.functional.avg_pool1d(torch.nn.functional.pad(x.reshape(-1, 1, x.shape[-1]), (7, 0)), 8, 1)
        shaped = torch.tanh(drive.reshape(-1, 1, 1) * lows.reshape(x.shape))
        return shaped - 0.9 * torch.nn.functional.pad(shaped, (1, 0))[..., :-1]

    def parameter_size(self):
        return {"drive": 1}


@pytest.mark.parametrize("kind, rtol", [("band-tangent", 2e-3), ("wide-band-tangent", 3e-2)])
def test_the_band_tangent_is_exact_along_its_bands(drums, kind, rtol):
    # To second order in its step: the wide stand-in's 5 % step leaves a third-order error of a few percent.
    saturator = _Saturator()
    drive = torch.full((2, 1), 6.0)
    x = drums.double()
    moved, directions, h = tangent_renders(kind, x, 1e-4)
    with torch.no_grad():
        y = saturator(x, drive)
        stand_in = fit_tangent(kind, x, y, saturator(moved, drive.repeat_interleave(2 * TANGENT_BANDS, 0)),
                               directions, h)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(saturator(leaf, drive), leaf, g)
    estimate = stand_in.adjoint(g)
    for k in range(TANGENT_BANDS):
        band = directions[:, k]
        along, truth = (estimate * band).sum(dim=(1, 2)), (exact * band).sum(dim=(1, 2))
        torch.testing.assert_close(along, truth, rtol=rtol, atol=1e-6 * float(truth.abs().max()))


@pytest.mark.slow
@pytest.mark.parametrize("processor, settings", [
    ("dsp:compressor", HEAVY),
    ("filtered saturator", {"drive": 6.0}),
], ids=["heavy compressor", "filtered saturator"])
def test_a_silent_choice_passes_a_good_upstream_gradient(drums, processor, settings, one_torch_thread):
    """The probe scores the vector-Jacobian product: a choice it trusts (no warning) must give the nodes
    upstream the gradient autograd gives, and one it does not trust must say what it measured."""
    effect = get_processor(processor) if processor.startswith("dsp:") else _Saturator()
    wrapped = with_estimator(effect, FiniteDifference(seed=0))
    params = {k: torch.full((2, 1), v) for k, v in settings.items()}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        wrapped(drums.clone().requires_grad_(), **params)
    chosen, probe = wrapped.signal_gradient, wrapped.signal_probe
    exact = _upstream_gradient(effect, settings, drums)
    estimate = _upstream_gradient(effect, settings, drums, chosen)
    cosine, ratio = _cos(estimate, exact), float(estimate.norm() / exact.norm())
    weak = [w for w in seen if issubclass(w.category, WeakSignalGradientWarning)]
    if probe.trusted:
        assert not weak
        assert cosine > 0.9 and 0.7 < ratio < 1.4, (chosen, cosine, ratio)
    else:
        assert weak and f"cosine {probe.cosines[chosen]:.3g}" in str(weak[0].message)


def test_the_tangent_ratio_of_a_filter_is_its_exact_gradient():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 2, 6000, generator=gen, dtype=torch.float64)
    taps = torch.randn(2, 1, 32, generator=gen, dtype=torch.float64) * torch.exp(-torch.arange(32.0) / 6)

    def filtered(v):
        return torch.nn.functional.conv1d(torch.nn.functional.pad(v, (31, 0)), taps.flip(-1), groups=2)

    moved, directions, h = tangent_renders("tangent-ratio", x, 1e-3)
    assert moved.shape == (4, 2, 6000)  # x + h x, then x - h x
    stand_in = fit_tangent("tangent-ratio", x, filtered(x), filtered(moved), directions, h)
    g = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(filtered(leaf), leaf, g)
    # the upstream gradient along x-like changes (what an EQ upstream makes) is what must match
    for k in range(4):
        u = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (15, 0)),
                                       torch.randn(2, 1, 16, generator=gen, dtype=torch.float64), groups=2)
        along, truth = (stand_in.adjoint(g) * u).sum(), (exact * u).sum()
        assert abs(float(along - truth)) < 0.02 * float((g.norm() * filtered(u).norm()))


class _HalfReversed(torch.nn.Module):
    """``a x + reverse(x)``: no stand-in explains the reversed part."""

    def __init__(self, direct: float) -> None:
        super().__init__()
        self.direct = direct

    def forward(self, x, gain):
        return (self.direct * x + torch.flip(x, [-1])) * gain[..., None]

    def parameter_size(self):
        return {"gain": 1}


class _Mirrored(torch.nn.Module):
    """``reverse(x)`` mirrored in frequency (times ``(-1)^n``): the lows come out as highs, backwards."""

    def forward(self, x, gain):
        alternating = 1 - 2 * (torch.arange(x.shape[-1]) % 2).to(x.dtype)
        return alternating * torch.flip(x, [-1]) * gain[..., None]

    def parameter_size(self):
        return {"gain": 1}


def test_a_weak_best_estimate_is_passed_on_with_its_measured_quality(drums):
    # Reversed drums: a stand-in passes on part of the upstream gradient, and says how much.
    music = drums[:, :1].clone().requires_grad_()
    wrapped = with_estimator(_HalfReversed(0.0), FiniteDifference(seed=0))
    with pytest.warns(WeakSignalGradientWarning, match=r"measured score .*: cosine -?\d\.\d+, norm ratio"):
        y = wrapped(music, gain=torch.ones(2, 1))
    assert wrapped.signal_gradient == wrapped.signal_probe.best != "none"
    assert not wrapped.signal_probe.trusted
    (grad,) = torch.autograd.grad(y.sum(), music)
    assert float(grad.abs().sum()) > 0
    # Reversed and mirrored: no stand-in passes on a direction, and the stop says what was measured.
    with pytest.warns(StoppedSignalGradientWarning, match=r"measured score .*: cosine -?0\.\d+.*below the cosine"):
        stopped = with_estimator(_Mirrored(), FiniteDifference(seed=0))
        assert not stopped(music, gain=torch.ones(2, 1)).requires_grad


def test_strict_estimators_raise_instead_of_passing_a_weak_estimate(drums):
    music = drums[:, :1].clone().requires_grad_()
    strict = with_estimator(_HalfReversed(0.0), FiniteDifference(seed=0, strict_signal_gradient=True))
    with pytest.raises(SignalGradientQualityError, match="_HalfReversed.*strict_signal_gradient"):
        strict(music, gain=torch.ones(2, 1))


class _SquareLaw(torch.nn.Module):
    """``gain x |x|``: its tangent is twice its secant, sample by sample, so a ratio passes half the gradient."""

    def forward(self, x, gain):
        return x * x.abs() * gain[..., None]

    def parameter_size(self):
        return {"gain": 1}


def test_a_choice_whose_norm_is_off_is_scaled_by_what_the_probe_measured(drums, one_torch_thread):
    x = drums[:, :1, :4096]
    wrapped = with_estimator(_SquareLaw(), FiniteDifference(seed=0))
    gain = torch.ones(2, 1)
    probe = probe_signal_gradient(wrapped.render_target(), (x,), gain, step=1e-3, rng=probe_generator(),
                                  candidates=("smooth-gain",))
    assert probe.cosines["smooth-gain"] > 0.9
    assert 0.4 < probe.norm_ratios["smooth-gain"] < 0.75  # about half (a smoothed gain, not per sample)
    assert probe.scale == pytest.approx(1 / probe.norm_ratios["smooth-gain"]) and probe.trusted
    assert 0.8 < probe.white_norm_ratio / probe.norm_ratios["smooth-gain"] < 1.25  # any loss sees it
    # The owner's input gradient is multiplied by the scale; its parameters' gradient is not.
    owner = SimpleNamespace(signal_probe=probe, signal_gradient="smooth-gain")
    for scaled in (False, True):
        music = x.clone().requires_grad_()
        raw = torch.ones(2, 1, requires_grad=True)
        signals = scaled_signals(owner, (music,)) if scaled else (music,)
        (signals[0] * raw[..., None]).square().sum().backward()
        if not scaled:
            plain, plain_raw = music.grad, raw.grad
    torch.testing.assert_close(music.grad, plain * probe.scale)
    torch.testing.assert_close(raw.grad, plain_raw)


def test_a_norm_error_only_the_losss_gradient_sees_is_not_scaled(drums, one_torch_thread):
    # A notch's FFT ratio is exact but in the bins the notch empties, which a log-spectral loss weighs most:
    # there its norm is off, under random output gradients it is not, and one scale cannot serve both.
    wrapped = with_estimator(get_processor("dsp:notch"), FiniteDifference(seed=0))
    target = wrapped.render_target()
    columns = target.flatten(get_processor("dsp:notch").default_parameters(2), 2)
    probe = probe_signal_gradient(target, (drums,), columns, step=1e-3, rng=probe_generator(),
                                  candidates=("fft-ratio",))
    assert probe.cosines["fft-ratio"] > 0.95 and probe.norm_ratios["fft-ratio"] > 1.25
    assert 0.9 < probe.white_norm_ratio < 1.1
    assert probe.scale == 1.0 and not probe.trusted
    # For a log-spectral loss like the probe's, an estimator can still ask for the loss's scale.
    loss = probe_signal_gradient(target, (drums,), columns, step=1e-3, rng=probe_generator(),
                                 candidates=("fft-ratio",), calibration="loss")
    assert loss.scale == pytest.approx(1 / loss.norm_ratios["fft-ratio"]) and loss.trusted
    chosen = with_estimator(get_processor("dsp:notch"), FiniteDifference(seed=0, signal_calibration="loss"))
    chosen(drums.clone().requires_grad_(), **get_processor("dsp:notch").default_parameters(2))
    assert chosen.signal_probe.scale == pytest.approx(loss.scale)
    with pytest.raises(EstimatorError, match="signal_calibration must be one of"):
        FiniteDifference(signal_calibration="always")


def test_a_probe_measures_the_same_whatever_the_estimators_seed_and_history(drums, one_torch_thread):
    # The probe draws from its own seed: the same input and parameters give the same figures and choice,
    # whether the estimator is seeded or not and however many calls it made before.
    x = drums[..., :4096].clone().requires_grad_()
    params = {k: torch.full((2, 1), v) for k, v in HEAVY.items()}
    probes = []
    for seed, earlier in ((0, 0), (None, 3)):
        wrapped = with_estimator(get_processor("dsp:compressor"), FiniteDifference(seed=seed))
        for _ in range(earlier):
            wrapped.estimator.generator()
        wrapped(x, **params)
        probes.append(wrapped.signal_probe)
    assert probes[0].choice == probes[1].choice
    assert probes[0].scores == probes[1].scores and probes[0].norm_ratios == probes[1].norm_ratios


@pytest.mark.slow
def test_the_choice_is_revisited_when_the_parameters_move_far(drums):
    wrapped = with_estimator(get_processor("dsp:compressor"), FiniteDifference(seed=0))
    x = drums[..., :4096].clone().requires_grad_()
    params = {k: torch.full((2, 1), v) for k, v in HEAVY.items()}
    wrapped(x, **params)
    first = wrapped.signal_probe
    wrapped(x, **{**params, "threshold_db": torch.full((2, 1), -30.1)})
    assert wrapped.signal_probe is first  # a small move keeps the choice
    wrapped(x, **{**params, "threshold_db": torch.full((2, 1), -5.0)})
    assert wrapped.signal_probe is not first


class _InFlight:
    """How many effect calls ran at once, at most."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *_: object) -> None:
        with self.lock:
            self.now -= 1


_IN_FLIGHT = _InFlight()


def _drive(audio, sample_rate, drive_db):
    with _IN_FLIGHT:
        time.sleep(0.002)  # long enough for calls of other boxes to overlap it when they can
    shaped = np.tanh(audio * 10 ** (drive_db / 20))
    return (shaped - 0.5 * np.concatenate([np.zeros_like(shaped[:, :1]), shaped[:, :-1]], axis=1)).astype(np.float32)


def _chain_gradients(pooled: bool):
    specs = [ParameterSpec("drive_db", 0.0, 24.0, 6.0)]
    boxes = [BlackBoxProcessor(_drive, specs, workers=1, seed=k, signal_gradient=kind)
             for k, kind in enumerate(["band-tangent", "gain-tangent", "diagonal", "spsa"] * 2)]
    x = torch.randn(2, 1, 2048, generator=torch.Generator().manual_seed(0), requires_grad=True)
    raws = [torch.full((2, 1), 0.1 * k, requires_grad=True) for k in range(len(boxes))]
    with backward_pooling(pooled):
        h = x
        for box, raw in zip(boxes, raws):
            h = 0.7 * box(h, drive_db=raw)
    _IN_FLIGHT.most = 0
    h.square().sum().backward()
    return x.grad, torch.cat([r.grad for r in raws]), _IN_FLIGHT.most


def test_pooled_backward_renders_overlap_and_give_the_same_gradients():
    *unpooled, alone = _chain_gradients(False)
    *pooled, together = _chain_gradients(True)
    for a, b in zip(unpooled, pooled):
        assert torch.equal(a, b) and float(a.abs().sum()) > 0
    assert alone == 1  # one worker per box: without pooling, one render at a time
    assert together > 1  # pooled: the eight boxes' backward renders run at once


def test_the_diagonal_follows_a_waveshaper_that_answers_late():
    gen = torch.Generator().manual_seed(6)
    x = 0.5 * torch.randn(2, 2, 4000, generator=gen, dtype=torch.float64)

    def late(v):  # tanh, three samples late (an oversampling saturator's filters delay it so)
        return torch.nn.functional.pad(torch.tanh(3 * v), (3, 0))[..., :-3]

    signs = torch.randint(0, 2, x.shape, generator=gen) * 2 - 1
    moved, h = diagonal_perturbation(x, signs, 1e-4)
    lin = linearise("diagonal", x, late(x), perturbed=late(moved), signs=signs, h=h)
    assert lin.lag.tolist() == [3, 3]
    g = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    leaf = x.clone().requires_grad_()
    (exact,) = torch.autograd.grad(late(leaf), leaf, g)
    assert _cos(lin.adjoint(g), exact) > 0.999


class _CountingTanh(torch.nn.Module):
    """tanh of a gain, counting the rows it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def forward(self, x, gain):
        self.rows += x.shape[0]
        return torch.tanh(gain[..., None] * x)

    def parameter_size(self):
        return {"gain": 1}


@pytest.mark.parametrize("kind", ["gain-tangent", "tangent-ratio", "band-tangent", "fine-band-tangent",
                                  "wide-band-tangent", "diagonal", "spectral-ratio"])
def test_a_backward_renders_what_the_budget_says(kind):
    from grafx_core.estimators.auto import RENDER_BUDGET, renders_per_node

    effect = _CountingTanh()
    wrapped = with_estimator(effect, FiniteDifference(seed=0), signal_gradient=kind)
    x = torch.randn(3, 2, 2048, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = wrapped(x, gain=torch.full((3, 1), 2.0))
    before = effect.rows
    y.square().sum().backward()
    assert (effect.rows - before) == 3 * renders_per_node(kind) <= 3 * RENDER_BUDGET


def test_the_diagonal_gives_a_hard_saturators_upstream_gain_gradient(drums):
    # Along the input itself (an upstream gain) a saturator's output all but stands still: the gradient
    # there is small next to the per-sample derivative, and a one-sided difference's second-order noise
    # swamps it; the central difference the estimators use does not.
    x = drums.double()
    drive = 10 ** (30 / 20)
    signs = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(8)) * 2 - 1
    moved, h = diagonal_perturbation(x, signs, 1e-3)
    opposite, _ = diagonal_perturbation(x, -signs, 1e-3)
    leaf = x.clone().requires_grad_()
    y = torch.tanh(drive * leaf)
    loss = SpectralLoss(torch.tanh(drive * 0.7 * x).sum(dim=0))
    (g,) = torch.autograd.grad(loss(y.sum(dim=0)), y, retain_graph=True)
    (exact,) = torch.autograd.grad(y, leaf, g)
    truth = (exact * x).sum(dim=(1, 2))
    shaped = {"perturbed": torch.tanh(drive * moved), "signs": signs, "h": h}
    central = linearise("diagonal", x, y.detach(), opposite=torch.tanh(drive * opposite), **shaped).adjoint(g)
    one_sided = linearise("diagonal", x, y.detach(), **shaped).adjoint(g)
    errors = [float(((v * x).sum(dim=(1, 2)) - truth).abs().max() / truth.abs().max()) for v in (central, one_sided)]
    assert errors[0] < 0.05 and errors[1] > 0.2


def test_the_probe_measures_a_hard_saturator_as_autograd_does(drums, one_torch_thread):
    # Its reference steps each test direction by a fraction of its own level: stepping the quiet highs of
    # a loud row by a fraction of the row's level crosses the saturator's knee (a secant, not a tangent),
    # and every candidate, the exact diagonal too, then scored cosine 0.4-0.6.
    wrapped = with_estimator(get_processor("dsp:distortion"), FiniteDifference(seed=0))
    drive_db = torch.full((2, 1), 30.0)
    probe = probe_signal_gradient(wrapped.render_target(), (drums,), drive_db, step=1e-3, rng=probe_generator())
    assert probe.choice == "diagonal" and probe.trusted
    assert probe.cosines["diagonal"] > 0.99 and 0.95 < probe.norm_ratios["diagonal"] < 1.05


class _Quantiser(torch.nn.Module):
    """8-bit rounding (steps of 1/256), as a bitcrusher."""

    def forward(self, x, gain):
        return torch.round(x * gain[..., None] * 256) / 256

    def parameter_size(self):
        return {"gain": 1}


def test_the_halves_of_a_quantisers_differences_disagree_and_a_saturators_agree():
    from grafx_core.estimators.tangent import halves_agreement

    x = torch.randn(3, 2, 4000, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x = x * torch.tensor([0.5, 0.004, 0.0])[:, None, None]  # loud, within a few steps of zero, silent
    moved, directions, h = tangent_renders("wide-band-tangent", x, 1e-3)
    k = directions.shape[1]
    smooth = halves_agreement(torch.tanh(4 * moved), torch.tanh(4 * x), k)
    stepped = halves_agreement(torch.round(moved * 256) / 256, torch.round(x * 256) / 256, k)
    assert float(smooth.min()) > 0.95
    assert float(stepped[1]) < 0.1  # going up and going down, different samples cross a step
    assert float(stepped[2]) == 1.0 == float(smooth[2])  # a silent row has nothing to disagree about


def test_the_probe_does_not_consider_a_wide_band_tangent_whose_differences_are_not_a_slope(drums, one_torch_thread):
    x = drums[..., :4096]
    quiet = x * (0.01 / x.abs().amax())  # peaks within a few steps of zero, as the seam bench's bitcrush tracks
    for effect, signal, considered in ((_Quantiser(), quiet, False), (_Saturator(), x, True)):
        wrapped = with_estimator(effect, FiniteDifference(seed=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = probe_signal_gradient(wrapped.render_target(), (signal,), torch.full((2, 1), 2.0), step=1e-3,
                                          rng=probe_generator(), candidates=("spectral-ratio", "wide-band-tangent"))
        assert ("wide-band-tangent" in probe.scores) is considered, (type(effect).__name__, probe.scores)


def test_the_wide_band_tangent_is_ranked_only_where_the_band_tangent_misses_the_aims(drums, one_torch_thread):
    from grafx_core.estimators.auto import TRUSTED_COSINE, TRUSTED_NORM

    wrapped = with_estimator(_Saturator(), FiniteDifference(seed=0))
    probe = probe_signal_gradient(wrapped.render_target(), (drums[..., :4096],), torch.full((2, 1), 2.0), step=1e-3,
                                  rng=probe_generator())
    band = (probe.cosines["band-tangent"], probe.norm_ratios["band-tangent"])
    assert band[0] >= TRUSTED_COSINE and TRUSTED_NORM[0] <= band[1] <= TRUSTED_NORM[1]
    assert "wide-band-tangent" in probe.cosines  # measured,
    assert "wide-band-tangent" not in probe.scores and probe.choice != "wide-band-tangent"  # but not ranked


def test_the_halves_agreement_of_a_very_quiet_smooth_effect_is_one():
    from grafx_core.estimators.tangent import halves_agreement

    # float32 changes whose norms multiply below float32's smallest normal number (a very quiet track)
    change = 1e-22 * torch.randn(1, 1, 1, 2000, generator=torch.Generator().manual_seed(10))
    y = torch.zeros(1, 1, 2000)
    outputs = torch.cat([y + change[:, 0], y - 0.9 * change[:, 0]])  # node-major: + step, then - step
    assert float(halves_agreement(outputs, y, 1)[0]) == pytest.approx(1.0, abs=1e-5)


def test_a_weak_choice_for_a_stepped_effect_says_its_fine_differences_are_not_a_slope(drums, one_torch_thread):
    from grafx_core.estimators.auto import FINE_TEST_STEP

    quiet = (drums[..., :4096] * (0.01 / drums.abs().amax())).clone().requires_grad_()
    # What the warning reports is true of the effect: numpy's rounding, stepped along the input by the fine step,
    # moves different samples going up and going down.
    x = quiet.detach().double().numpy()
    up = (np.round(x * (1 + FINE_TEST_STEP) * 256) - np.round(x * 256)).ravel()
    down = (np.round(x * 256) - np.round(x * (1 - FINE_TEST_STEP) * 256)).ravel()
    assert abs(up @ down) < 0.5 * np.linalg.norm(up) * np.linalg.norm(down)
    wrapped = with_estimator(_Quantiser(), FiniteDifference(seed=0))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        wrapped(quiet, gain=torch.ones(2, 1))
    probe = wrapped.signal_probe
    assert probe.stepped and not probe.trusted
    said = [str(w.message) for w in seen if issubclass(w.category, (WeakSignalGradientWarning,
                                                                   StoppedSignalGradientWarning))]
    assert len(said) == 1 and "response is stepped" in said[0]
    assert f"agree only to cosine {probe.fine_agreement[0]:.3g}, norm ratio {probe.fine_agreement[1]:.3g}" in said[0]
    # A smooth effect that no stand-in follows (time-reversed drums) warns without it.
    music = drums[:, :1].clone().requires_grad_()
    reversed_ = with_estimator(_HalfReversed(0.0), FiniteDifference(seed=0))
    with pytest.warns(WeakSignalGradientWarning) as weak:
        reversed_(music, gain=torch.ones(2, 1))
    assert not reversed_.signal_probe.stepped and all("stepped" not in str(w.message) for w in weak)
