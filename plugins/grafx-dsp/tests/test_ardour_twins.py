"""The twins of Ardour's a-eq, a-comp, fader and panners against independent references:
the plug-ins' own sample loops written out in numpy, and the pan laws' values at known
points. (Against the real plug-ins: plugins/grafx-ardour/tests/test_twins_vs_plugins.py.)"""

import math

import numpy as np
import pytest
import torch

import grafx_dsp as dsp
from grafx_dsp.ardour_eq import settled_value


def svf_loop(x, g, k, m):
    """Cytomic's linear trapezoidal SVF as a-eq runs it, sample by sample (float64)."""
    a1 = 1 / (1 + g * (g + k))
    a2, a3 = g * a1, g * g * a1
    s1 = s2 = 0.0
    out = np.empty_like(x)
    for n, v0 in enumerate(x):
        v3 = v0 - s2
        v1 = a1 * s1 + a2 * v3
        v2 = s2 + a2 * s1 + a3 * v3
        s1, s2 = 2 * v1 - s1, 2 * v2 - s2
        out[n] = m[0] * v0 + m[1] * v1 + m[2] * v2
    return out


@pytest.mark.parametrize("kind", ["low_shelf", "peak", "high_shelf"])
def test_a_eq_biquads_equal_the_state_variable_filter_loop(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3000)
    sr, f0, gain_db, q = 48000.0, 700.0, 7.5, 1.3
    g, amp = math.tan(math.pi * f0 / sr), 10 ** (gain_db / 40)
    k = 1 / (q * amp) if kind == "peak" else 1 / q
    m = {"peak": (1, k * (amp * amp - 1), 0), "low_shelf": (1, k * (amp - 1), amp * amp - 1),
         "high_shelf": (amp * amp, k * (1 - amp) * amp, 1 - amp * amp)}[kind]
    b, a = dsp.a_eq_coefficients(*(torch.tensor([[v]], dtype=torch.float64) for v in (f0, gain_db, q)), (kind,), sr)
    from scipy.signal import lfilter

    ours = lfilter(b[0, 0].numpy(), a[0, 0].numpy(), x)
    np.testing.assert_allclose(ours, svf_loop(x, g, k, m), rtol=0, atol=1e-12)


def test_settled_value_stops_where_the_plug_ins_glide_stops():
    sr, tolerance = 44100.0, 0.05
    tau = np.float32(1 - math.exp(-2 * math.pi * 64 * 25 / sr))
    for target in (-17.3, -0.04, 0.3, 6.0, 19.9):
        v = np.float32(0)
        while not abs(v - np.float32(target)) < tolerance:
            v = np.float32(v + tau * (np.float32(target) - v))
        assert float(settled_value(torch.tensor(target, dtype=torch.float64), tolerance, sr)) == pytest.approx(
            float(v), abs=1e-5)


def comp_loop(x, thr, ratio, knee, att_ms, rel_ms, makeup, sr):
    """a-comp's run() for one stereo item with settled makeup, in float32 like the plug-in."""
    f = np.float32
    width = f(6) * f(knee) + f(0.01)
    ac, rc = f(math.exp(-1000 / (att_ms * sr))), f(math.exp(-1000 / (rel_ms * sr)))
    old, out = f(0), np.empty_like(x)
    for i in range(x.shape[1]):
        peak = f(np.abs(x[:, i]).max())
        lx = f(-160) if peak == 0 else f(20) * np.log10(peak)
        if f(2) * (lx - thr) < -width:
            ly = lx
        elif f(2) * (lx - thr) > width:
            ly = f(thr) + (lx - f(thr)) / f(ratio)
        else:
            ly = lx + (f(1) / f(ratio) - f(1)) * (lx - f(thr) + width / 2) ** 2 / (f(2) * width)
        cur = f(lx - ly)
        if cur < old:
            cur = rc * old + (f(1) - rc) * cur
        elif cur > old:
            cur = ac * old + (f(1) - ac) * cur
        old = f(cur)
        out[:, i] = x[:, i] * f(10) ** (-cur / f(20)) * f(10) ** (f(makeup) / f(20))
    return out


