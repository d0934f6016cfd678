"""A multitrack of recorded instruments: Hydrogen drum samples and FluidR3 General MIDI, rendered by fluidsynth.

Nothing here is synthesised by the project: the drums are placed samples
from a Hydrogen drum kit (Debian ``hydrogen-drumkits``), and the bass,
piano, strings and lead are a short MIDI arrangement (written here, in A
minor at 120 bpm like the synthesised demo) played by the FluidR3 GM sound
font (``fluid-soundfont-gm``) through the ``fluidsynth`` command line.
:func:`missing_material` says what is absent where these are not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import numpy as np
import torch

from ..errors import GrafxError
from ..fitting.stems import conform
from ..wavfile import read_wav
from ._midi import Note, write_midi

__all__ = ["RecordedMaterialError", "RECORDED_TRACKS", "missing_material", "recorded_multitrack"]

SOUND_FONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DRUM_KIT = "/usr/share/hydrogen/data/drumkits/The Black Pearl 1.0"
_DRUM_SAMPLES = {"kick": ("PearlKick-Hard.wav", "PearlKick-Med.wav"),
                 "snare": ("PearlSnare-Hard.wav", "PearlSnare-Med.wav"),
                 "hats": ("SabianHatClosed-Med.wav", "SabianHatClosed-Soft.wav")}
_PROGRAMS = {"bass": 33, "piano": 0, "strings": 48, "lead": 73}  # GM: finger bass, grand piano, strings, flute
_CHORDS = ((57, 60, 64), (53, 57, 60), (60, 64, 67), (55, 59, 62))  # Am, F, C, G, a bar each
_BEAT_S = 0.5

RECORDED_TRACKS = ("kick", "snare", "hats", "bass", "piano", "strings", "lead")
"""The tracks in order (``tracks=4`` takes the first four)."""


class RecordedMaterialError(GrafxError):
    """The recorded instruments are not installed, or fluidsynth failed."""


def missing_material() -> str | None:
    """What is missing for :func:`recorded_multitrack`, as one line with the Debian package
    to install; ``None`` when everything is there."""
    if shutil.which("fluidsynth") is None:
        return "fluidsynth is not installed (Debian: apt-get install fluidsynth)"
    if not os.path.isfile(SOUND_FONT):
        return f"{SOUND_FONT} is missing (Debian: apt-get install fluid-soundfont-gm)"
    samples = [os.path.join(DRUM_KIT, name) for pair in _DRUM_SAMPLES.values() for name in pair]
    if not all(os.path.isfile(path) for path in samples):
        return f"the Hydrogen drum kit {DRUM_KIT!r} is missing (Debian: apt-get install hydrogen-drumkits)"
    return None


def _score(track: str, beats: int, rng: np.random.Generator) -> list[Note]:
    chord = lambda beat: _CHORDS[(beat // 4) % len(_CHORDS)]  # noqa: E731
    if track == "bass":
        return [Note(b + h, 0.45, chord(b)[0] - 24 + (12 if h and b % 2 else 0), 100)
                for b in range(beats) for h in (0.0, 0.5)]
    if track == "piano":
        return [Note(b + 0.5, 0.4, key, 80) for b in range(beats) for key in chord(b)]
    if track == "strings":
        return [Note(bar, 4.0, key + 12, 70) for bar in range(0, beats, 4) for key in chord(bar)]
    scale = (69, 72, 74, 76, 79, 81, 84)  # A minor pentatonic
    position, notes = 3, []
    for eighth in range(2 * beats):
        if rng.random() < 0.25:
            continue
        position = int(np.clip(position + rng.integers(-2, 3), 0, len(scale) - 1))
        notes.append(Note(eighth / 2, 0.45, scale[position], 90))
    return notes


def _fluidsynth(scores: dict[str, list[Note]], sample_rate: int, folder: str) -> dict[str, torch.Tensor]:
    """Each instrument's score rendered by its own fluidsynth process, all at once."""
    running = {}
    for name, notes in scores.items():
        midi, wav = os.path.join(folder, f"{name}.mid"), os.path.join(folder, f"{name}.wav")
        write_midi(midi, notes, _PROGRAMS[name])
        # Dynamic sample loading reads only the instrument played from the 148 MB sound font.
        command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-o",
                   "synth.dynamic-sample-loading=1", "-F", wav, "-T", "wav", "-O", "float", SOUND_FONT, midi]
        running[name] = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), wav)
    stems = {}
    for name, (process, wav) in running.items():
        output, _ = process.communicate(timeout=120)
        if process.returncode != 0 or not os.path.isfile(wav):
            lines = output.strip().splitlines()
            raise RecordedMaterialError(f"fluidsynth failed on {name}: {lines[-1] if lines else process.returncode}")
        audio, rate = read_wav(wav)
        stems[name] = conform(audio, rate, wav, "stem", sample_rate, None)[0]
    return stems


