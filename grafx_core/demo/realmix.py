"""Real recordings nobody on the project made, mixed by a tool the project does not contain (sox).

Six stems of recorded material from Debian packages: drum and tabla loops, a
bass, a guitar and a choir from ``sonic-pi-samples``, and a spoken voice from
``alsa-utils`` (``/usr/share/sounds/alsa``). Each is looped (the loops are
made to repeat) to the length asked for, at one rate, stereo. :func:`sox_mix`
mixes them the way an engineer would with sox: per stem a gain, an equaliser
bell, compression (``compand``) and a pan, a reverb on a send, and the master
normalised to a peak of -1 dBFS. :func:`missing_real_material` says what to
install where something is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..audiofile import read_audio
from ..errors import GrafxError
from ..fitting.stems import conform
from ..wavfile import write_wav

__all__ = ["REAL_STEMS", "SoxStem", "SOX_MIX", "RealMaterialError", "missing_real_material", "real_stems",
           "sox_mix"]

_SONIC_PI = "/usr/share/sonic-pi/samples"
_ALSA = "/usr/share/sounds/alsa"

REAL_STEMS: dict[str, tuple[str, ...]] = {
    "drums": (f"{_SONIC_PI}/loop_amen.flac",),
    "perc": (f"{_SONIC_PI}/loop_tabla.flac",),
    "bass": (f"{_SONIC_PI}/bass_voxy_c.flac",),
    "guitar": (f"{_SONIC_PI}/guit_em9.flac",),
    "choir": (f"{_SONIC_PI}/ambi_choir.flac",),
    "voice": (f"{_ALSA}/Front_Center.wav", f"{_ALSA}/Front_Left.wav", f"{_ALSA}/Front_Right.wav"),
}
"""Stem name -> the recordings it plays one after the other, looped."""

_PACKAGES = {_SONIC_PI: "sonic-pi-samples", _ALSA: "alsa-utils"}


@dataclass(frozen=True)
class SoxStem:
    """How :func:`sox_mix` treats one stem.

    Attributes:
        gain_db: sox ``gain``.
        eq_hz, eq_q, eq_db: one ``equalizer`` bell.
        threshold_db, ratio: ``compand`` above ``threshold_db`` (attack 5 ms, release 100 ms).
        pan: -1 (left) to 1 (right), constant power, as the channel gains of ``remix``.
        send_db: the level sent to the reverb.
    """

    gain_db: float
    eq_hz: float
    eq_q: float
    eq_db: float
    threshold_db: float
    ratio: float
    pan: float
    send_db: float


SOX_MIX: dict[str, SoxStem] = {
    "drums": SoxStem(-3.0, 120.0, 1.0, 4.0, -20.0, 3.0, 0.0, -20.0),
    "perc": SoxStem(-9.0, 3000.0, 1.5, 3.0, -24.0, 2.0, 0.5, -14.0),
    "bass": SoxStem(-4.0, 250.0, 1.2, -5.0, -18.0, 4.0, -0.1, -40.0),
    "guitar": SoxStem(-8.0, 1800.0, 0.8, -4.0, -30.0, 2.0, -0.6, -12.0),
    "choir": SoxStem(-10.0, 6000.0, 1.0, 5.0, -40.0, 1.5, 0.3, -8.0),
    "voice": SoxStem(-5.0, 2500.0, 1.0, 6.0, -26.0, 3.0, -0.2, -16.0),
}
"""The mix :func:`sox_mix` makes by default, per stem."""

_REVERB = ("reverb", "-w", "60", "50", "80", "100", "12")  # wet only: reverberance, damping, room, depth, pre-delay


class RealMaterialError(GrafxError):
    """The real recordings or sox are not installed, or sox failed."""


def missing_real_material() -> str | None:
    """What is missing for :func:`real_stems` and :func:`sox_mix`, as one line naming the Debian package;
    ``None`` when everything is there."""
    for paths in REAL_STEMS.values():
        for path in paths:
            if not os.path.isfile(path):
                package = _PACKAGES[os.path.dirname(path)]
                return f"{path} is missing (Debian: apt-get install {package})"
    if shutil.which("sox") is None:
        return "sox is not installed (Debian: apt-get install sox libsox-fmt-all)"
    return None


def real_stems(folder: str | os.PathLike[str], names: Sequence[str] = tuple(REAL_STEMS), seconds: float = 8.0,
               sample_rate: int = 44100) -> list[str]:
    """Write the stems ``names`` (keys of :data:`REAL_STEMS`) as stereo float WAVs ``seconds`` long.

    Returns:
        The files, in the order of ``names``.

    Raises:
        RealMaterialError: a recording is missing.
    """
    missing = missing_real_material()
    if missing:
        raise RealMaterialError(missing)
    samples = int(round(seconds * sample_rate))
    paths = []
    for name in names:
        parts = []
        for source in REAL_STEMS[name]:
            audio, rate = read_audio(source)
            parts.append(conform(audio, rate, source, "stem", sample_rate, None)[0])
        loop = torch.cat(parts, dim=-1)
        audio = loop.repeat(1, -(-samples // loop.shape[-1]))[:, :samples]
        path = os.path.join(os.fspath(folder), f"{name}.wav")
        write_wav(path, audio, sample_rate)
        paths.append(path)
    return paths


def _pan_gains(pan: float) -> tuple[float, float]:
    import math

    angle = (pan + 1) * math.pi / 4
    return math.sqrt(2) * math.cos(angle), math.sqrt(2) * math.sin(angle)


def _stem_chain(stem: SoxStem) -> list[str]:
    left, right = _pan_gains(stem.pan)
    slope = 1 / stem.ratio
    top = stem.threshold_db * (1 - slope)  # the output level at 0 dB in
    return ["gain", f"{stem.gain_db}", "equalizer", f"{stem.eq_hz}", f"{stem.eq_q}q", f"{stem.eq_db}",
            "compand", "0.005,0.1", f"6:-90,-90,{stem.threshold_db},{stem.threshold_db},0,{top:.3f}",
            "remix", f"1v{left:.4f}", f"2v{right:.4f}"]


def _sox(*words: str) -> None:
    done = subprocess.run(["sox", "-D", "-V1", *words], capture_output=True, text=True)
    if done.returncode != 0:
        raise RealMaterialError(f"sox {' '.join(words)} failed: {done.stderr.strip()}")


def sox_mix(stems: Sequence[str], output: str | os.PathLike[str], mix: dict[str, SoxStem] | None = None,
            reverb: Sequence[str] = _REVERB) -> str:
    """Mix stem files with sox into ``output`` (see the module's description).

    Args:
        stems: the stem files, named ``<stem>.wav`` with ``<stem>`` a key of ``mix``.
        output: the mix (32-bit float WAV).
        mix: the settings per stem name (default :data:`SOX_MIX`).
        reverb: the sox effect on the send (wet only).

    Returns:
        ``output``.

    Raises:
        RealMaterialError: sox is missing or failed.
    """
    if shutil.which("sox") is None:
        raise RealMaterialError("sox is not installed (Debian: apt-get install sox libsox-fmt-all)")
    mix = SOX_MIX if mix is None else mix
    folder = os.path.dirname(os.path.abspath(os.fspath(output)))
    processed, sends = [], []
    for path in stems:
        name = os.path.splitext(os.path.basename(path))[0]
        stem = mix[name]
        out = os.path.join(folder, f".{name}.sox.wav")
        _sox(path, "-e", "floating-point", "-b", "32", out, *_stem_chain(stem))
        processed.append(out)
        sends.extend(["-v", f"{10 ** (stem.send_db / 20):.6f}", out])
    dry, wet = os.path.join(folder, ".dry.sox.wav"), os.path.join(folder, ".wet.sox.wav")
    _sox("-m", *[w for p in processed for w in ("-v", "1", p)], "-e", "floating-point", "-b", "32", dry)
    _sox("-m", *sends, "-e", "floating-point", "-b", "32", wet, *reverb)
    _sox("-m", "-v", "1", dry, "-v", "1", wet, "-e", "floating-point", "-b", "32", os.fspath(output),
         "gain", "-n", "-1")
    for path in (*processed, dry, wet):
        os.remove(path)
    return os.fspath(output)
