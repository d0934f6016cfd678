"""Automation curves: the frames-to-samples rule, curves through a render, and the errors that name them."""

import numpy as np
import pytest
import torch

from grafx_core import Control, Graph, ParameterError, compile_render, curve_frames, curve_to_samples, render


class Fader(torch.nn.Module):
    """A gain whose ``gain_db`` may move; ``tone`` (a tilt) may not."""

    def controls(self):
        return {"gain_db": Control(low=-60.0, high=12.0, default=0.0, unit="dB", time_varying=True),
                "tone": Control(low=-1.0, high=1.0, default=0.0)}

    def parameter_size(self):
        return {"gain_db": (1,), "tone": (1,)}

    def forward(self, x, gain_db, tone):
        gain = 10.0 ** (gain_db / 20.0)
        gain = gain.unsqueeze(-1) if gain.dim() == 2 else gain  # [rows, 1, 1] or [rows, 1, samples]
        return x * gain * (1.0 + tone.unsqueeze(-1))


def fader_graph(count=2):
    g = Graph()
    mix = g.add("mix")
    for k in range(count):
        g.connect(g.add("fader", f"fader{k}"), mix)
        g.connect(g.add("in", f"track{k}"), g.nodes_of_type("fader")[k])
    g.connect(mix, g.add("out"))
    return g


@pytest.mark.parametrize("samples, hop", [(1, 4), (7, 3), (9, 4), (1000, 512), (1024, 512), (1025, 512)])
def test_curve_to_samples_is_linear_interpolation_with_frame_k_at_sample_k_hop(samples, hop):
    frames = curve_frames(samples, hop)
    assert (frames - 1) * hop >= samples - 1 > (frames - 2) * hop or frames == 1
    curve = torch.randn(3, frames, generator=torch.Generator().manual_seed(samples), dtype=torch.float64)
    got = curve_to_samples(curve, samples, hop)
    positions = np.arange(samples)
    expected = np.stack([np.interp(positions, np.arange(frames) * hop, row) for row in curve.numpy()])
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    assert torch.equal(got[:, ::hop], curve[:, : len(range(0, samples, hop))])  # frames exactly


def test_a_constant_curve_renders_bit_for_bit_what_the_plain_value_renders():
    g = fader_graph()
    sources = torch.randn(2, 2, 3000, generator=torch.Generator().manual_seed(0))
    plain = {"fader": {"gain_db": torch.tensor([[-3.0], [4.5]]), "tone": torch.tensor([[0.1], [0.0]])}}
    frames = curve_frames(3000, 512)
    curved = {"fader": {"gain_db": plain["fader"]["gain_db"].unsqueeze(-1).expand(2, 1, frames),
                        "tone": plain["fader"]["tone"]}}
    plan = compile_render(g, {"fader": Fader()}, control_hop=512)
    assert torch.equal(plan(plain, sources)[0], plan(curved, sources)[0])