def _drums(track: str, beats: int, samples: int, sample_rate: int, rng: np.random.Generator) -> torch.Tensor:
    hits = []
    for name in _DRUM_SAMPLES[track]:
        audio, rate = read_wav(os.path.join(DRUM_KIT, name))
        hits.append(conform(audio, rate, name, "drum sample", sample_rate, None)[0])
    if track == "kick":
        pattern = [(b, 0) for b in range(beats) if b % 2 == 0] + [(b + 0.5, 1) for b in range(beats) if b % 4 == 3]
    elif track == "snare":
        pattern = [(b, 0) for b in range(1, beats, 2)]
    else:
        pattern = [(e / 2, 1 if e % 2 else int(rng.random() < 0.3)) for e in range(2 * beats)]
    out = torch.zeros(2, samples)
    for beat, layer in pattern:
        start = int(round(beat * _BEAT_S * sample_rate))
        if start < samples:
            hit = hits[layer][:, : samples - start]
            out[:, start:start + hit.shape[1]] += hit
    return out


def recorded_multitrack(tracks: int = 7, seconds: float = 4.0, sample_rate: int = 44100,
                        seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """Render ``tracks`` stereo stems of recorded instruments (see :data:`RECORDED_TRACKS`).

    Each stem is normalised to a peak of 0.5. A seed changes the lead melody
    and the hi-hat accents.

    Returns:
        ``(names, audio)``: float32 ``[tracks, 2, samples]`` on the CPU.

    Raises:
        RecordedMaterialError: the material is not installed (the message
            names the Debian package), or fluidsynth failed.
        ValueError: ``tracks`` not in 1-7 or ``seconds <= 0``.
    """
    if not 1 <= tracks <= len(RECORDED_TRACKS) or not seconds > 0:
        raise ValueError(f"need 1 <= tracks <= {len(RECORDED_TRACKS)} and seconds > 0, got {tracks}, {seconds}")
    missing = missing_material()
    if missing:
        raise RecordedMaterialError(missing)
    samples = int(round(seconds * sample_rate))
    beats = int(np.ceil(seconds / _BEAT_S))
    names = list(RECORDED_TRACKS[:tracks])
    rngs = {name: np.random.default_rng([seed, k]) for k, name in enumerate(names)}
    with tempfile.TemporaryDirectory(prefix="grafx-recorded-") as folder:
        played = _fluidsynth({n: _score(n, beats, rngs[n]) for n in names if n in _PROGRAMS}, sample_rate, folder)
    audio = []
    for name in names:
        if name in _DRUM_SAMPLES:
            stem = _drums(name, beats, samples, sample_rate, rngs[name])
        else:
            stem = torch.nn.functional.pad(played[name], (0, max(samples - played[name].shape[1], 0)))[:, :samples]
        peak = float(stem.abs().max())
        audio.append(stem * (0.5 / peak) if peak > 0 else stem)
    return names, torch.stack(audio).to(torch.float32)
