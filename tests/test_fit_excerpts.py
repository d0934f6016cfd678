"""Fitting on excerpts after a warm-up: gradients against autograd through one whole render, and memory."""

from __future__ import annotations

import pytest
import torch

from grafx_core import compile_render, processors_for_graph
from grafx_core.spectral_loss import SpectralLoss

pytest.importorskip("grafx_dsp", reason="the excerpt fits render grafx-dsp consoles")

from grafx_core.fitting.console import build_console  # noqa: E402
from grafx_core.fitting.excerpts import ExcerptObjective  # noqa: E402


def _setup(samples: int = 9000, seed: int = 0):
    console = build_console(["bass"], "analytic")
    options = {**console.options, "dsp:reverb": {"n_bands": 2, "ir_seconds": 0.05}}
    processors = processors_for_graph(console.graph, options, sample_rate=44100)
    plan = compile_render(console.graph, processors)
    gen = torch.Generator().manual_seed(seed)
    sources = 0.3 * torch.randn(1, 2, samples, generator=gen, dtype=torch.float64)
    start = console.start_parameters(processors)
    parameters = {t: {k: (v.to(torch.float64) + 0.1 * torch.randn(v.shape, generator=gen, dtype=torch.float64))
                      .requires_grad_(True) for k, v in p.items()} for t, p in start.items()}
    target = 0.3 * torch.randn(2, samples, generator=gen, dtype=torch.float64)
    return plan, sources, target, parameters


