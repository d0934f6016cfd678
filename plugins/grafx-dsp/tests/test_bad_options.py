"""Constructor options out of range are refused with the processor and option named."""

import math

import pytest

import grafx_dsp as dsp


@pytest.mark.parametrize("make, message", [
    (lambda: dsp.Compressor(sample_rate=1e-300), r"Compressor: sample_rate must be a finite number of Hz >= 1000"),
    (lambda: dsp.Compressor(sample_rate=math.inf), r"Compressor: sample_rate"),
    (lambda: dsp.ParametricEQ(n_peaks=10**30), r"ParametricEQ: n_peaks must be an int in \[1, 64\]"),
    (lambda: dsp.ParametricEQ(n_peaks=2.5), r"ParametricEQ: n_peaks must be an int"),
    (lambda: dsp.FIREQ(taps=True), r"FIREQ: taps must be an int"),
    (lambda: dsp.NoiseReverb(ir_seconds=1e9), r"NoiseReverb: ir_seconds must be in \(0, 60\] s"),
    (lambda: dsp.NoiseReverb(ir_seconds=-1), r"NoiseReverb: ir_seconds"),
])
def test_an_option_out_of_range_is_a_value_error_naming_processor_and_option(make, message):
    with pytest.raises(ValueError, match=message):
        make()
