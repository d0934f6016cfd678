"""Dynamics against hand-computed references: the static curves against
Giannoulis et al.'s piecewise formulas, the ballistics against the textbook
per-sample recursion, time constants measured on level steps."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import grafx_dsp as dsp
from grafx_dsp.ballistics import smooth_block, smooth_terms
from grafx_dsp.dynamics import compressor_gain_db, gate_gain_db, level_db

FS = 44100.0


def compressor_curve(level, threshold, ratio, knee, makeup):
    """Gain in dB of the soft-knee static curve (Giannoulis et al. 2012, eq. 4)."""
    if 2 * (level - threshold) < -knee:
        out = level
    elif knee > 0 and 2 * abs(level - threshold) <= knee:
        out = level + (1 / ratio - 1) * (level - threshold + knee / 2) ** 2 / (2 * knee)
    else:
        out = threshold + (level - threshold) / ratio
    return out - level + makeup


def detected(level):
    """The detector's level of a constant signal: its power plus the -100 dB floor."""
    return 10 * math.log10(10 ** (level / 10) + 1e-10)


def expander_reduction(level, threshold, ratio, knee):
    """Gain reduction in dB of the soft-knee downward expander (the compressor's curve mirrored)."""
    under = threshold - level
    if 2 * under < -knee:
        return 0.0
    if knee > 0 and 2 * abs(under) <= knee:
        return (ratio - 1) * (under + knee / 2) ** 2 / (2 * knee)
    return (ratio - 1) * under


def constant_level(levels_db, samples, channels=2):
    amplitude = 10.0 ** (torch.tensor(levels_db, dtype=torch.float64) / 20)
    return amplitude.reshape(-1, 1, 1).expand(-1, channels, samples).clone()


@pytest.mark.parametrize("knee", [0.0, 6.0, 12.0])
def test_compressor_settles_on_its_static_curve(knee):
    levels = np.linspace(-45.0, 0.0, 31)
    threshold, ratio, makeup = -20.0, 4.0, 3.0
    x = constant_level(levels, 4410)
    y = dsp.compressor(x, threshold, ratio, knee, attack_ms=1.0, release_ms=50.0, makeup_db=makeup,
                       sample_rate=FS)
    measured = 20 * torch.log10(y[:, 0, -1] / x[:, 0, -1]).numpy()
    expected = [compressor_curve(detected(level), threshold, ratio, knee, makeup) for level in levels]
    np.testing.assert_allclose(measured, expected, atol=1e-6)


@pytest.mark.parametrize("knee", [0.0, 6.0])
def test_gate_settles_on_the_expander_curve_capped_by_its_range(knee):
    levels = np.linspace(-90.0, -10.0, 33)
    threshold, ratio, gate_range = -40.0, 3.0, 50.0
    x = constant_level(levels, 8820)
    y = dsp.noise_gate(x, threshold, ratio, knee, attack_ms=1.0, release_ms=20.0, range_db=gate_range,
                       sample_rate=FS)
    measured = 20 * torch.log10(y[:, 0, -1] / x[:, 0, -1]).numpy()
    expected = [-min(expander_reduction(detected(level), threshold, ratio, knee), gate_range) for level in levels]
    np.testing.assert_allclose(measured, expected, atol=1e-6)


def reference_ballistics(control, attack_ms, release_ms):
    """The textbook per-sample decoupled peak detector."""
    a_attack = math.exp(-1000 / (attack_ms * FS))
    a_release = math.exp(-1000 / (release_ms * FS))
    peak = smooth = 0.0
    out = np.empty_like(control)
    for n, value in enumerate(control):
        peak = max(value, a_release * peak)
        smooth = a_attack * smooth + (1 - a_attack) * peak
        out[n] = smooth
    return out


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(0.1, 1.0), (5.0, 40.0), (30.0, 3.0)])
def test_ballistics_equal_the_per_sample_recursion(attack_ms, release_ms):
    gen = torch.Generator().manual_seed(3)
    control = (torch.randn(1, 1, 4000, generator=gen, dtype=torch.float64) * 6).relu()
    control[..., 2000:2600] = 0.0
    smoothed = dsp.ballistics(control, attack_ms, release_ms, FS)
    expected = reference_ballistics(control[0, 0].numpy(), attack_ms, release_ms)
    np.testing.assert_allclose(smoothed[0, 0].numpy(), expected, atol=1e-8)


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(0.05, 0.5), (0.1, 50.0), (5.0, 40.0), (30.0, 3.0)])
def test_a_streams_block_envelope_equals_the_per_sample_recursion_across_blocks(attack_ms, release_ms):
    # Two nodes with their own times (the fast one splits a block into chunks), blocks of uneven length.
    gen = torch.Generator().manual_seed(4)
    control = (torch.randn(2, 1, 9000, generator=gen, dtype=torch.float64) * 6).relu()
    control[..., 2000:2600] = 0.0
    attack = torch.tensor([attack_ms, 7.0], dtype=torch.float64)
    release = torch.tensor([release_ms, 200.0], dtype=torch.float64)
    carry: dict = {}
    terms = smooth_terms(attack, release, FS, 4096, control.device)
    blocks = [smooth_block(control[..., s:e], terms, carry)
              for s, e in [(0, 4096), (4096, 4196), (4196, 8292), (8292, 9000)]]
    streamed = torch.cat(blocks, dim=-1)
    assert streamed.dtype == torch.float64
    for row in range(2):
        expected = reference_ballistics(control[row, 0].numpy(), float(attack[row]), float(release[row]))
        np.testing.assert_allclose(streamed[row, 0].numpy(), expected, rtol=1e-12, atol=1e-12)