def _gradients(parameters, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    leaves = {f"{t}.{k}": v for t, p in parameters.items() for k, v in p.items()}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {name: torch.zeros_like(leaves[name]) if g is None else g for name, g in zip(leaves, grads)}


def _reference(plan, sources, target, parameters, windows: ExcerptObjective) -> dict[str, torch.Tensor]:
    whole = plan(parameters, sources)[0][0]
    length = windows.length
    losses = [SpectralLoss(target[..., s:s + length], windows.fft_sizes)(whole[..., s:s + length])
              for s in windows.starts]
    return _gradients(parameters, sum(losses) / len(losses))


@pytest.mark.slow  # about 20 s on a loaded machine: long EQ responses designed with gradient per block
def test_an_excerpt_step_with_warm_up_gradient_equals_the_window_of_a_whole_render() -> None:
    plan, sources, target, parameters = _setup(samples=5000)
    windows = ExcerptObjective(plan, sources, target, length=1000, warmup=None, count=2, block_size=1500,
                               warmup_gradient=True)
    assert windows.starts == [750, 3250]
    ours = _gradients(parameters, windows.loss(windows.render(parameters)))
    reference = _reference(plan, sources, target, parameters, windows)
    scale = max(float(g.abs().max()) for g in reference.values())
    assert scale > 0
    for name, expected in reference.items():
        assert float((ours[name] - expected).abs().max()) <= 1e-9 * scale, name


def test_without_warm_up_gradient_the_step_is_exact_after_the_last_memory() -> None:
    # The master limiter's makeup gain acts after every processor with memory: its gradient needs no warm-up's.
    plan, sources, target, parameters = _setup(samples=5000, seed=1)
    windows = ExcerptObjective(plan, sources, target, length=1500, warmup=None, count=1, block_size=700)
    mix = windows.render(parameters)
    ours = _gradients(parameters, windows.loss(mix))
    reference = _reference(plan, sources, target, parameters, windows)
    whole = plan(parameters, sources)[0][0].detach()
    start = windows.starts[0]
    assert float((mix.detach() - whole[..., start:start + 1500]).abs().max()) <= 1e-9
    limiter = len(plan.graph.nodes_of_type("dsp:compressor")) - 1  # master_limiter is the last compressor
    expected = reference["dsp:compressor.makeup_db"][limiter]
    assert float((ours["dsp:compressor.makeup_db"][limiter] - expected).abs().max()) <= 1e-9 * float(expected.abs().max())


@pytest.mark.slow
def test_memory_of_a_step_does_not_grow_with_the_material_before_the_excerpt() -> None:
    plan, sources, target, parameters = _setup(samples=6000, seed=2)

    def saved_bytes(warmup: int) -> int:
        total = 0

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        windows = ExcerptObjective(plan, sources, target, length=500, warmup=warmup, count=1, block_size=500)
        windows.starts = [5500]
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            windows.loss(windows.render(parameters))
        return total

    # Equal but for the state's shapes (where a block falls on the partitioned convolution's grid, say).
    near, far = saved_bytes(500), saved_bytes(5500)
    assert far > 0 and abs(far - near) <= 0.01 * near


def test_excerpts_refuse_a_black_box_by_name() -> None:
    from grafx_core import BlackBoxProcessor, Graph, ParameterSpec
    from grafx_core.errors import GrafxError

    box = BlackBoxProcessor(None, [ParameterSpec("gain", 0.1, 2.0, default=1.0)], effect_factory=object,
                            process=lambda effect, audio, rate, gain: audio * gain,
                            process_block=lambda effect, audio, rate, gain: audio * gain, workers=1)
    graph = Graph()
    graph.add_serial_chain(["in", "box", "out"])
    plan = compile_render(graph, {"box": box})
    with pytest.raises(GrafxError, match="node type 'box' is a black box"):
        ExcerptObjective(plan, torch.zeros(1, 1, 100), torch.zeros(1, 100), 50, 10)


@pytest.mark.slow  # a whole fit run: stems, plots, report
def test_fit_warmup_fits_excerpts_and_lowers_the_loss(tmp_path, capsys) -> None:
    import json

    from grafx_core import render
    from grafx_core.cli import main
    from grafx_core.demo.draws import draw_parameters
    from grafx_core.demo.multitrack import synthesise_multitrack
    from grafx_core.wavfile import write_wav

    names, audio = synthesise_multitrack(2, 1.5, 44100, seed=3)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    hidden = draw_parameters(console.graph, processors, torch.Generator().manual_seed(6))
    with torch.no_grad():
        mix = render(console.graph, processors, hidden, audio)[0][0]
    stems = [str(tmp_path / f"{name}.wav") for name in names]
    for path, track in zip(stems, audio):
        write_wav(path, track, 44100)
    write_wav(tmp_path / "mix.wav", mix, 44100)
    status = main(["fit", *stems, "--target", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "fit"),
                   "--steps", "6", "--excerpt", "0.25", "--warmup", "0.5", "--excerpts", "2", "--no-init"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "steps fit 2 excerpt(s) of 0.2 s" in printed and "after 0.5 s of warm-up" in printed
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["final_loss"] < report["initial_loss"]
    assert main(["fit", *stems, "--target", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "fit2"),
                 "--warmup", "0.5", "--prune"]) == 1
    assert "--warmup fits excerpts with Adam" in capsys.readouterr().err


@pytest.mark.slow  # a whole fit run with the solved start
def test_fit_warmup_with_the_solved_start_reports_the_loss_of_windows_cut_from_a_whole_render(tmp_path, capsys) -> None:
    import json

    from grafx_core import render
    from grafx_core.cli import main
    from grafx_core.demo.draws import draw_parameters
    from grafx_core.demo.multitrack import synthesise_multitrack
    from grafx_core.fitting.excerpts import excerpt_starts
    from grafx_core.fitting.metrics import snr_db
    from grafx_core.parameter_file import load_parameters
    from grafx_core.wavfile import write_wav

    rate = 16000
    names, audio = synthesise_multitrack(2, 1.5, rate, seed=4)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=rate)
    hidden = draw_parameters(console.graph, processors, torch.Generator().manual_seed(8))
    with torch.no_grad():
        mix = render(console.graph, processors, hidden, audio)[0][0]
    stems = [str(tmp_path / f"{name}.wav") for name in names]
    for path, track in zip(stems, audio):
        write_wav(path, track, rate)
    write_wav(tmp_path / "mix.wav", mix, rate)
    # The solved start, steps on the loudest 0.5 s after a warm-up from the material's start, the polish.
    assert main(["fit", *stems, "--target", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "fit"),
                 "--steps", "4", "--excerpt", "0.5", "--warmup", "1.5"]) == 0
    printed = capsys.readouterr().out
    assert "start: " in printed and "after 1.5 s of warm-up" in printed
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["initialisation"]["chosen"] != "defaults"
    # A warm-up from the material's start: the window the steps fit is that of one whole render.
    fitted = load_parameters(str(tmp_path / "fit" / "fitted.params.json"))
    with torch.no_grad():
        whole = render(console.graph, processors, fitted, audio)[0][0]
    length = int(round(0.5 * rate))
    begin = excerpt_starts(mix, length, 1, int(0.1 * rate))[0]
    window = slice(begin, begin + length)
    assert report["final_loss"] == pytest.approx(float(SpectralLoss(mix[:, window])(whole[:, window])), rel=1e-3)
    fitted_snr = report["metrics"]["fitted"]["snr_db"]
    assert fitted_snr > report["metrics"]["initial"]["snr_db"] - 0.5
    assert snr_db(whole, mix) == pytest.approx(fitted_snr, abs=0.05)
