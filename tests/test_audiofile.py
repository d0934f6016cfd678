"""Audio files as users have them: every format libsndfile reads, against a float WAV scipy wrote."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from grafx_core.audiofile import read_audio, readable_formats
from grafx_core.errors import AudioFileError
from grafx_core.wavfile import read_wav

RATE = 8000


@pytest.fixture
def reference(tmp_path):
    t = np.arange(RATE) / RATE
    audio = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 660 * t)], 1).astype(np.float32)
    path = tmp_path / "reference.wav"
    wavfile.write(path, RATE, audio)
    return path, torch.from_numpy(audio.T.copy())


def test_integer_wavs_read_as_read_wav_reads_them(tmp_path, reference):
    _, audio = reference
    for dtype, scale in ((np.int16, 2**15 - 1), (np.int32, 2**31 - 1)):
        pcm = np.round(audio.numpy().T * scale).astype(dtype)
        wavfile.write(tmp_path / "pcm.wav", RATE, pcm)
        ours, rate = read_audio(tmp_path / "pcm.wav")
        theirs, _ = read_wav(tmp_path / "pcm.wav")
        assert rate == RATE and ours.dtype == torch.float32
        assert torch.allclose(ours, theirs, atol=1e-7, rtol=0)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (Debian sox, libsox-fmt-all)")
@pytest.mark.parametrize("name, options, tolerance", [
    ("24bit.wav", ["-b", "24"], 1e-6), ("float.wav", ["-e", "floating-point", "-b", "32"], 1e-7),
    ("8bit.wav", ["-b", "8"], 1 / 128), ("lossless.flac", ["-b", "24"], 1e-6), ("aiff.aiff", [], 1e-4),
])
def test_files_sox_converted_read_back_to_the_reference(tmp_path, reference, name, options, tolerance):
    source, audio = reference
    subprocess.run(["sox", "-D", str(source), *options, str(tmp_path / name)], check=True, capture_output=True)
    ours, rate = read_audio(tmp_path / name)
    assert rate == RATE and ours.shape == audio.shape
    assert float((ours - audio).abs().max()) <= tolerance


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (Debian sox, libsox-fmt-all)")
@pytest.mark.parametrize("name", ["lossy.ogg", "lossy.mp3"])
def test_lossy_files_read_back_at_the_reference_level(tmp_path, reference, name):
    if name.endswith(".mp3") and "MP3" not in readable_formats():
        pytest.skip("this libsndfile reads no MP3")
    source, audio = reference
    done = subprocess.run(["sox", str(source), str(tmp_path / name)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"sox cannot write {name} here (libsox-fmt-all)")
    ours, rate = read_audio(tmp_path / name)
    assert rate == RATE and ours.shape[0] == 2 and ours.shape[1] >= RATE  # an MP3 adds encoder padding
    level = lambda x: 10 * torch.log10(x.pow(2).sum(dim=-1))  # energy: the padding is near silence  # noqa: E731
    assert torch.allclose(level(ours), level(audio), atol=0.5)


def test_unreadable_files_are_explained_in_plain_words(tmp_path, reference):
    source, _ = reference
    (tmp_path / "notes.mp3").write_text("not audio")
    (tmp_path / "notes.xyz").write_text("not audio")
    (tmp_path / "empty.flac").write_bytes(b"")
    data = source.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-400])
    with pytest.raises(AudioFileError, match=r"notes.mp3' is not a readable MP3 file: it looks damaged"):
        read_audio(tmp_path / "notes.mp3")
    with pytest.raises(AudioFileError, match=r"notes.xyz' is not an audio file this installation reads.*FLAC.*sox"):
        read_audio(tmp_path / "notes.xyz")
    with pytest.raises(AudioFileError, match=r"empty.flac' is empty \(0 bytes\)"):
        read_audio(tmp_path / "empty.flac")
    with pytest.raises(AudioFileError, match=r"cut.wav'.*data is cut short"):
        read_audio(tmp_path / "cut.wav")
    with pytest.raises(AudioFileError, match=r"missing.flac': no such file"):
        read_audio(tmp_path / "missing.flac")
    with pytest.raises(AudioFileError, match=r"is a folder"):
        read_audio(tmp_path)
