"""Gradients: finite differences agree with an independent central difference; the kit passes; a fit recovers."""

from __future__ import annotations

import torch

from grafx_lv2 import lv2_processor


def test_finite_differences_agree_with_a_central_difference_in_raw_units(require, noise):
    processor = lv2_processor(require("dpf_3_band_eq"), include=["low", "mid", "master"])
    x = noise(3, samples=4096, seed=1)
    gen = torch.Generator().manual_seed(2)
    raw = {s.name: (0.8 * torch.randn(3, 1, generator=gen)).requires_grad_() for s in processor.specs}
    weights = noise(3, samples=4096, seed=3)
    (processor(x, **raw) * weights).sum().backward()
    eps = 1e-2
    for name in raw:
        reference = torch.zeros(3, 1, dtype=torch.float64)
        with torch.no_grad():
            for sign in (1.0, -1.0):
                shifted = {k: v.detach() + (sign * eps if k == name else 0.0) for k, v in raw.items()}
                loss = (processor(x, **shifted).double() * weights.double()).sum(dim=(1, 2))
                reference[:, 0] += sign * loss / (2 * eps)
        torch.testing.assert_close(raw[name].grad.double(), reference, rtol=0.02, atol=1e-3)


def _log_spectrum(y: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.fft.rfft(y).abs().pow(2) + 1e-6)


def test_a_short_fit_recovers_hidden_eq_gains(require, noise):
    processor = lv2_processor(require("dpf_3_band_eq"), include=["low", "high"])
    x = noise(2, samples=4096, seed=6)
    hidden = processor.raw_parameters(low=torch.tensor([6.0, -9.0]), high=torch.tensor([8.0, -2.0]))
    with torch.no_grad():
        target = _log_spectrum(processor(x, **hidden))
    raw = {k: torch.full((2, 1), v, requires_grad=True) for k, v in processor.default_parameters().items()}
    optimiser = torch.optim.Adam(raw.values(), lr=0.1)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, 0.95)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = (_log_spectrum(processor(x, **raw)) - target).pow(2).mean()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    fitted = processor.natural_parameters(**{k: v.detach() for k, v in raw.items()})
    truth = processor.natural_parameters(**hidden)
    assert losses[-1] < 1e-2 * losses[0]
    for name in raw:
        torch.testing.assert_close(fitted[name], truth[name], rtol=0, atol=0.5)  # dB