@pytest.mark.parametrize("settings", [(-20.0, 4.0, 2.0, 3.0, 80.0, 2.0), (-35.0, 12.0, 0.1, 0.2, 500.0, 0.5),
                                      (-10.0, 1.5, 6.0, 50.0, 5.0, 10.0)])
def test_a_comp_equals_the_plug_ins_sample_loop(settings):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 2500, generator=gen) * torch.linspace(0.02, 0.8, 2500)
    thr, ratio, knee, att, rel, makeup = settings
    comp = dsp.AComp(48000)
    y = comp(x, *(torch.tensor([[v]]) for v in (thr, ratio, knee, att, rel, makeup)))
    ref = comp_loop(x[0].numpy(), thr, ratio, knee, att, rel, makeup, 48000)
    error = float(((y[0].numpy() - ref) ** 2).mean() / (ref ** 2).mean())
    assert 10 * math.log10(error) < -80


def test_a_comp_batch_equals_items_and_its_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 800, generator=gen, dtype=torch.float64) * 0.5
    comp = dsp.AComp(8000)
    params = {k: v.to(torch.float64) for k, v in comp.default_parameters(3).items()}
    params["threshold_db"] = torch.tensor([[-12.0], [-20.0], [-30.0]], dtype=torch.float64)
    batch = comp(x, **params)
    for n in range(3):
        alone = comp(x[n:n + 1], **{k: v[n:n + 1] for k, v in params.items()})
        torch.testing.assert_close(batch[n:n + 1], alone, rtol=1e-12, atol=1e-12)
    thr = params["threshold_db"][:1].clone().requires_grad_(True)

    def loss(t):
        return comp(x[:1], **{**{k: v[:1] for k, v in params.items()}, "threshold_db": t}).pow(2).sum()

    (grad,) = torch.autograd.grad(loss(thr), thr)
    step = 1e-5
    numeric = (loss(thr.detach() + step) - loss(thr.detach() - step)) / (2 * step)
    assert float(grad) == pytest.approx(float(numeric), rel=1e-4)


def test_fader_pan_laws_match_ardours_values():
    left, right = dsp.ardour_pan_gains(torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(left, torch.tensor([1.0, 10 ** (-3 / 20), 0.0]))
    torch.testing.assert_close(right, torch.tensor([0.0, 10 ** (-3 / 20), 1.0]))
    left, right = dsp.ardour_balance_gains(torch.tensor([0.2, 0.5, 0.9]))
    torch.testing.assert_close(left, torch.tensor([1.0, 1.0, 0.2]))
    torch.testing.assert_close(right, torch.tensor([0.4, 1.0, 1.0]))
    x = torch.ones(1, 2, 4)
    y = dsp.ArdourFader()(x, torch.tensor([[-6.0]]), torch.tensor([[0.25]]))
    torch.testing.assert_close(y[0, :, 0], torch.tensor([1.0, 0.5]) * 10 ** (-6 / 20))
    mono = dsp.ArdourFader()(torch.ones(1, 1, 4), torch.tensor([[0.0]]), torch.tensor([[0.5]]))
    torch.testing.assert_close(mono[0, :, 0], torch.full((2,), 10 ** (-3 / 20)))


def test_twin_ranges_never_leave_the_plug_ins_ranges():
    """Up to float rounding at the guard bands' ends (the export clamps those)."""
    huge = torch.tensor([[1e6]], dtype=torch.float64)
    assert float(dsp.ArdourFader().limit("gain_db", huge)) <= dsp.FADER_MAX_DB
    assert float(dsp.AComp().limit("makeup_db", -huge)) >= 0.0
    assert float(dsp.AComp().limit("ratio", -huge)) >= 1.0
    assert float(dsp.AEq(48000).limit("peak_bw", huge)) <= 4.0
    assert float(dsp.AEq(48000).limit("low_shelf_hz", -huge)) >= 20.0
