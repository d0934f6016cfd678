"""Every command-line option is checked where it is parsed: one argparse line naming the option and the range,
never a traceback or a hang; a processor returning NaN is reported as such, not measured as if fine."""

from __future__ import annotations

import pytest
import torch

from grafx_core import ProcessorOutputError
from grafx_core.cli import main
from grafx_core.gradient_report import gradient_report

BAD = [
    (["gradients", "dsp:gain", "--items", "0"], "--items: expected at least 1, got 0"),
    (["gradients", "dsp:gain", "--items", "-2"], "--items: expected at least 1, got -2"),
    (["gradients", "dsp:gain", "--items", "1000000"], "--items: expected at most 64"),
    (["gradients", "dsp:gain", "--seconds", "0"], "--seconds: expected at least 0.02 seconds"),
    (["gradients", "dsp:gain", "--seconds", "nan"], "--seconds: expected at least 0.02 seconds"),
    (["gradients", "dsp:gain", "--seconds", "inf"], "--seconds: expected at most 30 seconds"),
    (["gradients", "dsp:gain", "--seconds", "100000"], "--seconds: expected at most 30 seconds"),
    (["gradients", "dsp:gain", "--seed", "-1"], "--seed: expected at least 0"),
    (["demo", "--tracks", "100000"], "--tracks: expected at most 64"),
    (["demo", "--seconds", "1e9"], "--seconds: expected at most 600 seconds"),
    (["demo", "--threads", "100000"], "--threads: expected at most 256"),
    (["render", "g.json", "-s", "a.wav", "-o", "b.wav", "--threads", "0"], "--threads: expected at least 1"),
    (["fit", "a.wav", "-t", "b.wav", "-o", "out", "--sample-rate", "1000000000"],
     "--sample-rate: expected at most 384000"),
    (["fit", "a.wav", "-t", "b.wav", "-o", "out", "--seed", "99999999999999999999"], "--seed: expected at most"),
    (["draw", "g.json", "-o", "g.png", "--dpi", "1000000"], "--dpi: expected at most 1200"),
    (["render", "g.json", "-s", "a.wav", "-o", "b.wav", "--allow-plugins", "/no/such/folder"],
     "--allow-plugins: cannot allow plug-ins from '/no/such/folder': it is not a folder"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_a_bad_option_is_one_line_naming_it(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and message in err and "Traceback" not in err


class NaNGain(torch.nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * float("nan")


def test_a_processor_returning_nan_is_reported_not_measured():
    with pytest.raises(ProcessorOutputError, match="nan_gain: returned NaN or Inf"):
        gradient_report(NaNGain(), items=2, seconds=0.1, name="nan_gain")
    with pytest.raises(ValueError, match="items must be a positive int"):
        gradient_report(NaNGain(), items=0)
