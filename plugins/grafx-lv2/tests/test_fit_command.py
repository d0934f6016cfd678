"""The README's LV2 fit command, as written, on a few tenths of a second of audio."""

from __future__ import annotations

import json
import os

import torch

from grafx_core.cli import main
from grafx_core.parameter_file import load_parameters
from grafx_core.wavfile import read_wav, write_wav


def test_readme_fit_command_with_an_lsp_compressor_runs_and_its_render_command_reproduces_the_mix(
        require, noise, tmp_path, monkeypatch, capsys):
    # lsp_compressor_stereo has controls named like methods of torch's containers ("clear"): they must
    # be escaped in the fit's latent parameters and in the saved files.
    require("lsp_compressor_stereo")
    monkeypatch.chdir(tmp_path)
    stems = noise(4, samples=9600, seed=3)
    for name, stem in zip(("kick", "snare", "bass", "keys"), stems):
        write_wav(f"{name}.wav", stem, 48000)
    write_wav("mix.wav", 0.5 * stems.sum(dim=0), 48000)
    status = main(["fit", "kick.wav", "snare.wav", "bass.wav", "keys.wav", "--target", "mix.wav",
                   "--output", "fit-out", "--compressor", "lv2:lsp_compressor_stereo", "--steps", "2"])
    assert status == 0
    with open(os.path.join("fit-out", "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert report["steps_taken"] >= 1
    fitted = load_parameters(os.path.join("fit-out", "fitted.params.json"))
    assert "clear" in fitted["lv2:lsp_compressor_stereo"].keys()
    command = report["render_command"].split()
    assert main(command[command.index("render"):]) == 0
    again, _ = read_wav(os.path.join("fit-out", "fitted_again.wav"))
    first, _ = read_wav(os.path.join("fit-out", "fitted.wav"))
    assert torch.equal(again, first)