def test_a_streams_block_envelope_has_the_gradient_of_its_recursion_across_blocks():
    gen = torch.Generator().manual_seed(5)
    control = (3 * torch.randn(2, 1, 120, generator=gen, dtype=torch.float64)).relu().requires_grad_()
    attack = torch.tensor([0.05, 0.2], dtype=torch.float64, requires_grad=True)
    release = torch.tensor([1.0, 0.3], dtype=torch.float64, requires_grad=True)

    def streamed(v, a, r):
        carry: dict = {}
        terms = smooth_terms(a, r, FS, 50, v.device)
        return torch.cat([smooth_block(v[..., s:s + 50], terms, carry) for s in (0, 50, 100)], dim=-1)

    assert torch.autograd.gradcheck(streamed, (control, attack, release))


@pytest.mark.parametrize("sidechain", [False, True])
def test_a_streamed_compressor_has_the_one_render_output_and_parameter_gradients(sidechain):
    # Blocks with their state carried (not detached) against one call, in float64: the block kernel's
    # closed form and the one render's FFT smoother are the same function, so are their gradients.
    proc = dsp.SidechainCompressor() if sidechain else dsp.Compressor()
    gen = torch.Generator().manual_seed(8)
    x = 0.5 * torch.randn(2, 2, 3000, generator=gen, dtype=torch.float64)
    key = 0.5 * torch.randn(2, 1, 3000, generator=gen, dtype=torch.float64)
    signals = (x, key) if sidechain else (x,)
    values = {"threshold_db": [-30.0, -12.0], "ratio": [4.0, 12.0], "knee_db": [6.0, 0.0],
              "attack_ms": [0.1, 8.0], "release_ms": [30.0, 200.0], "makeup_db": [2.0, -1.0]}

    def parameters():
        return {k: torch.tensor(v, dtype=torch.float64).reshape(2, 1).requires_grad_() for k, v in values.items()}

    weights = torch.randn(2, 2, 3000, generator=gen, dtype=torch.float64)
    whole_params, block_params = parameters(), parameters()
    whole = proc(*signals, **whole_params)
    state, pieces = proc.initial_state(*signals, **block_params), []
    for start, stop in [(0, 1024), (1024, 1100), (1100, 3000)]:
        y, state = proc.forward_stateful(state, *(s[..., start:stop] for s in signals), **block_params)
        pieces.append(y)
    streamed = torch.cat(pieces, dim=-1)
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-9)
    (whole * weights).sum().backward()
    (streamed * weights).sum().backward()
    for name in values:
        torch.testing.assert_close(block_params[name].grad, whole_params[name].grad, rtol=1e-6, atol=1e-9)


def release_crossing_ms(attack_ms, release_ms):
    """When a unit step down, decaying with the release time and smoothed by
    the attack one-pole, falls to 1/e (continuous time, solved by brentq)."""
    tr, ta = release_ms, attack_ms
    response = lambda t: (tr * math.exp(-t / tr) - ta * math.exp(-t / ta)) / (tr - ta) - math.exp(-1)  # noqa: E731
    return brentq(response, 0.0, 10 * (tr + ta))


def crossing_ms(curve, fraction, start):
    """Milliseconds after ``start`` until ``curve`` (normalised 0 -> 1) first passes ``fraction``."""
    index = np.argmax(curve[start:] >= fraction)
    return 1000 * index / FS


def step_level(quiet_db, loud_db, up_at, down_at, samples):
    levels = torch.full((1, 1, samples), quiet_db, dtype=torch.float64)
    levels[..., up_at:down_at] = loud_db
    return levels


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(1.0, 100.0), (10.0, 300.0), (0.5, 20.0)])
def test_compressor_attack_and_release_times_measured_on_a_step(attack_ms, release_ms):
    up, down, samples = 4410, 4410 + int(0.2 * FS), int(1.6 * FS)
    level = step_level(-100.0, 0.0, up, down, samples)
    reduction = -compressor_gain_db(level, -20.0, 4.0, 0.0, attack_ms, release_ms, 0.0, FS)[0, 0].numpy()
    full = 15.0  # (1 - 1/4) * 20 dB
    assert reduction[down - 1] == pytest.approx(full, rel=1e-6)
    # A rise reaches 1 - 1/e of the step one attack time after it (within a sample).
    assert crossing_ms(reduction / full, 1 - math.exp(-1), up) == pytest.approx(attack_ms, abs=1.5e3 / FS)
    # A fall reaches 1/e after the release time, delayed a little by the attack smoothing.
    fall = crossing_ms(1 - reduction / full, 1 - math.exp(-1), down)
    assert fall == pytest.approx(release_crossing_ms(attack_ms, release_ms), abs=1.5e3 / FS)


