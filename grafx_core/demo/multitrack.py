"""A synthesised multitrack: drums, bass, keys, pads, lead and more, in stereo.

Everything is made from sines, noise and envelopes at 120 bpm in A minor, so
that the demo needs no audio files. A seed changes the lead melody, the noise
and the hi-hat accents; the arrangement stays the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["INSTRUMENTS", "synthesise_multitrack"]

_BEAT_S = 0.5  # 120 bpm
_CHORDS = ((57, 60, 64), (53, 57, 60), (60, 64, 67), (55, 59, 62))  # Am, F, C, G (MIDI notes), a bar each


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


class _Score:
    """Places notes into a stereo buffer ``[2, samples]``."""

    def __init__(self, samples: int, sample_rate: int, rng: np.random.Generator) -> None:
        self.buffer = np.zeros((2, samples))
        self.sample_rate, self.rng = sample_rate, rng

    def beats(self) -> int:
        return int(math.ceil(self.buffer.shape[1] / self.sample_rate / _BEAT_S))

    def chord(self, beat: float) -> tuple[int, ...]:
        return _CHORDS[int(beat // 4) % len(_CHORDS)]

    def time(self, seconds: float) -> np.ndarray:
        return np.arange(int(seconds * self.sample_rate)) / self.sample_rate

    def place(self, beat: float, note: np.ndarray) -> None:
        """Add ``note`` (``[samples]`` or ``[2, samples]``) starting at ``beat``."""
        start = int(round(beat * _BEAT_S * self.sample_rate))
        if start >= self.buffer.shape[1]:
            return
        note = np.broadcast_to(note, (2, note.shape[-1]))
        stop = min(self.buffer.shape[1], start + note.shape[1])
        self.buffer[:, start:stop] += note[:, : stop - start]

    def tone(self, hz: float, seconds: float, harmonics: int, rolloff: float, decay_s: float,
             attack_s: float = 0.005) -> np.ndarray:
        """Additive tone: harmonic ``k`` at amplitude ``k ** -rolloff``, below Nyquist."""
        t = self.time(seconds)
        wave = sum(np.sin(2 * np.pi * k * hz * t) * k**-rolloff
                   for k in range(1, harmonics + 1) if k * hz < self.sample_rate / 2)
        return wave * np.minimum(t / attack_s, 1.0) * np.exp(-t / decay_s)


def _kick(s: _Score) -> None:
    t = s.time(0.45)
    phase = 2 * np.pi * np.cumsum(48 + 110 * np.exp(-t / 0.035)) / s.sample_rate
    hit = np.sin(phase) * np.exp(-t / 0.22)
    for beat in range(s.beats()):
        s.place(beat, hit)


def _snare(s: _Score) -> None:
    t = s.time(0.3)
    for beat in range(1, s.beats(), 2):
        noise = np.diff(s.rng.standard_normal((2, t.size + 1)), axis=1) * 0.5
        s.place(beat, noise * np.exp(-t / 0.09) + np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05))


def _hats(s: _Score) -> None:
    t = s.time(0.12)
    for eighth in range(2 * s.beats()):
        noise = np.diff(s.rng.standard_normal((2, t.size + 2)), n=2, axis=1) * 0.25
        accent = 1.0 if eighth % 2 else 0.45 + 0.2 * s.rng.random()
        s.place(eighth / 2, noise * accent * np.exp(-t / 0.025))


def _bass(s: _Score) -> None:
    for beat in range(s.beats()):
        root = s.chord(beat)[0] - 24
        for half in (0.0, 0.5):
            s.place(beat + half, s.tone(_hz(root + (12 if half and beat % 2 else 0)), 0.45, 12, 1.0, 0.25))


def _keys(s: _Score) -> None:
    for beat in range(s.beats()):
        for note in s.chord(beat):
            s.place(beat + 0.5, 0.5 * s.tone(_hz(note), 0.5, 4, 2.0, 0.18))


def _pads(s: _Score) -> None:
    for bar in range(0, s.beats(), 4):
        for note in s.chord(bar):
            left = s.tone(_hz(note + 12.03), 2.2, 10, 1.0, 3.0, attack_s=0.4)
            right = s.tone(_hz(note + 11.97), 2.2, 10, 1.0, 3.0, attack_s=0.4)
            fade = np.minimum(1.0, (2.2 - s.time(2.2)) / 0.2)
            s.place(bar, 0.3 * np.stack([left, right]) * fade)


def _lead(s: _Score) -> None:
    scale = (69, 72, 74, 76, 79, 81, 84)  # A minor pentatonic, two octaves
    position = 3
    for eighth in range(2 * s.beats()):
        if s.rng.random() < 0.25:
            continue  # a rest
        position = int(np.clip(position + s.rng.integers(-2, 3), 0, len(scale) - 1))
        t = s.time(0.26)
        hz = _hz(scale[position]) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(hz) / s.sample_rate
        wave = sum(np.sin(k * phase) / k for k in range(1, 12, 2) if k * hz[0] < s.sample_rate / 2)
        s.place(eighth / 2, 0.5 * wave * np.minimum(t / 0.01, 1) * np.exp(-t / 0.3))


def _arp(s: _Score) -> None:
    for sixteenth in range(4 * s.beats()):
        chord = s.chord(sixteenth / 4)
        note = chord[sixteenth % 3] + 12 * (1 + (sixteenth // 3) % 2)
        s.place(sixteenth / 4, 0.35 * s.tone(_hz(note), 0.2, 6, 1.5, 0.06))


def _shaker(s: _Score) -> None:
    t = s.time(0.08)
    for sixteenth in range(4 * s.beats()):
        noise = np.diff(s.rng.standard_normal((2, t.size + 1)), axis=1) * 0.15
        s.place(sixteenth / 4, noise * np.sin(np.pi * t / t[-1]) ** 2 * (1.0 if sixteenth % 4 == 2 else 0.5))


INSTRUMENTS: tuple[tuple[str, Callable[[_Score], None]], ...] = (
    ("kick", _kick), ("snare", _snare), ("hats", _hats), ("bass", _bass),
    ("keys", _keys), ("pads", _pads), ("lead", _lead), ("arp", _arp), ("shaker", _shaker),
)
"""The instruments in the order tracks use them (``--tracks 6`` takes the first six)."""


def synthesise_multitrack(tracks: int = 8, seconds: float = 4.0, sample_rate: int = 44100,
                          seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """Synthesise ``tracks`` stereo tracks.

    Tracks beyond :data:`INSTRUMENTS` repeat the list with another seed
    (``"kick_2"``, ...). Each track is normalised to a peak of 0.5.

    Args:
        tracks: number of tracks (>= 1).
        seconds: duration in seconds.
        sample_rate: in Hz.
        seed: seeds the noise and the melody.

    Returns:
        ``(names, audio)``: one name per track, and float32 ``[tracks, 2,
        samples]`` audio on the CPU.

    Raises:
        ValueError: ``tracks < 1`` or ``seconds <= 0``.
    """
    if tracks < 1 or not seconds > 0:
        raise ValueError(f"need tracks >= 1 and seconds > 0, got tracks={tracks}, seconds={seconds}")
    samples = int(round(seconds * sample_rate))
    names, audio = [], []
    for k in range(tracks):
        name, play = INSTRUMENTS[k % len(INSTRUMENTS)]
        round_ = k // len(INSTRUMENTS)
        score = _Score(samples, sample_rate, np.random.default_rng([seed, k]))
        play(score)
        peak = np.abs(score.buffer).max()
        audio.append(score.buffer * (0.5 / peak if peak > 0 else 1.0))
        names.append(name if round_ == 0 else f"{name}_{round_ + 1}")
    return names, torch.from_numpy(np.stack(audio)).to(torch.float32)
