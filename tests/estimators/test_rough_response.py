"""The probe finds an effect whose response is not smooth at the scale of a fit's steps, and says so."""

from __future__ import annotations

import warnings

import pytest
import torch

from grafx_core import get_processor
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.errors import SignalGradientQualityError
from grafx_core.estimators import FiniteDifference, GradientWarning, RoughSignalGradientWarning, with_estimator
from grafx_core.estimators.auto import FINE_TEST_STEP, TEST_STEP
from grafx_core.estimators.tangent import FINE_JVP_STEP, fit_tangent, tangent_renders
from grafx_core.fitting import SpectralLoss

LIMITER = {"threshold_db": -12.0, "ratio": 20.0, "knee_db": 0.0, "attack_ms": 0.1, "release_ms": 50.0,
           "makeup_db": 0.0}
MODERATE = {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 6.0, "attack_ms": 10.0, "release_ms": 100.0,
            "makeup_db": 0.0}


@pytest.fixture(scope="module")
def loud_drums():
    _, sources = synthesise_multitrack(3, 0.25, 44100, seed=0)
    return 2.0 * sources.float()[[0, 2], :, :8192]  # a kick 6 dB over the limiter's threshold, and a quiet track


def _params(settings, rows, dtype=torch.float32):
    return {k: torch.full((rows, 1), v, dtype=dtype) for k, v in settings.items()}


def _along_level(settings, x, steps):
    """A log-spectral loss's gradient ``g`` at the compressor's output, and ``<g, J x>`` by autograd and by
    central differences of the input's level at ``steps`` (float64)."""
    compressor = get_processor("dsp:compressor")
    x = x[:1].double()
    params = _params(settings, 1, torch.float64)
    leaf = x.clone().requires_grad_()
    y = compressor(leaf, **params)
    loss = SpectralLoss(compressor(0.5 * x, **params)[0].detach())
    (g,) = torch.autograd.grad(loss(y[0]), y, retain_graph=True)
    (vjp,) = torch.autograd.grad(y, leaf, g)
    with torch.no_grad():
        moved = [float((g * (compressor(x * (1 + h), **params) - compressor(x * (1 - h), **params))).sum() / (2 * h))
                 for h in steps]
    return float((vjp * x).sum()), moved


def test_a_hard_knee_limiter_whose_tangent_is_not_its_secant_warns_what_was_measured(loud_drums, one_torch_thread):
    # The property itself, from autograd: along the loud row's level the limiter's tangent holds at the
    # probe's fine step and not at its fit-sized one (the sign flips there).
    tangent, (fine, secant) = _along_level(LIMITER, loud_drums, (FINE_TEST_STEP, TEST_STEP))
    assert fine == pytest.approx(tangent, rel=1e-4)
    assert abs(secant - tangent) > abs(tangent)
    wrapped = with_estimator(get_processor("dsp:compressor"), FiniteDifference(seed=0))
    with pytest.warns(RoughSignalGradientWarning, match=r"not smooth at the scale of a fit's steps.*0\.03% and 2%"
                                                         r".*agree only to cosine -?\d\.\d+, norm ratio \d") as seen:
        y = wrapped(loud_drums.clone().requires_grad_(), **_params(LIMITER, 2))
    probe = wrapped.signal_probe
    assert probe.rough and not probe.trusted and probe.smoothness is not None
    message = str(seen[0].message)
    assert f"cosine {probe.smoothness[0]:.3g}, norm ratio {probe.smoothness[1]:.3g}" in message
    assert f"{probe.choice} measured cosine {probe.fine_cosines[probe.choice]:.3g}" in message
    assert y.requires_grad  # passed on, with the warning
    strict = with_estimator(get_processor("dsp:compressor"), FiniteDifference(seed=0, strict_signal_gradient=True))
    with pytest.raises(SignalGradientQualityError, match="Compressor.*not smooth.*strict_signal_gradient"):
        strict(loud_drums.clone().requires_grad_(), **_params(LIMITER, 2))


