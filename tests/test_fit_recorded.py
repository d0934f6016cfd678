"""A short fit, with pruning, on a multitrack of recorded instruments (examples/fit_recorded_multitrack.py).

Needs Debian's fluidsynth, fluid-soundfont-gm and hydrogen-drumkits (installed by `make test` when
running as root); skipped with the missing package's name elsewhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("grafx_dsp")

from grafx_core.cli import main  # noqa: E402
from grafx_core.demo._midi import Note, write_midi  # noqa: E402
from grafx_core.demo.recorded import missing_material  # noqa: E402
from grafx_core.wavfile import read_wav  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fit_recorded_multitrack.py"


@pytest.fixture(scope="module")
def example():
    missing = missing_material()
    if missing:
        pytest.skip(missing)
    spec = importlib.util.spec_from_file_location("fit_recorded_multitrack", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fit_with_pruning_on_recorded_instruments_lowers_the_loss_and_reports_what_it_kept(example, tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = example.run(str(tmp_path), tracks=4, seconds=1.0, steps=12, prune=True)
    finally:
        torch.set_num_threads(previous)
    assert report["settings"]["stems"] == ["kick", "snare", "hats", "bass"]
    assert report["final_loss"] < 0.9 * report["initial_loss"]
    pruned = report["prune"]
    assert 0 < pruned["processors_after"] <= pruned["processors_before"] == 18  # 17 and the master limiter
    assert pruned["processors_before"] - pruned["processors_after"] == len(pruned["removed"])
    assert pruned["loss_before"] == pytest.approx(report["final_loss"])
    assert (tmp_path / "fit" / "pruned.graph.json").exists()
    # The pruned mix is written, measured and reproducible by its printed command, bit for bit.
    assert set(pruned["metrics"]) >= {"snr_db", "log_spectral_distance_db", "loudness_lufs", "peak_dbfs"}
    command = pruned["render_command"].split()
    assert main(command[command.index("render"):]) == 0
    again, _ = read_wav(tmp_path / "fit" / "pruned_again.wav")
    first, _ = read_wav(tmp_path / "fit" / "pruned.wav")
    assert torch.equal(again, first)


def test_midi_writer_writes_what_a_standard_midi_reader_expects(tmp_path):
    write_midi(tmp_path / "a.mid", [Note(0, 1, 60, 100), Note(1, 0.5, 64)], program=33, bpm=120)
    data = (tmp_path / "a.mid").read_bytes()
    assert data[:14] == b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"  # format 0, one track, 480 ticks/beat
    assert data[14:18] == b"MTrk" and int.from_bytes(data[18:22], "big") == len(data) - 22
    body = data[22:]
    assert body[:7] == b"\x00\xff\x51\x03\x07\xa1\x20"  # 500,000 us per beat = 120 bpm
    assert body[7:10] == b"\x00\xc0\x21"  # program change to 33
    assert body[10:14] == b"\x00\x90\x3c\x64"  # note on at tick 0
    assert body[14:19] == b"\x83\x60\x80\x3c\x00"  # 480 ticks later (variable length 0x83 0x60): note off
    assert body[-4:] == b"\x00\xff\x2f\x00"