def test_a_moving_curve_equals_the_per_sample_reference_and_gets_its_gradient():
    g = fader_graph()
    sources = torch.randn(2, 2, 1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    curve = torch.randn(2, 1, curve_frames(1000, 100), dtype=torch.float64, requires_grad=True)
    tone = torch.zeros(2, 1, dtype=torch.float64)
    y, _ = render(g, {"fader": Fader()}, {"fader": {"gain_db": curve, "tone": tone}}, sources, control_hop=100)
    gains = 10.0 ** (curve_to_samples(curve, 1000, 100) / 20.0)
    expected = (sources * gains).sum(0)
    torch.testing.assert_close(y[0], expected)
    y.square().sum().backward()
    reference = torch.autograd.grad(expected.square().sum(), curve)[0]
    torch.testing.assert_close(curve.grad, reference)


@pytest.mark.parametrize("tile_bytes", [None, 4096])
def test_per_example_curves_render_each_example_with_its_own_curve(tile_bytes):
    g = fader_graph(3)
    sources = torch.randn(2, 3, 2, 700, generator=torch.Generator().manual_seed(2))
    frames = curve_frames(700, 128)
    curves = torch.randn(2, 3, 1, frames, generator=torch.Generator().manual_seed(3)) * 6
    tone = torch.zeros(2, 3, 1)
    plan = compile_render(g, {"fader": Fader()}, control_hop=128, tile_bytes=tile_bytes)
    batched, _ = plan({"fader": {"gain_db": curves, "tone": tone}}, sources)
    for k in range(2):
        single, _ = plan({"fader": {"gain_db": curves[k], "tone": tone[k]}}, sources[k])
        torch.testing.assert_close(batched[k], single)


def render_with(gain_db, tone=None, hop=512, samples=3000):
    g = fader_graph()
    tone = torch.zeros(2, 1) if tone is None else tone
    return render(g, {"fader": Fader()}, {"fader": {"gain_db": gain_db, "tone": tone}},
                  torch.zeros(2, 2, samples), control_hop=hop)


def test_a_curve_on_a_control_not_declared_time_varying_names_node_and_parameter():
    with pytest.raises(ParameterError, match=r"'fader0'.*fader\.tone is a curve .*does not declare 'tone' "
                                             r"time-varying.*\['gain_db'\]"):
        render_with(torch.zeros(2, 1), tone=torch.zeros(2, 1, curve_frames(3000, 512)))


def test_a_curve_with_the_wrong_number_of_frames_says_how_many_it_needs():
    with pytest.raises(ParameterError, match=r"'fader0'.*fader\.gain_db is a curve of 6 frame\(s\); 3000 samples "
                                             r"at a hop of 512 need 7"):
        render_with(torch.zeros(2, 1, 6))


def test_a_non_finite_curve_names_the_node_and_the_frame():
    curve = torch.zeros(2, 1, curve_frames(3000, 512))
    curve[1, 0, 4] = float("nan")
    with pytest.raises(ParameterError, match=r"'fader1'.*: parameter fader\.gain_db is nan at curve frame 4"):
        render_with(curve)


def test_a_curve_without_a_control_rate_and_a_rate_that_cannot_be_honoured_are_refused():
    with pytest.raises(ParameterError, match=r"the plan has no control rate; compile it with .*control_hop"):
        render_with(torch.zeros(2, 1, 7), hop=None)
    for hop in (0, 2.5, True, -4):
        with pytest.raises(ValueError, match="control_hop must be a positive int"):
            compile_render(fader_graph(), {"fader": Fader()}, control_hop=hop)


def test_parameter_files_keep_curves_and_their_hop_and_render_renders_them(tmp_path, capsys):
    import grafx_core.registry as registry_module
    from grafx_core.cli import main
    from grafx_core.parameter_file import load_control_hop, load_parameters, save_parameters
    from grafx_core.registry import Registry
    from grafx_core.wavfile import read_wav, write_wav

    previous = registry_module.set_default_registry(Registry(environ={"GRAFX_CORE_PLUGINS": "dsp"}))
    try:
        g = Graph()
        g.connect(g.add("in", "track"), g.add("dsp:stereo_gain", "fader"))
        g.connect(g.nodes_of_type("dsp:stereo_gain")[0], g.add("out", "mix"))
        g.save(tmp_path / "g.json")
        source = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(4)) * 0.2
        write_wav(tmp_path / "s.wav", source[0], 22050)
        frames = curve_frames(4000, 256)
        params = {"dsp:stereo_gain": {"gain_db": torch.linspace(-12.0, 6.0, frames).reshape(1, 1, frames),
                                      "pan": torch.tensor([[0.25]])}}
        save_parameters(params, tmp_path / "p.json", control_hop=256)
        loaded = load_parameters(tmp_path / "p.json")
        assert load_control_hop(tmp_path / "p.json") == 256
        assert torch.equal(loaded["dsp:stereo_gain"]["gain_db"], params["dsp:stereo_gain"]["gain_db"])
        assert main(["render", str(tmp_path / "g.json"), "-s", str(tmp_path / "s.wav"), "-p", str(tmp_path / "p.json"),
                     "-o", str(tmp_path / "y.wav")]) == 0
        from grafx_dsp import StereoGain
        expected, _ = render(g, {"dsp:stereo_gain": StereoGain(22050)}, params, source, control_hop=256)
        written, _ = read_wav(tmp_path / "y.wav")
        assert torch.equal(written, expected[0])
        assert main(["render", str(tmp_path / "g.json"), "-s", str(tmp_path / "s.wav"), "-p", str(tmp_path / "p.json"),
                     "-o", str(tmp_path / "z.wav"), "--control-hop", "128"]) != 0
        assert "control hop of 256 samples, but --control-hop 128 was given" in capsys.readouterr().err
    finally:
        registry_module.set_default_registry(previous)
