"""Controls that move in grafx-dsp: the moving biquad against the per-sample recursion, and the
moving processors against the plain ones (the conformance kit checks every moving control's
gradients; see test_conformance.py)."""

import numpy as np
import pytest
import torch
from grafx_core import Graph, StreamingError, compile_render, create_empty_parameters, curve_frames
from grafx_core.state import call_block

import grafx_dsp as dsp
from grafx_dsp.biquad import biquad_coefficients
from grafx_dsp.moving_filter import moving_sos_filter


def direct_form_one(x, b, a, block):
    """The recursion sample by sample, coefficients switching every ``block`` samples, memories kept."""
    y = np.zeros_like(x)
    x1 = x2 = y1 = y2 = 0.0
    for n, value in enumerate(x):
        bb, aa = b[:, n // block], a[:, n // block]
        y[n] = bb[0] * value + bb[1] * x1 + bb[2] * x2 - aa[1] * y1 - aa[2] * y2
        x2, x1, y2, y1 = x1, value, y1, y[n]
    return y


@pytest.mark.parametrize("filter_type, cutoff", [("peak", 300.0), ("low_shelf", 80.0), ("lowpass", 5000.0)])
def test_moving_biquad_equals_the_direct_recursion_with_memories_carried(filter_type, cutoff):
    samples, block = 1100, 128
    blocks = -(-samples // block)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, samples, generator=generator, dtype=torch.float64)
    gain = torch.linspace(-12.0, 12.0, blocks, dtype=torch.float64).reshape(1, 1, blocks)
    cut = torch.full((1, 1, blocks), cutoff, dtype=torch.float64) * torch.linspace(0.5, 2.0, blocks,
                                                                                    dtype=torch.float64)
    b, a = biquad_coefficients(filter_type, cut, torch.full_like(cut, 0.9), gain)
    b, a = b.movedim(-2, -1), a.movedim(-2, -1)  # [1, 1, 3, blocks]
    y = moving_sos_filter(x, b, a, block)
    expected = direct_form_one(x[0, 0].numpy(), b[0, 0].numpy(), a[0, 0].numpy(), block)
    np.testing.assert_allclose(y[0, 0].numpy(), expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_a_constant_curve_through_the_parametric_eq_matches_the_static_eq_in_float32():
    eq = dsp.ParametricEQ(n_peaks=2)
    x = torch.randn(3, 2, 2000, generator=torch.Generator().manual_seed(1))
    params = eq.default_parameters(3)
    params["peak_gain_db"] = torch.tensor([[3.0, -6.0], [0.0, 4.0], [12.0, -2.0]])
    params["low_shelf_gain_db"] = torch.tensor([[6.0], [-3.0], [0.0]])
    static = eq(x, **params)
    curved = dict(params, peak_gain_db=params["peak_gain_db"].unsqueeze(-1).expand(3, 2, 2000),
                  low_shelf_cutoff_hz=params["low_shelf_cutoff_hz"].unsqueeze(-1).expand(3, 1, 2000))
    assert float((eq(x, **curved) - static).abs().max()) <= 1e-6 * float(static.abs().max())


def test_a_moving_delay_mix_blends_dry_and_echoes_sample_by_sample():
    delay = dsp.Delay(sample_rate=8000)
    x = torch.randn(2, 1, 900, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    params = {k: v.to(torch.float64) for k, v in delay.default_parameters(2).items()}
    params["delay_ms"] = torch.tensor([[20.0], [33.3]], dtype=torch.float64)
    mix = torch.linspace(0.0, 1.0, 900, dtype=torch.float64).expand(2, 1, 900)
    dry = delay(x, **dict(params, mix=torch.zeros(2, 1, dtype=torch.float64)))
    wet = delay(x, **dict(params, mix=torch.ones(2, 1, dtype=torch.float64)))
    torch.testing.assert_close(delay(x, **dict(params, mix=mix)), (1 - mix) * dry + mix * wet)


def test_a_console_with_moving_faders_renders_every_fader_in_one_call_and_matches_constants():
    g = Graph()
    master = g.add("mix")
    for k in range(4):
        g.connect(g.add("in"), g.add("fader", f"fader{k}"))
        g.connect(g.nodes_of_type("fader")[k], master)
    g.connect(master, g.add("out"))
    processors = {"fader": dsp.StereoGain()}
    params = create_empty_parameters(g, processors)
    sources = torch.randn(4, 2, 5000, generator=torch.Generator().manual_seed(3))
    frames = curve_frames(5000, 512)
    ride = {"gain_db": torch.linspace(-6.0, 6.0, frames).expand(4, 1, frames).clone(),
            "pan": params["fader"]["pan"].detach().unsqueeze(-1).expand(4, 1, frames)}
    plan = compile_render(g, processors, control_hop=512)
    y, _ = plan({"fader": ride}, sources)
    gains = 10 ** (torch.nn.functional.interpolate(ride["gain_db"], size=(frames - 1) * 512 + 1, mode="linear",
                                                   align_corners=True)[..., :5000] / 20)
    expected = (sources * gains * 0.5 ** 0.5).sum(0)
    torch.testing.assert_close(y[0], expected, rtol=1e-5, atol=1e-6)
    plain, _ = plan({"fader": {"gain_db": torch.zeros(4, 1), "pan": torch.zeros(4, 1)}}, sources)
    constant = {"fader": {"gain_db": torch.zeros(4, 1, frames), "pan": torch.zeros(4, 1, frames)}}
    assert torch.equal(plan(constant, sources)[0], plain)


def _block(processor, state, x, params, start, stop):
    cut = {k: v[..., start:stop] if v.dim() == 3 else v for k, v in params.items()}
    return call_block(processor, state, [x[..., start:stop]], cut)


def test_a_streamed_block_of_a_moving_biquad_has_the_one_render_gradient_of_its_own_samples():
    # Blocks of 300 from the stream's start: the block [2100, 2400) starts 52 samples into a coefficient
    # block whose coefficients came from an earlier block; the block's own curve samples and input reach
    # its output exactly as in one render, so their gradients agree (the carried state is detached).
    bq = dsp.Biquad("peak")
    samples, start, stop = 3000, 2100, 2400
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1, samples, generator=gen)
    params = {"cutoff_hz": torch.logspace(2.0, 4.0, samples).expand(2, 1, samples).clone(),
              "q": torch.tensor([[2.0], [0.7]]), "gain_db": torch.tensor([[9.0], [-6.0]])}
    weight = torch.randn(2, 1, stop - start, generator=gen)
    cutoff, signal = params["cutoff_hz"].clone().requires_grad_(True), x.clone().requires_grad_(True)
    (bq(signal, **dict(params, cutoff_hz=cutoff))[..., start:stop] * weight).sum().backward()
    state = None
    with torch.no_grad():
        for begin in range(0, start, 300):
            _, state = _block(bq, state, x, params, begin, begin + 300)
    assert state["moving"]["offset"] == start % 256
    part_cutoff = params["cutoff_hz"][..., start:stop].clone().requires_grad_(True)
    part_x = x[..., start:stop].clone().requires_grad_(True)
    y, _ = call_block(bq, state, [part_x], dict(params, cutoff_hz=part_cutoff))
    (y * weight).sum().backward()
    for streamed, whole in ((part_cutoff.grad, cutoff.grad[..., start:stop]), (part_x.grad, signal.grad[..., start:stop])):
        assert float(whole.abs().max()) > 0
        torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-6 * float(whole.abs().max()))


def test_a_moving_eq_streamed_with_its_state_attached_has_the_one_render_gradient():
    # Blocks of 170 (not a multiple of 256), the state never detached: the gradient through the carried
    # memories, pending input and coefficients is autograd's through one render.
    eq = dsp.ParametricEQ(n_peaks=1)
    samples = 1200
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, samples, generator=gen)
    params = eq.default_parameters(1)
    params["low_shelf_gain_db"] = torch.full((1, 1), 6.0)
    weight = torch.randn(1, 2, samples, generator=gen)
    grads = []
    for streamed in (False, True):
        gain = (12.0 * torch.sin(torch.linspace(0.0, 9.0, samples))).reshape(1, 1, samples).requires_grad_(True)
        cutoff = torch.linspace(200.0, 4000.0, samples).reshape(1, 1, samples).requires_grad_(True)
        moving = dict(params, peak_gain_db=gain, peak_cutoff_hz=cutoff)
        if streamed:
            state, pieces = None, []
            for begin in range(0, samples, 170):
                y, state = _block(eq, state, x, moving, begin, begin + 170)
                pieces.append(y)
            y = torch.cat(pieces, dim=-1)
        else:
            y = eq(x, **moving)
        (y * weight).sum().backward()
        grads.append((gain.grad, cutoff.grad))
    for whole, streamed in zip(*grads):
        assert float(whole.abs().max()) > 0
        torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-6 * float(whole.abs().max()))


def test_a_stream_whose_filter_controls_start_moving_midway_is_refused_by_name():
    eq = dsp.ParametricEQ(n_peaks=1)
    params = eq.default_parameters(1)
    x = torch.zeros(1, 1, 200)
    _, state = _block(eq, None, x, params, 0, 100)
    moving = dict(params, peak_gain_db=torch.zeros(1, 1, 200))
    with pytest.raises(StreamingError, match=r"ParametricEQ: its controls began moving in the middle of a stream"):
        _block(eq, state, x, moving, 100, 200)
