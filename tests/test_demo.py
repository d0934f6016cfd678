"""The demo end to end at reduced size, and the pieces it is made of.

The demo needs grafx-dsp and grafx-pedalboard (installed by the test command).
"""

from __future__ import annotations

import io
import json

import pytest
import torch

pytest.importorskip("grafx_dsp")
pytest.importorskip("grafx_pedalboard")

from grafx_core.cli import main  # noqa: E402
from grafx_core.registry import processors_for_graph  # noqa: E402
from grafx_core.demo import DemoSettings, run_demo  # noqa: E402
from grafx_core.demo.draws import demo_console, draw_parameters  # noqa: E402
from grafx_core.fitting import LatentParameters, SpectralLoss  # noqa: E402
from grafx_core.demo.multitrack import INSTRUMENTS, synthesise_multitrack  # noqa: E402
from grafx_core.parameter_file import load_parameters  # noqa: E402
from grafx_core.wavfile import read_wav  # noqa: E402


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One small run shared by the tests below: four tracks reach both buses, three
    pedalboard compressors and the reverb; three quarters of a second (the snare enters at 0.5 s); a few steps."""
    folder = tmp_path_factory.mktemp("demo")
    out, progress = io.StringIO(), io.StringIO()
    settings = DemoSettings(steps=8, tracks=4, seconds=0.75, seed=1, device="cpu", output=str(folder))
    return run_demo(settings, out=out, progress_stream=progress), out.getvalue(), progress.getvalue(), folder


def test_demo_fit_lowers_the_loss_and_reports_it(demo_run):
    result, out, progress, _ = demo_run
    assert len(result.losses) == 9
    assert result.losses[-1] < 0.8 * result.losses[0]
    assert "loss" in out and "% lower" in out and "s per step" in out
    assert "8/8" in progress and "s/step" in progress  # the progress bar's last line
    for node_type in ("dsp:parametric_eq", "dsp:stereo_gain", "pedalboard:compressor", "pedalboard:reverb"):
        assert node_type in result.fitted_errors and node_type in out


def test_demo_writes_every_promised_file(demo_run):
    result, _, _, folder = demo_run
    for name in ("target.wav", "initial.wav", "fitted.wav"):
        audio, rate = read_wav(folder / name)
        assert rate == 44100 and audio.shape == (2, 33075) and torch.isfinite(audio).all()
    for name in ("loss.png", "spectrograms.png", "graph.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((folder / "report.json").read_text())
    assert report["loss_curve"] == pytest.approx(result.losses)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert nodes["kick_compressor"]["type"] == "pedalboard:compressor"
    assert nodes["kick_compressor"]["gradient"] in ("finite-difference", "spsa")
    assert nodes["bass_fader"]["gradient"] == "autograd"
    threshold = nodes["kick_compressor"]["parameters"]["threshold_db"]
    assert set(threshold) == {"hidden", "initial", "fitted"} and -30 <= threshold["hidden"][0] <= -10


def test_render_command_reproduces_the_fitted_mix_bit_for_bit(demo_run, tmp_path):
    _, _, _, folder = demo_run
    sources = sorted((folder / "sources").iterdir())
    args = ["render", str(folder / "graph.json"), *[a for s in sources for a in ("-s", str(s))],
            "-p", str(folder / "fitted.params.json"), "--options", str(folder / "options.json"),
            "-o", str(tmp_path / "again.wav")]
    assert main(args) == 0  # with torch's default threads, as the demo rendered fitted.wav
    assert torch.equal(read_wav(tmp_path / "again.wav")[0], read_wav(folder / "fitted.wav")[0])


def test_multitrack_is_seeded_stereo_and_named_by_instrument():
    names, audio = synthesise_multitrack(len(INSTRUMENTS) + 1, seconds=1.0, sample_rate=8000, seed=3)
    assert names[: len(INSTRUMENTS)] == [n for n, _ in INSTRUMENTS] and names[-1] == "kick_2"
    assert audio.shape == (len(INSTRUMENTS) + 1, 2, 8000)
    assert torch.allclose(audio.abs().amax(dim=(1, 2)), torch.full((len(INSTRUMENTS) + 1,), 0.5))
    assert torch.equal(audio, synthesise_multitrack(len(INSTRUMENTS) + 1, 1.0, 8000, seed=3)[1])
    assert not torch.equal(audio, synthesise_multitrack(len(INSTRUMENTS) + 1, 1.0, 8000, seed=4)[1])


def test_latent_parameters_map_back_to_the_start_values_and_the_loss_is_zero_at_the_target():
    console = demo_console(["kick", "keys"])
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    start = draw_parameters(console.graph, processors, torch.Generator().manual_seed(0), dtype=torch.float64)
    values = LatentParameters(start, processors).values()
    for node_type, params in start.items():
        for name, tensor in params.items():
            torch.testing.assert_close(values[node_type][name], tensor.detach(), rtol=1e-12, atol=1e-12)
    target = torch.randn(2, 4096, generator=torch.Generator().manual_seed(1))
    loss = SpectralLoss(target)
    assert loss(target).item() == 0.0 and loss(0.5 * target).item() > 0.1


def test_demo_without_matplotlib_fails_at_once_saying_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert main(["demo", "--steps", "1", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "the demo needs matplotlib" in err and "pip install grafx-core[plot]" in err
    assert not (tmp_path / "out").exists()  # nothing was fitted or written


@pytest.mark.parametrize("option, value, message", [
    ("--tracks", "0", "argument --tracks: expected at least 1, got 0"),
    ("--steps", "-3", "argument --steps: expected at least 1, got -3"),
    ("--seconds", "0", "argument --seconds: expected at least 0.1 seconds"),
    ("--seconds", "1e-5", "argument --seconds: expected at least 0.1 seconds"),
    ("--learning-rate", "nan", "argument --learning-rate: expected a finite number above 0, got nan"),
    ("--threads", "two", "argument --threads: expected a whole number, got 'two'"),
    ("--device", "gpu", "argument --device: expected auto or a torch device"),
])
def test_demo_refuses_bad_options_before_doing_anything(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", option, value, "-o", str(tmp_path / "out")])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_demo_without_cuda_refuses_a_cuda_device(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--device", "cuda", "-o", str(tmp_path / "out")])
    assert "'cuda': CUDA is not available here" in capsys.readouterr().err


def test_ctrl_c_during_the_demo_fit_saves_the_parameters_so_far_and_exits_130(tmp_path, capsys, monkeypatch):
    import grafx_core.fitting.session as session

    class InterruptedLoss(SpectralLoss):
        calls = 0

        def __call__(self, y):
            InterruptedLoss.calls += 1
            if InterruptedLoss.calls == 3:
                raise KeyboardInterrupt  # what Ctrl-C raises in the main thread, mid-step
            return super().__call__(y)

    monkeypatch.setattr(session, "SpectralLoss", InterruptedLoss)
    out = tmp_path / "out"
    assert main(["demo", "--steps", "50", "--tracks", "2", "--seconds", "0.25", "-o", str(out)]) == 130
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("interrupted after 2 of 50 steps") and "fitted.params.json" in printed[-1]
    report = json.loads((out / "report.json").read_text())
    assert report["stopped"] == "interrupted" and len(report["loss_curve"]) == 3  # two steps, then the kept loss
    assert report["final_loss"] == min(report["loss_curve"][:2])
    assert "dsp:stereo_gain" in load_parameters(out / "fitted.params.json").keys()
    assert not (out / "fitted.wav").exists()
