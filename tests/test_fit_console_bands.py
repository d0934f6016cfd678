"""A console that can express more of a real mix: a high-pass per track, more peaking bands as nodes of
their own, a pre-delay on the reverb send; their start from the stems' spectra, and the strip solve over them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("grafx_dsp")

from grafx_core import processors_for_graph  # noqa: E402
from grafx_core.fitting.compressor_start import track_strips  # noqa: E402
from grafx_core.fitting.console import CONSOLES, build_console  # noqa: E402
from grafx_core.fitting.eq_start import equalising_nodes, start_eqs  # noqa: E402
from grafx_core.fitting.initial import _band_centres, _band_content, _transfer_ratios_db  # noqa: E402
from grafx_core.fitting.strip_solve import _controls  # noqa: E402
from grafx_core.plan import compile_render  # noqa: E402

RATE = 44100
EXTENDED = replace(CONSOLES["analytic"], highpass="dsp:highpass", bells=2, pre_delay="dsp:delay")


def _rbj_peak(f0: float, gain_db: float, q: float) -> tuple[list[float], list[float]]:
    amp, w0 = 10 ** (gain_db / 40), 2 * math.pi * f0 / RATE
    alpha = math.sin(w0) / (2 * q)
    return ([1 + alpha * amp, -2 * math.cos(w0), 1 - alpha * amp],
            [1 + alpha / amp, -2 * math.cos(w0), 1 - alpha / amp])


def _built(effects=EXTENDED, names=("bass", "voice")):
    console = build_console(list(names), effects)
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    return console, processors


def test_extended_console_adds_named_nodes_with_transparent_bells_and_a_pure_pre_delay():
    console, processors = _built()
    names = [node.name for node in console.graph.nodes]
    strip = names[names.index("bass"):names.index("bass_fader") + 1]
    assert strip == ["bass", "bass_highpass", "bass_compressor", "bass_eq", "bass_bell2", "bass_bell3", "bass_fader"]
    assert names.index("reverb_predelay") < names.index("reverb")
    assert set(console.fixed["dsp:delay"]) == {"feedback", "mix"}
    start = console.start_parameters(processors)
    assert float(start["dsp:highpass"]["cutoff_hz"].max()) == 20.0
    # The same console without the added nodes is the reference: flat bells change nothing, and the pre-delay
    # moves only the reverb's return, which the analytic console starts 24 dB down.
    plain, plain_processors = _built(CONSOLES["analytic"])
    no_extras, no_processors = _built(replace(EXTENDED, highpass=None, pre_delay=None))
    stems = torch.randn(2, 2, RATE // 2, generator=torch.Generator().manual_seed(0)) * 0.05
    with torch.no_grad():
        reference = compile_render(plain.graph, plain_processors)(plain.start_parameters(plain_processors), stems)[0][0]
        bells = compile_render(no_extras.graph, no_processors)(no_extras.start_parameters(no_processors), stems)[0][0]
    torch.testing.assert_close(bells, reference, atol=1e-6, rtol=0)


def test_eq_start_finds_a_hidden_highpass_and_two_bells_against_scipy():
    from scipy.signal import butter, freqz, lfilter, sosfilt, sosfreqz

    rng = np.random.default_rng(3)
    # A red noise (plenty of low end) under a white one (plenty of top).
    stem = np.cumsum(rng.standard_normal((2, RATE)), axis=-1) * 0.002 + rng.standard_normal((2, RATE)) * 0.02
    highpass = butter(2, 160.0, "highpass", fs=RATE, output="sos")
    bells = [_rbj_peak(400.0, 6.0, 1.0), _rbj_peak(4000.0, -6.0, 1.0)]
    target = sosfilt(highpass, stem)
    for b, a in bells:
        target = lfilter(b, a, target)
    console, processors = _built(names=("bass",))
    params = {t: {k: v.clone().to(torch.float64) for k, v in p.items()}
              for t, p in console.start_parameters(processors).items()}
    tracks = equalising_nodes(console.graph, ["bass"], processors)
    assert tracks[0].highpass == ("dsp:highpass", 0) and len(tracks[0].bells) == 2
    stems, mix = torch.from_numpy(stem)[None], torch.from_numpy(target)
    ratios, shares = _transfer_ratios_db(stems, mix, RATE)
    centres = _band_centres(RATE)
    notes = start_eqs(params, tracks, processors, ratios, shares, _band_content(stems, RATE), centres, RATE)
    cutoff = float(params["dsp:highpass"]["cutoff_hz"][0, 0])
    assert abs(math.log2(cutoff / 160.0)) < 0.5 and notes == [f"bass high-pass at {cutoff:.0f} Hz"]
    placed = sorted([float(params["dsp:parametric_eq"]["peak_cutoff_hz"][0, 0]),
                     *params["dsp:peak"]["cutoff_hz"][:, 0].tolist()])
    assert any(abs(math.log2(f / 400.0)) < 0.5 for f in placed)
    assert any(abs(math.log2(f / 4000.0)) < 0.5 for f in placed)
    # The started chain's response against scipy's response of the hidden filters, where the stem plays.
    band = ((centres > 60) & (centres < 12000)).numpy()
    wanted = 20 * np.log10(np.abs(sosfreqz(highpass, centres.numpy(), fs=RATE)[1]))
    for b, a in bells:
        wanted = wanted + 20 * np.log10(np.abs(freqz(b, a, centres.numpy(), fs=RATE)[1]))
    got = np.zeros_like(wanted)
    for node_type, row in [("dsp:highpass", 0), ("dsp:parametric_eq", 0), ("dsp:peak", 0), ("dsp:peak", 1)]:
        values = {k: v[row:row + 1] for k, v in params[node_type].items()}
        b, a = (c[0].numpy() for c in processors[node_type].coefficients(**values))
        for section_b, section_a in zip(b, a):
            got += 20 * np.log10(np.abs(freqz(section_b, section_a, centres.numpy(), fs=RATE)[1]))
    misfit = got[band] - wanted[band]
    assert float(np.sqrt(np.mean((misfit - misfit.mean()) ** 2))) < 1.5


def test_eq_start_leaves_the_highpass_where_the_target_keeps_the_low_end():
    rng = np.random.default_rng(5)
    stem = torch.from_numpy(np.cumsum(rng.standard_normal((1, 2, RATE)), axis=-1) * 0.002)
    console, processors = _built(names=("bass",))
    params = {t: {k: v.clone() for k, v in p.items()} for t, p in console.start_parameters(processors).items()}
    tracks = equalising_nodes(console.graph, ["bass"], processors)
    ratios, shares = _transfer_ratios_db(stem, stem[0] * 0.5, RATE)
    assert start_eqs(params, tracks, processors, ratios, shares, _band_content(stem, RATE), _band_centres(RATE),
                     RATE) == []
    assert float(params["dsp:highpass"]["cutoff_hz"][0, 0]) == 20.0


def test_strip_solve_moves_the_highpass_and_the_bells():
    console, processors = _built()
    start = console.start_parameters(processors)
    strips = track_strips(console.graph, ["bass", "voice"], processors)
    controls = {(c.node_type, c.name) for c in _controls(strips[0], processors, start, console.fixed)}
    assert {("dsp:highpass", "cutoff_hz"), ("dsp:highpass", "q"), ("dsp:peak", "cutoff_hz"), ("dsp:peak", "q"),
            ("dsp:peak", "gain_db")} <= controls


def test_strip_solve_moves_each_band_of_an_eq_with_several_peaks():
    from grafx_core.demo.multitrack import synthesise_multitrack
    from grafx_core.fitting.metrics import snr_db
    from grafx_core.fitting.strip_solve import solve_strips

    rate = 16000
    effects = replace(CONSOLES["sox"], options={"dsp:parametric_eq": {"n_peaks": 2},
                                                "dsp:impulse_response": {"taps": 64}})
    names, stems = synthesise_multitrack(2, 0.5, rate, seed=2)
    console = build_console(names, effects)
    processors = processors_for_graph(console.graph, console.options, sample_rate=rate)
    plan = compile_render(console.graph, processors)
    render = lambda p, s: plan(p, s)[0][0]  # noqa: E731
    start = console.start_parameters(processors)
    start["dsp:parametric_eq"]["peak_cutoff_hz"][:] = torch.tensor([300.0, 1200.0])  # where the stems play
    hidden = {t: {k: v.clone() for k, v in p.items()} for t, p in start.items()}
    hidden["dsp:parametric_eq"]["peak_gain_db"][0] = torch.tensor([5.0, -4.0])
    with torch.no_grad():
        target = render(hidden, stems)
    solved = solve_strips(console.graph, names, processors, start, stems, target, rate, render, console.fixed,
                          seconds=None, iterations=5, sweeps=1)
    assert solved is not None
    gains = solved.parameters["dsp:parametric_eq"]["peak_gain_db"][0]
    with torch.no_grad():
        before, after = (snr_db(render(p, stems), target) for p in (start, solved.parameters))
    assert gains.tolist() == pytest.approx([5.0, -4.0], abs=0.3)
    assert before < 20 and after > 40


def test_fit_command_refuses_console_options_with_a_graph_of_its_own(tmp_path, capsys):
    from grafx_core import Graph
    from grafx_core.cli import main
    from grafx_core.wavfile import write_wav

    write_wav(tmp_path / "bass.wav", 0.1 * torch.randn(2, 800, generator=torch.Generator().manual_seed(0)), 8000)
    graph = Graph()
    graph.add_serial_chain(["in", "dsp:gain", "out"])
    graph.save(str(tmp_path / "graph.json"))
    for flag in (["--highpass"], ["--eq-bands", "3"], ["--pre-delay"], ["--compressor-after-eq"]):
        status = main(["fit", str(tmp_path / "bass.wav"), "--target", str(tmp_path / "bass.wav"), "-o",
                       str(tmp_path / "out"), "--graph", str(tmp_path / "graph.json"), *flag])
        assert status == 1
        assert "shape the built console; with --graph" in capsys.readouterr().err


def test_flat_bells_start_at_different_frequencies():
    console, processors = _built(replace(EXTENDED, bells=3), names=("bass",))
    cutoffs = console.start_parameters(processors)["dsp:peak"]["cutoff_hz"][:, 0].tolist()
    assert cutoffs == pytest.approx([500.0, 500.0 * 12 ** 0.5, 6000.0])