def test_a_smooth_compressor_is_measured_smooth_and_does_not_warn(loud_drums, one_torch_thread):
    tangent, (fine, secant) = _along_level(MODERATE, loud_drums, (FINE_TEST_STEP, TEST_STEP))
    assert secant == pytest.approx(tangent, rel=1e-2) and fine == pytest.approx(tangent, rel=1e-4)
    wrapped = with_estimator(get_processor("dsp:compressor"), FiniteDifference(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        wrapped(loud_drums.clone().requires_grad_(), **_params(MODERATE, 2))
    probe = wrapped.signal_probe
    assert probe.trusted and not probe.rough and not probe.tangent
    assert probe.smoothness[0] > 0.99 and 0.95 < probe.smoothness[1] < 1.05
    assert "fine-band-tangent" not in probe.scores  # rendered only where the response is rough


@pytest.mark.parametrize("channels", [(2, 2), (1, 2), (2, 1)])
def test_the_fine_band_tangent_is_a_linear_operator_and_its_adjoint(channels):
    gen = torch.Generator().manual_seed(0)
    cin, cout = channels
    x = torch.randn(2, cin, 3001, generator=gen, dtype=torch.float64)
    y = torch.tanh(x.mean(dim=1, keepdim=True).expand(-1, cout, -1))
    moved, directions, h = tangent_renders("fine-band-tangent", x, 1e-3)
    rms = x.pow(2).mean(dim=(1, 2)).sqrt()
    assert torch.allclose(h.reshape(2, -1) * directions.pow(2).mean(dim=(2, 3)).sqrt(),
                          FINE_JVP_STEP * rms.unsqueeze(1).to(h.dtype))  # each band moves by the fine step
    outputs = torch.tanh(moved.mean(dim=1, keepdim=True).expand(-1, cout, -1))
    stand_in = fit_tangent("fine-band-tangent", x, y, outputs, directions, h)
    v, w = torch.randn(x.shape, generator=gen, dtype=torch.float64), torch.randn(y.shape, generator=gen,
                                                                                 dtype=torch.float64)
    left, right = float((stand_in.apply(v) * w).sum()), float((v * stand_in.adjoint(w)).sum())
    assert abs(left - right) <= 1e-9 * max(abs(left), 1.0)
    # Along x itself (the bands' sum) it is the effect's tangent: sech^2 per sample.
    tangent = (1 - y.square()) * x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(stand_in.apply(x), tangent, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_fine_reference_that_is_float32_rounding_judges_nothing(one_torch_thread):
    # A noise gate is smooth (in float64 its two references agree), but in float32 its fine differences
    # over quiet tracks are rounding, which disagrees with the 2 % reference; their one-sided halves then
    # disagree with each other too, and no Rough warning is raised.
    _, sources = synthesise_multitrack(8, 0.25, 44100, seed=0)
    x = sources.float()[:, :, :8192]
    gate = get_processor("dsp:noise_gate")
    settings = {"threshold_db": -50.0, "ratio": 10.0, "knee_db": 6.0, "attack_ms": 1.0, "release_ms": 100.0,
                "range_db": 60.0}
    probes = {}
    for dtype in (torch.float64, torch.float32):
        wrapped = with_estimator(gate, FiniteDifference(seed=0))
        with warnings.catch_warnings():
            warnings.simplefilter("error", GradientWarning)
            wrapped(x.to(dtype).requires_grad_(), **_params(settings, 8, dtype))
        probes[dtype] = wrapped.signal_probe
    exact, rounded = probes[torch.float64], probes[torch.float32]
    assert exact.smoothness[0] > 0.99 and exact.fine_agreement[0] > 0.99 and not exact.rough
    assert rounded.smoothness[0] < 0.9 and rounded.fine_agreement[0] < 0.5
    assert not rounded.rough and rounded.trusted
