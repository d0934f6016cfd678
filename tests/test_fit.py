"""`grafx-core fit` end to end on stems held aside from a hidden mix, and its refusals.

The hidden mix is the analytic console rendered with parameters drawn from
the demo's musical ranges; the fit starts from the processors' defaults and
sees only the stems and the mix. The render command it prints must
reproduce its fitted.wav bit for bit when run as printed, in a fresh process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from scipy.io import wavfile

pytest.importorskip("grafx_dsp")

from grafx_core import create_empty_parameters, load_parameters, render, save_parameters  # noqa: E402
from grafx_core.cli import main  # noqa: E402
from grafx_core.registry import processors_for_graph  # noqa: E402
from grafx_core.demo.draws import draw_parameters  # noqa: E402
from grafx_core.demo.multitrack import synthesise_multitrack  # noqa: E402
from grafx_core.fitting.console import build_console  # noqa: E402
from grafx_core.wavfile import read_wav, write_wav  # noqa: E402

RATE = 44100


@pytest.fixture(scope="module")
def hidden_mix(tmp_path_factory):
    """Four stems (three drums and a bass, 0.75 s), a mix rendered from hidden parameters, and its fit."""
    folder = tmp_path_factory.mktemp("stems")
    names, audio = synthesise_multitrack(4, 0.75, RATE, seed=2)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    hidden = draw_parameters(console.graph, processors, torch.Generator().manual_seed(5))
    with torch.no_grad():
        mix = render(console.graph, processors, hidden, audio)[0][0]
    stems = [str(folder / f"{name}.wav") for name in names]
    for path, track in zip(stems, audio):
        write_wav(path, track, RATE)
    write_wav(folder / "mix.wav", mix, RATE)
    save_parameters(hidden, folder / "hidden.json")
    out = folder / "fit"
    status = main(["fit", *stems, "--target", str(folder / "mix.wav"), "-o", str(out), "--steps", "30",
                   "--hidden", str(folder / "hidden.json")])
    return status, folder, stems, out


def test_fit_recovers_a_hidden_mix_from_held_aside_stems(hidden_mix):
    status, _, _, out = hidden_mix
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    # Loss down by at least 65 % from the processors' defaults (the 0.75 s stems are analysed whole, so
    # the initialisation's "defaults" loss is the fit's loss at the defaults), and from the fit's own start.
    defaults = report["initialisation"]["losses"]["defaults"]
    assert report["final_loss"] <= 0.35 * defaults and report["final_loss"] < report["initial_loss"]
    fitted, initial = report["metrics"]["fitted"], report["metrics"]["initial"]
    # The start already solves faders, EQs, compressors and each strip on the waveform (16.6 dB here), so
    # the steps add less than they did from a least-squares start alone; they must still add, and reach an
    # absolute level.
    assert fitted["snr_db"] > max(initial["snr_db"] + 2, 18)
    assert abs(fitted["loudness_lufs"] - report["metrics"]["target_loudness_lufs"]) < 1.0
    faders = {n["name"]: n for n in report["nodes"]}["bass_fader"]["parameters"]["gain_db"]
    assert set(faders) == {"hidden", "initial", "fitted"}
    # The loss log has one row per step, the same losses as the report.
    rows = (out / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,loss,learning_rate,seconds" and len(rows) == report["steps_taken"] + 1
    assert float(rows[1].split(",")[1]) == pytest.approx(report["initial_loss"])


def test_printed_render_command_reproduces_fitted_wav_bit_for_bit(hidden_mix, tmp_path):
    _, _, _, out = hidden_mix
    command = (out / "render_command.txt").read_text().strip()
    assert command == json.loads((out / "report.json").read_text())["render_command"]
    words = shlex.split(command)
    again = words[words.index("-o") + 1]
    assert int(words[words.index("--threads") + 1]) >= 1  # the count fitted.wav was rendered on
    completed = subprocess.run(words, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    try:
        assert torch.equal(read_wav(again)[0], read_wav(out / "fitted.wav")[0])
    finally:
        os.remove(again)


def test_rendering_fitted_parameters_without_their_options_says_to_pass_them(hidden_mix, capsys):
    _, _, _, out = hidden_mix
    sources = [w for s in sorted((out / "sources").iterdir()) for w in ("-s", str(s))]
    err = _one_line_error(capsys, ["render", str(out / "graph.json"), *sources, "-p", str(out / "fitted.params.json"),
                                   "-o", str(out.parent / "again.wav")])
    assert "dsp:parametric_eq.peak_" in err and "pass its options file with --options" in err


def test_a_second_fit_into_a_results_folder_needs_force(hidden_mix, capsys):
    _, folder, stems, out = hidden_mix
    err = _one_line_error(capsys, ["fit", *stems[:2], "--target", str(folder / "mix.wav"), "-o", str(out)])
    assert "holds the results of an earlier run: pass --force" in err
    assert json.loads((out / "report.json").read_text())["stopped"] != "interrupted"  # untouched


def _wav(path, data, rate=RATE):
    wavfile.write(str(path), rate, np.asarray(data, dtype=np.float32))
    return str(path)


def test_stems_at_other_rates_lengths_and_channel_counts_are_conformed(tmp_path):
    from grafx_core.fitting.stems import read_multitrack

    t = np.arange(RATE // 2) / RATE
    target = _wav(tmp_path / "mix.wav", np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3)
    slow = np.sin(2 * np.pi * 220 * np.arange(11025) / 22050)  # 0.5 s at 22.05 kHz, mono
    short = np.stack([np.sin(2 * np.pi * 330 * t[:8000])] * 2, axis=1)
    long = np.stack([np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)] * 2, axis=1)
    paths = [_wav(tmp_path / "Slow Mono.wav", slow, 22050), _wav(tmp_path / "short.wav", short),
             _wav(tmp_path / "long.wav", long)]
    multitrack = read_multitrack(paths, target)
    assert multitrack.names == ["slow_mono", "short", "long"]
    assert multitrack.stems.shape == (3, 2, RATE // 2) and multitrack.sample_rate == RATE
    from scipy.signal import resample_poly

    expected = resample_poly(slow, 2, 1)[: RATE // 2]
    np.testing.assert_allclose(multitrack.stems[0, 1].numpy(), expected, atol=1e-6)
    assert torch.equal(multitrack.stems[1, :, 8000:], torch.zeros(2, RATE // 2 - 8000))
    assert multitrack.stems[2, :, -1].abs().max() == 0 and multitrack.stems[2, :, -500].abs().max() < 0.2  # fade-out
    assert len(multitrack.notes) == 4  # mono copied, resampled, padded, cut


def _one_line_error(capsys, args, status=1):
    assert main(args) == status
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_each_bad_fit_input_gets_one_line(tmp_path, capsys):
    mix = _wav(tmp_path / "mix.wav", np.full((RATE // 2, 2), 0.1))
    stem = _wav(tmp_path / "a.wav", np.full((RATE // 2, 2), 0.1))
    six = _wav(tmp_path / "six.wav", np.zeros((RATE // 2, 6)))
    tiny = _wav(tmp_path / "tiny.wav", np.full((100, 2), 0.1))
    nan = _wav(tmp_path / "nan.wav", np.full((RATE // 2, 2), np.nan))
    out = str(tmp_path / "out")
    err = _one_line_error(capsys, ["fit", six, "--target", mix, "-o", out])
    assert "'" + six + "' has 6 channels" in err and "downmix" in err
    err = _one_line_error(capsys, ["fit", stem, "--target", tiny, "-o", out])
    assert "a fit needs a target of at least 0.1 s" in err
    err = _one_line_error(capsys, ["fit", nan, "--target", mix, "-o", out])
    assert "NaN or infinite samples" in err
    err = _one_line_error(capsys, ["fit", stem, "--target", str(tmp_path / "missing.wav"), "-o", out])
    assert "missing.wav': no such file" in err
    err = _one_line_error(capsys, ["fit", stem, "--target", mix, "-o", str(tmp_path)])
    assert "lies inside the output folder" in err
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"dsp:reverb": {"ir_second": 1.0}}))
    err = _one_line_error(capsys, ["fit", stem, "--target", mix, "-o", out, "--options", str(options)])
    assert "dsp:reverb has no option 'ir_second'" in err and "ir_seconds" in err
    options.write_text(json.dumps({"dsp:reverb": {"n_fft": 7}}))
    err = _one_line_error(capsys, ["fit", stem, "--target", mix, "-o", out, "--options", str(options)])
    assert "dsp:reverb" in err and "n_fft must be" in err and "got 7" in err
    assert not os.path.exists(out)


def test_ctrl_c_stops_the_fit_with_130_and_saves_the_parameters_fitted_so_far(hidden_mix, tmp_path, interruptible):
    """Into a folder an earlier run left (--force): its stale results go, other files stay."""
    _, folder, stems, _ = hidden_mix
    out = tmp_path / "interrupted"
    (out / "sources").mkdir(parents=True)
    stale = ["hidden.params.json", "sources/07_hats.wav", "fitted.wav"]
    for name in stale:
        (out / name).write_bytes(b"stale")
    recorded = {"bytes": 5, "sha256": hashlib.sha256(b"stale").hexdigest()}
    (out / ".grafx-results.json").write_text(json.dumps({"files": {name: recorded for name in stale}}))
    (out / "mine.txt").write_text("not a result")
    process = subprocess.Popen([sys.executable, "-m", "grafx_core", "fit", *stems, "--target",
                                str(folder / "mix.wav"), "-o", str(out), "--steps", "100000", "--patience", "100000",
                                "--force"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
                (out / "loss.csv").exists() and len((out / "loss.csv").read_text().splitlines()) > 3):
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("interrupted after ") and "fitted.params.json" in last
    fitted = load_parameters(out / "fitted.params.json")
    assert "dsp:stereo_gain" in fitted.keys()
    report = json.loads((out / "report.json").read_text())
    assert report["stopped"] == "interrupted" and report["steps_taken"] >= 3
    assert not any((out / name).exists() for name in stale) and (out / "mine.txt").exists()
    assert sorted(p.name for p in (out / "sources").iterdir()) == [f"{k:02d}_{os.path.basename(s)}"
                                                                  for k, s in enumerate(stems)]


def test_console_start_values_replace_defaults_in_units_black_boxes_included():
    pytest.importorskip("grafx_pedalboard")
    from grafx_core.fitting.report import natural_parameters

    for name, node_type, expected in (("analytic", "dsp:reverb", {"gain_db": -24.0, "decay_s": 0.8}),
                                      ("pedalboard", "pedalboard:reverb", {"dry_level": 0.02, "wet_level": 0.15})):
        console = build_console(["kick", "bass"], name)
        processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
        values = natural_parameters(processors, console.start_parameters(processors))
        for parameter, value in expected.items():
            torch.testing.assert_close(values[node_type][parameter],
                                       torch.full_like(values[node_type][parameter], value), rtol=1e-6, atol=1e-6)
        defaults = natural_parameters(processors, create_empty_parameters(console.graph, processors))
        assert torch.equal(values["dsp:stereo_gain"]["gain_db"], defaults["dsp:stereo_gain"]["gain_db"])


def test_the_report_says_how_the_target_lines_up_and_keeps_makeup_gain_where_the_fader_does_its_job(hidden_mix):
    _, _, _, out = hidden_mix
    with open(out / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["alignment"]["applied"] is False and abs(report["alignment"]["lag_samples"]) <= 2
    compressors = [n for n in report["nodes"] if n["type"] == "dsp:compressor"]
    assert compressors and all(n["parameters"]["makeup_db"]["fitted"] == n["parameters"]["makeup_db"]["initial"]
                               for n in compressors)
    faders = [n for n in report["nodes"] if n["type"] == "dsp:stereo_gain"]
    assert any(n["parameters"]["gain_db"]["fitted"] != n["parameters"]["gain_db"]["initial"] for n in faders)
    assert "outside_range" in report


def test_a_late_target_is_found_late_by_the_stems_lag_and_shifted_back(hidden_mix):
    from grafx_core.fitting.align import align_target
    from grafx_core.fitting.metrics import snr_db
    from grafx_core.fitting.stems import read_multitrack

    _, folder, stems, _ = hidden_mix
    multitrack = read_multitrack(stems, folder / "mix.wav")
    lag = int(0.002 * RATE)  # 2 ms late: the case that ruined fits silently
    late = torch.nn.functional.pad(multitrack.target, (lag, 0))[:, :multitrack.target.shape[-1]]
    aligned, alignment = align_target(multitrack.stems, late, RATE)
    assert alignment.applied and abs(alignment.lag_samples - lag) <= 1
    assert "late" in alignment.note()
    assert snr_db(aligned[:, :-lag], multitrack.target[:, :-lag]) > snr_db(late, multitrack.target) + 20
    early, alignment = align_target(multitrack.stems, torch.roll(multitrack.target, -lag, -1), RATE)
    assert alignment.applied and abs(alignment.lag_samples + lag) <= 1
