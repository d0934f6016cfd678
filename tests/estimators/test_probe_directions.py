"""The automatic choice's probe measures the upstream gradient a graph sees, on linear filters too."""

from __future__ import annotations

import warnings

import pytest
import torch

from grafx_core import get_processor
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.estimators import FiniteDifference, WeakSignalGradientWarning, with_estimator
from grafx_core.estimators.auto import _eq_like
from grafx_core.fitting import SpectralLoss

RESONANT = {"cutoff_hz": 3510.0, "q": 3.9}
"""A resonant high-pass far above a bass-heavy row's energy (the first point of ``bench/seam.py``'s highpass row)."""
LEVELS = (0.3, 0.01, 0.003, 0.001)
"""Row levels spread as a console's faders spread them (the row the mix is made of, and quiet ones)."""


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.fixture(scope="module")
def spread():
    _, sources = synthesise_multitrack(8, 0.25, 44100, seed=0)
    x = sources.float()[[0, 2, 3, 5]]
    return x / x.pow(2).mean(dim=(1, 2), keepdim=True).sqrt() * torch.tensor(LEVELS)[:, None, None]


def _upstream_gradient(processor, x, signal_gradient=None):
    """Gradient of a mix's spectral loss w.r.t. the gains of six causal colourings of each row (an EQ upstream)."""
    gen = torch.Generator().manual_seed(3)
    taps = torch.randn(6, 1, 1, 48, generator=gen) * torch.exp(-torch.arange(48.0) / 12)
    bands = torch.stack([torch.nn.functional.conv1d(x.reshape(-1, 1, x.shape[-1]), k, padding=47)[..., :x.shape[-1]]
                         .reshape(x.shape) for k in taps])  # [6, N, C, L]
    theta = torch.full((6, x.shape[0], 1, 1), 0.3, requires_grad=True)
    box = processor if signal_gradient is None else with_estimator(processor, FiniteDifference(seed=0),
                                                                    signal_gradient=signal_gradient)
    params = {k: torch.full((x.shape[0], 1), v) for k, v in RESONANT.items()}
    y = box(x + (theta * bands).sum(0), **params)
    with torch.no_grad():
        target = processor(x * torch.tensor([0.5, 2.0, 1.0, 0.7])[:, None, None], **params)
    (grad,) = torch.autograd.grad(SpectralLoss(target.sum(0))(y.sum(0)), theta)
    return grad.flatten()


def test_the_eq_like_directions_are_causal_and_add_up_to_the_input(spread):
    # An upstream shelf or peak moves the input by a causal filtering of it: nothing of a later sample
    # reaches an earlier one, and nothing of the signal's end wraps round to its start.
    x = spread.double()
    bands = _eq_like(x)
    torch.testing.assert_close(bands.sum(dim=1), x)
    cut = x.clone()
    cut[..., 6000:] = 0
    torch.testing.assert_close(_eq_like(cut)[..., :6000], bands[..., :6000])
    # the lows below 100 Hz, the highs above 5.5 kHz (first-order crossovers at 345 Hz and 2.8 kHz)
    lows, highs = torch.fft.rfft(bands[:, 0]).abs().square(), torch.fft.rfft(bands[:, 2]).abs().square()
    bins = lows.shape[-1]
    assert float(lows[..., : bins // 200].sum()) > 100 * float(highs[..., : bins // 200].sum())
    assert float(highs[..., bins // 4:].sum()) > 20 * float(lows[..., bins // 4:].sum())


def test_a_linear_filters_probe_trusts_a_stand_in_that_gives_autograds_gradient(spread, one_torch_thread):
    # A zero-phase split of the probe's test directions rang ahead of the signal's cut-off end, where the
    # multi-resolution STFT loss's gradient is largest: every stand-in of this resonant high-pass then
    # measured cosine 0.5-0.8 at 0.1-0.7 of the norm, and the choice warned, while in a graph it was exact.
    highpass = get_processor("dsp:highpass")
    wrapped = with_estimator(highpass, FiniteDifference(seed=0))
    params = {k: torch.full((spread.shape[0], 1), v) for k, v in RESONANT.items()}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        wrapped(spread.clone().requires_grad_(), **params)
    probe = wrapped.signal_probe
    assert probe.trusted and not [w for w in seen if issubclass(w.category, WeakSignalGradientWarning)]
    exact = _upstream_gradient(highpass, spread)
    estimate = _upstream_gradient(highpass, spread, probe.choice) * probe.scale
    assert _cos(estimate, exact) > 0.95 and 0.8 < float(estimate.norm() / exact.norm()) < 1.25
