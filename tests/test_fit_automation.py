"""`grafx-core fit --automate fader`: a fader ride hidden in a mix is fitted as curves, reported and plotted."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("grafx_dsp")

from grafx_core import curve_frames, load_control_hop, load_parameters, render, save_parameters  # noqa: E402
from grafx_core.cli import main  # noqa: E402
from grafx_core import processors_for_graph  # noqa: E402
from grafx_core.demo.draws import draw_parameters  # noqa: E402
from grafx_core.demo.multitrack import synthesise_multitrack  # noqa: E402
from grafx_core.demo.ride import hide_fader_ride, ride_stems  # noqa: E402
from grafx_core.fitting.console import build_console  # noqa: E402
from grafx_core.wavfile import write_wav  # noqa: E402

RATE = 22050
HOP = 1024


@pytest.fixture(scope="module")
def ride_fit(tmp_path_factory):
    """Four stems (0.6 s), a mix with a hidden swell and duck, and a fit of the faders as curves from
    the hidden console with its faders flat at 0 dB."""
    folder = tmp_path_factory.mktemp("ride")
    names, audio = synthesise_multitrack(4, 0.6, RATE, seed=3)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    drawn = draw_parameters(console.graph, processors, torch.Generator().manual_seed(6))
    hidden = hide_fader_ride(console.graph, drawn, names, audio.shape[-1], HOP)
    start = {t: {k: v.detach() for k, v in drawn[t].items()} for t in drawn.keys()}
    start["dsp:stereo_gain"]["gain_db"] = torch.zeros_like(start["dsp:stereo_gain"]["gain_db"])
    with torch.no_grad():
        mix = render(console.graph, processors, hidden, audio, control_hop=HOP)[0][0]
    stems = [str(folder / f"{name}.wav") for name in names]
    for path, track in zip(stems, audio):
        write_wav(path, track, RATE)
    write_wav(folder / "mix.wav", mix, RATE)
    save_parameters(hidden, folder / "hidden.json", control_hop=HOP)
    save_parameters(start, folder / "start.json")
    out = folder / "fit"
    status = main(["fit", *stems, "--target", str(folder / "mix.wav"), "-o", str(out), "--steps", "40",
                   "--params", str(folder / "start.json"), "--hidden", str(folder / "hidden.json"),
                   "--automate", "fader", "--control-hop", str(HOP)])
    return status, names, out, audio.shape[-1]


def test_a_hidden_fader_ride_is_fitted_as_curves_reported_and_plotted(ride_fit):
    status, names, out, samples = ride_fit
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    frames = curve_frames(samples, HOP)
    records = {r["node"]: r for r in report["automation"]}
    assert sorted(records) == sorted(f"{name}_fader" for name in names)
    for record in records.values():
        assert record["control"] == "gain_db" and len(record["seconds"]) == frames
        assert {len(record[label][0]) for label in ("hidden", "initial", "fitted")} == {frames}
    swell, duck = ride_stems(names)
    for stem in (swell, duck):
        assert records[f"{names[stem]}_fader"]["correlation"][0] > 0.85  # 0.995 and 0.93 when written
    assert report["metrics"]["fitted"]["snr_db"] > 20
    assert (out / "automation.png").stat().st_size > 0
    assert load_control_hop(out / "fitted.params.json") == HOP
    assert tuple(load_parameters(out / "fitted.params.json")["dsp:stereo_gain"]["gain_db"].shape) == (4, 1, frames)


@pytest.mark.parametrize("words, message", [
    (["nonsense"], "--automate 'nonsense': not one of"),
    (["dsp:compressor.ratio"], "does not let 'ratio' move"),
    (["--console", "pedalboard", "--automate", "thresholds"], "pedalboard:compressor is a black box"),
])
def test_automating_what_cannot_move_is_one_line(ride_fit, tmp_path, capsys, words, message):
    _, names, out, _ = ride_fit
    stems = sorted(str(p) for p in (out / "sources").iterdir())
    arguments = ["fit", *stems, "--target", str(out / "target.wav"), "-o", str(tmp_path / "x"), "--steps", "1"]
    arguments += words if words[0].startswith("--") else [a for word in words for a in ("--automate", word)]
    assert main(arguments) != 0
    assert message in capsys.readouterr().err
