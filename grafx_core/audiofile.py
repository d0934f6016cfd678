"""Audio files as users have them, read into ``[channels, samples]`` tensors through libsndfile (soundfile).

Every format and sample type the installed libsndfile reads: WAV (8/16/24/32-bit
integer, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE, RF64), FLAC, OGG/Vorbis and Opus,
AIFF, CAF, and MP3 where the library is 1.1 or newer (the ``soundfile`` wheels
bundle one). Integer samples are scaled by their full scale (``2**15`` for 16-bit,
``2**23`` for 24-bit, ...), so a 16-bit file reads as it does with
:func:`~grafx_core.wavfile.read_wav`; float files are read as they are. A WAV
whose header promises more data than the file holds is refused, as
:func:`~grafx_core.wavfile.read_wav` refuses it, instead of read short.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .errors import AudioFileError

__all__ = ["read_audio", "readable_formats"]

_CONVERT = ("convert it to WAV or FLAC first, e.g. `sox in.xyz out.wav` or `ffmpeg -i in.xyz out.wav`")


def readable_formats() -> list[str]:
    """The container formats the installed libsndfile reads (``["AIFF", "FLAC", "MP3", "OGG", "WAV", ...]``)."""
    import soundfile

    return sorted(soundfile.available_formats())


def read_audio(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Read an audio file of any format libsndfile reads (see the module's description).

    Args:
        path: the file.

    Returns:
        ``(audio, sample_rate)``: float32 ``[channels, samples]`` on the CPU, and the rate in Hz.

    Raises:
        AudioFileError: the file is missing, a folder, empty, in a format this
            libsndfile does not read (MP3 with an old one, say), damaged, or a WAV cut
            short; the message names the file and says what to do.
    """
    import soundfile

    name = os.fspath(path)
    if not os.path.exists(name):
        raise AudioFileError(f"{name!r}: no such file")
    if os.path.isdir(name):
        raise AudioFileError(f"{name!r} is a folder, not an audio file")
    if os.path.getsize(name) == 0:
        raise AudioFileError(f"{name!r} is empty (0 bytes): there is no audio in it")
    try:
        data, rate = soundfile.read(name, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(_unreadable(name, exc)) from exc
    except OSError as exc:
        raise AudioFileError(f"cannot read {name!r}: {exc}") from exc
    if rate <= 0:
        raise AudioFileError(f"{name!r}: the header gives sample rate {rate} Hz; expected a positive rate")
    _require_complete_wav(name, data)
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def _unreadable(name: str, exc: Exception) -> str:
    import soundfile

    extension = os.path.splitext(name)[1].lower().lstrip(".")
    formats = readable_formats()
    reason = str(exc).split(": ", 1)[-1].strip() or type(exc).__name__
    if "does not exist" in reason:  # libsndfile's words for any file it cannot parse; the file does exist
        reason = "no audio stream it recognises"
    if extension == "mp3" and "MP3" not in formats:
        return (f"{name!r} is an MP3, and the libsndfile here ({soundfile.__libsndfile_version__}) reads MP3 only "
                f"from version 1.1: {_CONVERT.replace('xyz', 'mp3')}")
    if extension.upper() in formats or extension in ("wav", "wave", "oga", "opus", "aif", "aiff"):
        return (f"{name!r} is not a readable {extension.upper()} file: it looks damaged or cut short "
                f"(libsndfile: {reason}); export it again, or {_CONVERT.replace('xyz', extension)}")
    return (f"{name!r} is not an audio file this installation reads (libsndfile: {reason}); it reads "
            f"{', '.join(formats)}: {_CONVERT.replace('xyz', extension or 'file')}")


def _require_complete_wav(name: str, data: np.ndarray) -> None:
    from ._riff import _require_complete_data

    with open(name, "rb") as f:
        riff = f.read(4) in (b"RIFF", b"RIFX")
    if riff:
        _require_complete_data(name, _frames_like(name, data))


def _frames_like(name: str, data: np.ndarray) -> np.ndarray:
    """An empty array whose item size and channel count are the file's (what the WAV check measures frames in)."""
    import soundfile

    subtype = soundfile.info(name).subtype
    itemsize = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                "ULAW": 1, "ALAW": 1}.get(subtype, 1)
    return np.empty((0, data.shape[1]), dtype=np.dtype(f"V{itemsize}"))
