"""Analytic torch processors whose exact gradients the estimators are checked against."""

import pytest
import torch
from torch.nn import functional as F


class Gain(torch.nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * 10 ** (gain_db[:, :, None] / 20)


class TanhDistortion(torch.nn.Module):
    def parameter_size(self):
        return {"drive_db": 1}

    def forward(self, x, drive_db):
        return torch.tanh(x * 10 ** (drive_db[:, :, None] / 20))


class FIR(torch.nn.Module):
    """Causal FIR filter, 8 taps per node: y[t] = sum_k taps[k] x[t - k]."""

    def parameter_size(self):
        return {"taps": 8}

    def forward(self, x, taps):
        n, c, length = x.shape
        kernel = taps.flip(-1).repeat_interleave(c, 0)[:, None]
        y = F.conv1d(F.pad(x.reshape(1, n * c, length), (taps.shape[1] - 1, 0)), kernel, groups=n * c)
        return y.reshape(n, c, length)


class Biquad(torch.nn.Module):
    """Biquad (b0, b1, b2 / 1, a1, a2) applied by frequency sampling on a long FFT.

    With poles well inside the unit circle the FFT is long enough that this equals
    the recursive filter (checked against scipy.signal.lfilter in the tests).
    """

    def parameter_size(self):
        return {"b": 3, "a": 2}

    def forward(self, x, b, a):
        length = x.shape[-1]
        n_fft = 4 * length
        ones = torch.ones_like(a[:, :1])
        num = torch.fft.rfft(b, n=n_fft)
        den = torch.fft.rfft(torch.cat([ones, a], dim=1), n=n_fft)
        spectrum = torch.fft.rfft(x, n=n_fft) * (num / den)[:, None, :]
        return torch.fft.irfft(spectrum, n=n_fft)[..., :length]


def random_biquad(nodes: int, generator: torch.Generator) -> dict:
    """Stable biquads: complex poles at radius 0.5-0.8."""
    radius = 0.5 + 0.3 * torch.rand(nodes, 1, generator=generator)
    angle = 0.3 + 2.0 * torch.rand(nodes, 1, generator=generator)
    a = torch.cat([-2 * radius * torch.cos(angle), radius**2], dim=1)
    b = 0.5 * torch.randn(nodes, 3, generator=generator)
    return {"b": b, "a": a}


def analytic_cases(nodes: int = 3, seed: int = 0):
    """(name, processor, parameters) for the four analytic processors."""
    g = torch.Generator().manual_seed(seed)
    return [
        ("gain", Gain(), {"gain_db": 6 * torch.randn(nodes, 1, generator=g)}),
        ("tanh", TanhDistortion(), {"drive_db": 3 + 6 * torch.rand(nodes, 1, generator=g)}),
        ("fir", FIR(), {"taps": 0.3 * torch.randn(nodes, 8, generator=g)}),
        ("biquad", Biquad(), random_biquad(nodes, g)),
    ]


@pytest.fixture
def cases():
    return analytic_cases()


class CountingModule(torch.nn.Module):
    """Wraps a processor and records the number of rows of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def parameter_size(self):
        return self.inner.parameter_size()

    def forward(self, *signals, **params):
        self.calls.append(signals[0].shape[0])
        return self.inner(*signals, **params)


@pytest.fixture
def counting():
    return CountingModule


@pytest.fixture
def analytic():
    """The analytic processors and helpers, for tests that need a specific one."""
    from types import SimpleNamespace

    return SimpleNamespace(Gain=Gain, TanhDistortion=TanhDistortion, FIR=FIR, Biquad=Biquad,
                           random_biquad=random_biquad, cases=analytic_cases)
