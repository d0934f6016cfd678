"""Real recordings from Debian packages and a mix sox makes of them (the material of bench/fit.py part 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grafx_core.audiofile import read_audio
from grafx_core.demo.realmix import SOX_MIX, missing_real_material, real_stems, sox_mix
from grafx_core.fitting.initial import least_squares_weights
from grafx_core.fitting.metrics import peak_dbfs


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    missing = missing_real_material()
    if missing:
        pytest.skip(missing)
    folder = tmp_path_factory.mktemp("real")
    paths = real_stems(folder, ("drums", "guitar", "voice"), seconds=1.5, sample_rate=22050)
    return paths, sox_mix(paths, folder / "mix.wav")


def test_stems_are_looped_to_length_stereo_at_the_rate_asked(material):
    paths, _ = material
    for path in paths:
        audio, rate = read_audio(path)
        assert rate == 22050 and audio.shape == (2, int(1.5 * 22050)) and float(audio.abs().max()) > 0.01


def test_the_sox_mix_is_normalised_and_pans_each_stem_as_its_settings_say(material):
    paths, mix_path = material
    mix, rate = read_audio(mix_path)
    assert rate == 22050 and peak_dbfs(mix) == pytest.approx(-1.0, abs=0.05)
    stems = torch.stack([read_audio(p)[0] for p in paths])
    weights = np.stack([least_squares_weights(stems[:, c], mix[c]) for c in range(2)], axis=1)
    for (left, right), name in zip(weights, ("drums", "guitar", "voice")):
        angle = (SOX_MIX[name].pan + 1) * math.pi / 4
        # The compander and the EQ change levels, not the balance between the channels.
        assert math.atan2(right, left) == pytest.approx(angle, abs=0.12), name
