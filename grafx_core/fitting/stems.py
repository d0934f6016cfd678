"""Stems and a target mix read from audio files (WAV, FLAC, OGG, MP3, ...) and made to fit one console.

A user's stems rarely agree: different sample rates, lengths and channel
counts. They are conformed to the target mix the way a mixing engineer
would expect, and each change is reported as a note:

- sample rate: every file is resampled to the target's rate (or a rate
  asked for) with ``scipy.signal.resample_poly``;
- length: the target's length rules; shorter stems are zero-padded at the
  end, longer ones cut with a 10 ms fade-out (so the cut does not click);
- channels: mono files are copied to both channels; a file with more than
  two channels is refused with a message saying how to fix it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import AudioFileError
from ..audiofile import read_audio

__all__ = ["Multitrack", "MIN_SECONDS", "read_multitrack", "conform", "stem_names"]

MIN_SECONDS = 0.1
"""The shortest target a fit accepts: the loss's longest STFT frame (4,096 samples) needs about this much."""

_FADE_S = 0.01
_RESERVED = ("drum_bus", "music_bus", "reverb_send", "master", "mix", "reverb")  # node names of the console


@dataclass
class Multitrack:
    """Stems and their target mix at one sample rate, length and channel count.

    Attributes:
        names: one name per stem (from the file names, made unique).
        stems: float32 ``[stems, 2, samples]``.
        target: float32 ``[2, samples]``.
        sample_rate: in Hz.
        notes: what was changed to make the files agree, one line each.
    """

    names: list[str]
    stems: torch.Tensor
    target: torch.Tensor
    sample_rate: int
    notes: list[str] = field(default_factory=list)


def stem_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Node names for stem files: each file's base name without extension, in letters, digits
    and underscores, made unique with ``_2``, ``_3``, ...; e.g. ``"Lead Vox.wav"`` -> ``"lead_vox"``
    (``"master.wav"`` -> ``"master_stem"``, as the console has a node named ``master``)."""
    names: list[str] = []
    for path in paths:
        base = os.path.splitext(os.path.basename(os.fspath(path)))[0]
        name = re.sub(r"[^0-9a-z]+", "_", base.lower()).strip("_") or "stem"
        name = f"{name}_stem" if name in _RESERVED else name
        candidate, k = name, 2
        while candidate in names:
            candidate, k = f"{name}_{k}", k + 1
        names.append(candidate)
    return names


def _resample(audio: torch.Tensor, rate: int, target_rate: int) -> torch.Tensor:
    from scipy.signal import resample_poly

    common = math.gcd(rate, target_rate)
    out = resample_poly(audio.to(torch.float64).numpy(), target_rate // common, rate // common, axis=-1)
    return torch.from_numpy(out).to(torch.float32)


def _stereo(audio: torch.Tensor, name: str, role: str) -> tuple[torch.Tensor, str | None]:
    if audio.shape[0] == 2:
        return audio, None
    if audio.shape[0] == 1:
        return audio.expand(2, -1).clone(), f"{name}: mono, copied to both channels"
    raise AudioFileError(
        f"{name!r} has {audio.shape[0]} channels, but a {role} must be mono or stereo: "
        "split it into mono or stereo files, or downmix it (e.g. sox in.wav out.wav remix 1,3 2,4)"
    )


def conform(audio: torch.Tensor, rate: int, name: str, role: str, sample_rate: int,
            samples: int | None) -> tuple[torch.Tensor, list[str]]:
    """One file's audio made stereo at ``sample_rate`` and ``samples`` long (``None``: its own length).

    Args:
        audio: ``[channels, samples]``.
        rate: its sample rate in Hz.
        name: the file, for messages.
        role: ``"stem"`` or ``"target mix"``, for messages.
        sample_rate: the rate wanted, in Hz.
        samples: the length wanted.

    Returns:
        ``(audio [2, samples], notes)``.

    Raises:
        AudioFileError: more than two channels, no samples, or samples that are not finite.
    """
    notes = []
    if audio.shape[-1] == 0 or audio.shape[0] == 0:
        raise AudioFileError(f"{name!r} holds no audio: a {role} needs at least {MIN_SECONDS:g} s")
    if not torch.isfinite(audio).all():
        raise AudioFileError(f"{name!r} has NaN or infinite samples; a {role} must be finite audio")
    audio, note = _stereo(audio, name, role)
    if note:
        notes.append(note)
    if rate != sample_rate:
        audio = _resample(audio, rate, sample_rate)
        notes.append(f"{name}: resampled from {rate} Hz to {sample_rate} Hz")
    if samples is not None and audio.shape[-1] < samples:
        notes.append(f"{name}: {audio.shape[-1] / sample_rate:.3f} s, zero-padded to {samples / sample_rate:.3f} s")
        audio = torch.nn.functional.pad(audio, (0, samples - audio.shape[-1]))
    elif samples is not None and audio.shape[-1] > samples:
        notes.append(f"{name}: {audio.shape[-1] / sample_rate:.3f} s, cut to the target's "
                     f"{samples / sample_rate:.3f} s with a {_FADE_S * 1e3:g} ms fade-out")
        audio = audio[:, :samples].clone()
        fade = min(int(_FADE_S * sample_rate), samples)
        audio[:, samples - fade:] *= torch.linspace(1.0, 0.0, fade, dtype=audio.dtype)
    return audio, notes


def read_multitrack(stems: Sequence[str | os.PathLike[str]], target: str | os.PathLike[str],
                    sample_rate: int | None = None) -> Multitrack:
    """Read stem files and a target mix (any format :func:`~grafx_core.audiofile.read_audio` reads) and conform
    them (see the module's notes).

    Args:
        stems: the stem files, in the order of the console's inputs.
        target: the mix to reproduce.
        sample_rate: the rate to work at in Hz (default: the target's).

    Raises:
        AudioFileError: a file is missing or unreadable, has more than two
            channels or non-finite samples, the target is silent or shorter
            than :data:`MIN_SECONDS`, or no stems were given.
    """
    if not stems:
        raise AudioFileError("no stem files given: name one audio file per track before --target")
    target_name = os.fspath(target)
    mix, mix_rate = read_audio(target_name)
    rate = int(sample_rate or mix_rate)
    mix, notes = conform(mix, mix_rate, target_name, "target mix", rate, None)
    if mix.shape[-1] < MIN_SECONDS * rate:
        raise AudioFileError(f"{target_name!r} is {mix.shape[-1] / rate:.3f} s long; a fit needs a target of "
                             f"at least {MIN_SECONDS:g} s")
    if not mix.abs().max() > 0:
        raise AudioFileError(f"{target_name!r} is silent: there is no mix to fit")
    audio = []
    for path in stems:
        stem, stem_rate = read_audio(path)
        stem, stem_notes = conform(stem, stem_rate, os.fspath(path), "stem", rate, mix.shape[-1])
        audio.append(stem)
        notes.extend(stem_notes)
    return Multitrack(stem_names(stems), torch.stack(audio), mix, rate, notes)