@pytest.mark.parametrize(("attack_ms", "release_ms"), [(1.0, 100.0), (5.0, 50.0)])
def test_gate_opens_with_attack_and_closes_with_release(attack_ms, release_ms):
    up, down, samples = 2205, 2205 + int(0.3 * FS), int(1.5 * FS)
    level = step_level(-80.0, -10.0, up, down, samples)
    gate_range = 40.0
    gain = gate_gain_db(level, -40.0, 10.0, 0.0, attack_ms, release_ms, gate_range, FS)[0, 0].numpy()
    openness = (gain + gate_range) / gate_range  # 0 closed, 1 open
    assert openness[up - 1] == pytest.approx(0.0, abs=1e-9)
    assert openness[down - 1] == pytest.approx(1.0, abs=1e-9)
    assert crossing_ms(openness, 1 - math.exp(-1), up) == pytest.approx(attack_ms, abs=1.5e3 / FS)
    fall = crossing_ms(1 - openness, 1 - math.exp(-1), down)
    assert fall == pytest.approx(release_crossing_ms(attack_ms, release_ms), abs=1.5e3 / FS)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_level_detector_links_channels_by_mean_power_in_the_signals_dtype(dtype, rtol):
    x = torch.tensor([[[0.5, 0.0], [0.5, 1.0]]], dtype=dtype)
    expected = 10 * np.log10([0.25 + 1e-10, 0.5 + 1e-10])
    level = level_db(x)
    assert level.dtype == dtype
    np.testing.assert_allclose(level[0, 0].numpy(), expected, rtol=rtol)


@pytest.mark.parametrize("processor", [dsp.Compressor(), dsp.NoiseGate()])
def test_dynamics_in_float32_stay_in_float32_and_match_float64(processor):
    """The detector follows the signal's dtype (no float64 pass over every
    sample) without losing accuracy: long release, 2 s, loud and quiet parts."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 2, 88200, generator=gen, dtype=torch.float64)
    x[..., 30000:60000] *= 0.003
    params = processor.default_parameters(2, dtype=torch.float64)
    params["release_ms"][:] = 2000.0
    reference = processor(x, **params)
    y = processor(x.float(), **{name: value.float() for name, value in params.items()})
    assert y.dtype == torch.float32
    ratio_db = 20 * torch.log10(y.double().abs() / reference.abs())
    assert ratio_db[reference.abs() > 1e-6].abs().max() < 1e-4


def test_sidechain_compressor_gain_follows_the_sidechain():
    gen = torch.Generator().manual_seed(4)
    main = 0.1 * torch.randn(2, 2, 8820, generator=gen)
    sidechain = torch.zeros(2, 1, 8820)
    sidechain[:, :, 4410:] = 1.0
    proc = dsp.SidechainCompressor()
    params = proc.default_parameters(2)
    y = proc(main, sidechain, **params)
    expected = dsp.compressor(main, -20.0, 4.0, 6.0, 10.0, 100.0, 0.0, FS, sidechain=sidechain)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(y[..., :4410], main[..., :4410])  # quiet sidechain: untouched
    assert (y[..., -100:].abs() < 0.5 * main[..., -100:].abs() + 1e-9).all()  # loud: about -14 dB
    same = proc(main, main, **params)
    torch.testing.assert_close(same, dsp.Compressor()(main, **params))


@pytest.mark.slow
def test_ballistics_gradients_match_finite_differences_for_signed_controls():
    gen = torch.Generator().manual_seed(6)
    control = (3 * torch.randn(2, 1, 200, generator=gen, dtype=torch.float64)).requires_grad_()
    attack = torch.tensor([0.05, 0.2], dtype=torch.float64, requires_grad=True)
    release = torch.tensor([1.0, 0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, a, r: dsp.ballistics(v, a, r, FS), (control, attack, release))


def test_sidechain_of_another_length_is_a_signal_shape_error():
    proc = dsp.SidechainCompressor()
    with pytest.raises(dsp.SignalShapeError, match="inlet 'sidechain' has shape"):
        proc(torch.zeros(2, 2, 100), torch.zeros(2, 1, 99), **proc.default_parameters(2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("processor", [dsp.Compressor(), dsp.NoiseGate()])
def test_dynamics_on_half_precision_signals_detect_in_float32(processor, dtype):
    """Half-precision audio keeps working: the detector runs in float32 (half
    has no FFT on CPU) and the gain lands on the signal in its own dtype."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(2, 2, 4000, generator=gen)
    x[..., 2000:] *= 1e-3  # quiet enough to underflow when squared in float16
    x = x.to(dtype)
    params = processor.default_parameters(2)
    y = processor(x, **params)
    reference = processor(x.float(), **params)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), reference, rtol=1e-2, atol=1e-6)  # float16 subnormals
