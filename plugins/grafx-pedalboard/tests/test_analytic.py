"""Pedalboard effects against exact references: outputs and estimated gradients.

Gain is ``x * 10**(gain_db / 20)`` and Distortion ``tanh(x * 10**(drive_db / 20))``;
the peak and shelf filters are RBJ biquads and the low/high-pass filters
bilinear one-pole filters (JUCE's designs). Gradients of the black box
(finite differences through pedalboard) are compared with autograd through
an exact torch twin fed by the same sigmoid map from raw parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_pedalboard import pedalboard_processor

SR = 44100


def raw_for(processor, **natural: float) -> dict[str, torch.Tensor]:
    """Raw ``[2, 1]`` parameters (two nodes, the second 10% of the range higher in raw units)."""
    raw = processor.raw_parameters(**natural)
    return {k: torch.cat([v, v + 0.4]).requires_grad_() for k, v in raw.items()}


def twin_natural(processor, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The natural values ``[nodes, 1]`` (float64, differentiable) the black box derives from ``raw``."""
    return {s.name: s.to_natural(torch.sigmoid(raw[s.name].double())) for s in processor.specs}


def compare_gradients(processor, x, raw, twin, rtol: float) -> None:
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = processor(x, **raw)
    (y.double() * weights).sum().backward()
    estimated = {k: v.grad.clone() for k, v in raw.items()}
    exact_raw = {k: v.detach().clone().requires_grad_() for k, v in raw.items()}
    y_exact = twin(x.double(), **twin_natural(processor, exact_raw))
    torch.testing.assert_close(y.double(), y_exact, rtol=0, atol=2e-4 * float(y_exact.detach().abs().max()))
    (y_exact * weights).sum().backward()
    for name, grad in estimated.items():
        exact = exact_raw[name].grad
        error = float((grad - exact).norm() / exact.norm())
        assert error < rtol, f"{name}: relative gradient error {error:.2e} (estimated {grad.ravel().tolist()}, " \
                             f"exact {exact.ravel().tolist()})"


def test_gain_gradient_matches_the_exact_formula(bursts):
    processor = pedalboard_processor("gain")
    compare_gradients(processor, bursts(2), raw_for(processor, gain_db=-6.0),
                      lambda x, gain_db: x * 10 ** (gain_db[..., None] / 20), rtol=1e-4)


def test_distortion_gradient_matches_the_exact_formula(bursts):
    processor = pedalboard_processor("distortion")
    compare_gradients(processor, bursts(2), raw_for(processor, drive_db=12.0),
                      lambda x, drive_db: torch.tanh(x * 10 ** (drive_db[..., None] / 20)), rtol=1e-4)


def rbj(kind: str, f: float, q: float, gain_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Robert Bristow-Johnson's cookbook coefficients, normalised so that ``a[0] == 1``."""
    A, w = 10 ** (gain_db / 40), 2 * math.pi * f / SR
    alpha, c = math.sin(w) / (2 * q), math.cos(w)
    s = 2 * math.sqrt(A) * alpha
    if kind == "peak_filter":
        b, a = [1 + alpha * A, -2 * c, 1 - alpha * A], [1 + alpha / A, -2 * c, 1 - alpha / A]
    elif kind == "low_shelf_filter":
        b = [A * ((A + 1) - (A - 1) * c + s), 2 * A * ((A - 1) - (A + 1) * c), A * ((A + 1) - (A - 1) * c - s)]
        a = [(A + 1) + (A - 1) * c + s, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - s]
    else:
        b = [A * ((A + 1) + (A - 1) * c + s), -2 * A * ((A - 1) + (A + 1) * c), A * ((A + 1) + (A - 1) * c - s)]
        a = [(A + 1) - (A - 1) * c + s, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - s]
    return np.array(b) / a[0], np.array(a) / a[0]


@pytest.mark.parametrize("kind", ["peak_filter", "low_shelf_filter", "high_shelf_filter"])
@pytest.mark.parametrize("f, q, gain_db", [(1000.0, 0.7, 6.0), (150.0, 2.0, -9.0), (6000.0, 0.5, 12.0)])
def test_eq_filters_are_rbj_biquads(bursts, kind, f, q, gain_db):
    processor = pedalboard_processor(kind)
    x = bursts(1)
    raw = processor.raw_parameters(cutoff_frequency_hz=f, q=q, gain_db=gain_db)
    natural = {k: float(v) for k, v in processor.natural_parameters(**raw).items()}
    b, a = rbj(kind, natural["cutoff_frequency_hz"], natural["q"], natural["gain_db"])
    reference = scipy.signal.lfilter(b, a, x[0].double().numpy())
    y = processor(x, **raw)[0].double().numpy()
    # pedalboard designs in float32: 1e-4 of the peak at 80 Hz, far less above
    assert np.abs(y - reference).max() < 3e-4 * np.abs(reference).max()


@pytest.mark.parametrize("kind", ["lowpass_filter", "highpass_filter"])
@pytest.mark.parametrize("f", [100.0, 1000.0, 10000.0])
def test_first_order_filters_are_bilinear_one_poles(bursts, kind, f):
    processor = pedalboard_processor(kind)
    x = bursts(1)
    raw = processor.raw_parameters(cutoff_frequency_hz=f)
    cutoff = float(processor.natural_parameters(**raw)["cutoff_frequency_hz"])
    n = math.tan(math.pi * cutoff / SR)
    b = [n, n] if kind == "lowpass_filter" else [1.0, -1.0]
    reference = scipy.signal.lfilter(np.array(b) / (n + 1), [1.0, (n - 1) / (n + 1)], x[0].double().numpy())
    y = processor(x, **raw)[0].double().numpy()
    assert np.abs(y - reference).max() < 1e-5 * np.abs(reference).max()


@pytest.mark.parametrize("kind", ["peak_filter", "low_shelf_filter", "high_shelf_filter"])
def test_eq_gradients_match_the_grafx_dsp_twin(bursts, kind):
    biquad = pytest.importorskip("grafx_dsp.biquad")
    processor = pedalboard_processor(kind)
    dsp_type = {"peak_filter": "peak", "low_shelf_filter": "low_shelf", "high_shelf_filter": "high_shelf"}[kind]

    def twin(x, cutoff_frequency_hz, q, gain_db):
        b, a = biquad.biquad_coefficients(dsp_type, cutoff_frequency_hz, q, gain_db, SR)
        return biquad.sos_filter(x, b, a)

    raw = raw_for(processor, cutoff_frequency_hz=1500.0, q=0.9, gain_db=6.0)
    compare_gradients(processor, bursts(2), raw, twin, rtol=5e-3)
