"""The export: refusals, a missing Ardour, and the proof by a real DAW.

The round trips fit a console with ``grafx-core fit --console ardour
--export-ardour``, render the session with ``ardour7-export`` and compare
it with ``fitted.wav``: SNR >= 60 dB and loudness within 0.1 LU, on the
demo's synthesised stems and on recorded ones (fluidsynth and a Hydrogen
drum kit). Measured: 99.6 dB and 106.1 dB, loudness equal to 0.0001 LU.
"""

from __future__ import annotations

import math

import pytest
import torch
from grafx_core.cli import main
from grafx_core.fitting.metrics import integrated_loudness
from grafx_core.wavfile import read_wav, write_wav

from grafx_ardour import ArdourNotFoundError, SessionExistsError, export_session, render_session
from grafx_ardour.tools import find_tool


def test_missing_ardour_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ArdourNotFoundError) as info:
        find_tool("ardour7-lua")
    message = str(info.value)
    assert "\n" not in message and "apt-get install" in message and "ardour" in message


def test_cli_reports_missing_ardour_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["export", "ardour", str(tmp_path), "-o", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install" in err


def _fit(folder, stems, names, sample_rate, steps=2):
    paths = []
    for name, stem in zip(names, stems):
        path = folder / f"{name}.wav"
        write_wav(path, stem, sample_rate)
        paths.append(str(path))
    gains = torch.linspace(0.9, 0.4, len(names)).reshape(-1, 1, 1)
    write_wav(folder / "target.wav", (stems * gains).sum(0) * 0.8, sample_rate)
    status = main(["fit", *paths, "-t", str(folder / "target.wav"), "-o", str(folder / "fit"), "--console",
                   "ardour", "--steps", str(steps), "--export-ardour", str(folder / "session")])
    assert status == 0


def _compare(folder):
    ardour, rate = render_session(folder / "session", folder / "ardour.wav")
    fitted, fitted_rate = read_wav(folder / "fit" / "fitted.wav")
    assert rate == fitted_rate and ardour.shape == fitted.shape
    snr = 10 * math.log10(float(fitted.double().pow(2).sum() / (ardour.double() - fitted.double()).pow(2).sum()))
    loudness = integrated_loudness(ardour, rate) - integrated_loudness(fitted, rate)
    return snr, loudness


def _results_folder(folder, names, stems, sample_rate):
    """What ``grafx-core fit`` writes that the export reads, at the console's start values."""
    import json

    from grafx_core import processors_for_graph, save_parameters

    from grafx_ardour import build_ardour_console

    console = build_ardour_console(names)
    processors = processors_for_graph(console.graph, {t: {"sample_rate": sample_rate}
                                                      for t in console.graph.processor_types()})
    (folder / "sources").mkdir(parents=True)
    console.graph.save(folder / "graph.json")
    (folder / "options.json").write_text(json.dumps({}))
    save_parameters(console.start_parameters(processors), folder / "fitted.params.json")
    for k, (name, stem) in enumerate(zip(names, stems)):
        write_wav(folder / "sources" / f"{k:02d}_{name}.wav", stem, sample_rate)


@pytest.mark.slow
def test_existing_session_is_refused_without_force_and_a_foreign_folder_even_with_it(tmp_path, ardour):
    from grafx_core.demo.multitrack import synthesise_multitrack

    names, stems = synthesise_multitrack(2, 0.3, 44100)
    _results_folder(tmp_path / "fit", names, stems, 44100)
    export_session(tmp_path / "fit", tmp_path / "session")
    with pytest.raises(SessionExistsError, match="--force"):
        export_session(tmp_path / "fit", tmp_path / "session")
    assert export_session(tmp_path / "fit", tmp_path / "session", force=True).is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SessionExistsError, match="not an Ardour session"):
        export_session(tmp_path / "fit", tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_ardour_plays_the_fitted_mix_of_the_demo_stems(tmp_path, ardour):
    from grafx_core.demo.multitrack import synthesise_multitrack

    names, stems = synthesise_multitrack(4, 1.0, 48000)
    _fit(tmp_path, stems, names, 48000)
    snr, loudness = _compare(tmp_path)
    assert snr >= 60 and abs(loudness) <= 0.1, (snr, loudness)


@pytest.mark.slow
def test_ardour_plays_the_fitted_mix_of_recorded_stems(tmp_path, ardour):
    from grafx_core.demo.recorded import missing_material, recorded_multitrack

    if missing_material():
        pytest.skip(missing_material())
    names, stems = recorded_multitrack(4, 1.0, 44100)
    _fit(tmp_path, stems, names, 44100)
    snr, loudness = _compare(tmp_path)
    assert snr >= 60 and abs(loudness) <= 0.1, (snr, loudness)


@pytest.mark.parametrize("console", ["sox", "analytic"])
def test_fit_refuses_an_unexportable_console_before_fitting(tmp_path, capsys, console):
    # The check runs before the fit: no results folder is made, and the error names the node and the way out.
    stems = torch.randn(2, 2, 4410, generator=torch.Generator().manual_seed(3)) * 0.1
    paths = []
    for k, stem in enumerate(stems):
        paths.append(str(tmp_path / f"s{k}.wav"))
        write_wav(paths[-1], stem, 44100)
    write_wav(tmp_path / "target.wav", stems.sum(0), 44100)
    status = main(["fit", *paths, "-t", str(tmp_path / "target.wav"), "-o", str(tmp_path / "fit"), "--console",
                   console, "--steps", "1", "--export-ardour", str(tmp_path / "session")])
    err = capsys.readouterr().err
    assert status == 1 and "--export-ardour" in err and "no Ardour counterpart" in err and "--console ardour" in err
    assert not (tmp_path / "fit").exists() and not (tmp_path / "session").exists()
