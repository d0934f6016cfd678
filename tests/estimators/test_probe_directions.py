"""The probe's test directions are an upstream equaliser's gain derivatives: causal, with no wrap-round."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import signal

from grafx_core import get_processor
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.estimators import FiniteDifference, GradientWarning, with_estimator
from grafx_core.estimators._directions import eq_gain_directions
from grafx_core.estimators.auto import EQ_EDGES, TRUSTED_NORM, NORM_PENALTY, _measure
from grafx_core.fitting import SpectralLoss


def _shelf(kind, w0, gain_db, q=1 / math.sqrt(2)):
    """Cookbook (RBJ) shelf coefficients, written out here as the reference."""
    big_a, cos, alpha = 10 ** (gain_db / 40), math.cos(w0), math.sin(w0) / (2 * q)
    root = 2 * math.sqrt(big_a) * alpha
    if kind == "low":
        b = [big_a * ((big_a + 1) - (big_a - 1) * cos + root), 2 * big_a * ((big_a - 1) - (big_a + 1) * cos),
             big_a * ((big_a + 1) - (big_a - 1) * cos - root)]
        a = [(big_a + 1) + (big_a - 1) * cos + root, -2 * ((big_a - 1) + (big_a + 1) * cos),
             (big_a + 1) + (big_a - 1) * cos - root]
    else:
        b = [big_a * ((big_a + 1) + (big_a - 1) * cos + root), -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
             big_a * ((big_a + 1) + (big_a - 1) * cos - root)]
        a = [(big_a + 1) - (big_a - 1) * cos + root, 2 * ((big_a - 1) - (big_a + 1) * cos),
             (big_a + 1) - (big_a - 1) * cos - root]
    return b, a


def test_the_directions_are_an_upstream_shelfs_gain_derivative_and_causal():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 2, 3000)))
    directions = eq_gain_directions(x, EQ_EDGES)  # [2, 3, 2, 3000]
    per_neper = 20 / math.log(10)
    for k, (kind, edge) in ((0, ("low", EQ_EDGES[0])), (2, ("high", EQ_EDGES[1]))):
        up, down = (_shelf(kind, math.pi * edge, sign * 1e-3) for sign in (1, -1))
        reference = (signal.lfilter(*up, x.numpy(), axis=-1) - signal.lfilter(*down, x.numpy(), axis=-1)) / 2e-3
        np.testing.assert_allclose(directions[:, k].numpy(), per_neper * reference, rtol=0, atol=1e-5)
    # Causal and linear, not circular: what happens at the end does not reach the start.
    late = torch.zeros_like(x)
    late[..., -200:] = x[..., -200:]
    moved = eq_gain_directions(late, EQ_EDGES)
    assert float(moved[..., :-200].abs().max()) < 1e-12 * float(moved.abs().max())
    # The three bands hold the input in their pass bands: white noise's energy splits among them.
    energy = directions.pow(2).mean(dim=(0, 2, 3)) / x.pow(2).mean()
    assert 0.0 < float(energy.sum()) < 1.5 and bool((energy > 0.005).all())


def test_inside_the_trusted_norm_the_score_is_the_cosine():
    true = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    for ratio in (TRUSTED_NORM[0], 1.0, TRUSTED_NORM[1]):
        score, cosine, _ = _measure(ratio * true, true)
        assert score == pytest.approx(cosine) and cosine == pytest.approx(1.0)
    score, _, _ = _measure(2 * TRUSTED_NORM[1] * true, true)  # a factor of two beyond the band
    assert score == pytest.approx(1.0 - NORM_PENALTY)
    score, _, _ = _measure(TRUSTED_NORM[0] / 4 * true, true)
    assert score == pytest.approx(1.0 - 2 * NORM_PENALTY)


def test_a_resonant_highpass_is_trusted_with_its_exact_adjoint(one_torch_thread):
    # Music that is loud up to its last sample behind a resonant highpass: with a circular split of the test
    # directions, their end wrapped round and every candidate scored 0.3-0.6 at a tenth of the norm
    # (a Weak warning, although the spectral ratios are exact for a filter).
    _, sources = synthesise_multitrack(8, 0.25, 44100, seed=0)
    x = sources.float()[[0, 2, 3, 5], :, :8192]
    highpass = get_processor("dsp:highpass")
    params = {"cutoff_hz": torch.full((4, 1), 3510.0), "q": torch.full((4, 1), 3.9)}
    wrapped = with_estimator(highpass, FiniteDifference(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        wrapped(x.clone().requires_grad_(), **params)
    probe = wrapped.signal_probe
    cosine, ratio = probe.measured(probe.choice)
    assert probe.trusted and cosine > 0.95 and TRUSTED_NORM[0] <= ratio <= TRUSTED_NORM[1], probe.describe()
    # What the choice passes to gains of causal colourings of the input upstream (not the probe's own
    # directions) is what autograd through the filter passes.
    gen = torch.Generator().manual_seed(3)
    taps = torch.randn(6, 1, 1, 48, generator=gen) * torch.exp(-torch.arange(48.0) / 12)
    bands = torch.stack([torch.nn.functional.conv1d(x.reshape(-1, 1, x.shape[-1]), k, padding=47)[..., :x.shape[-1]]
                         .reshape(x.shape) for k in taps])  # [6, rows, C, L]
    with torch.no_grad():
        target = highpass(0.5 * x, **params).sum(0)

    def upstream(processor):
        theta = torch.zeros(6, x.shape[0], 1, 1, requires_grad=True)
        (grad,) = torch.autograd.grad(SpectralLoss(target)(processor(x + (theta * bands).sum(0), **params).sum(0)),
                                      theta)
        return grad.flatten().double()

    estimated, true = upstream(wrapped), upstream(highpass)
    assert float(estimated @ true / (estimated.norm() * true.norm())) > 0.95
    assert TRUSTED_NORM[0] <= float(estimated.norm() / true.norm()) <= TRUSTED_NORM[1]
