"""Audio files as users have them, through libsndfile (soundfile): whole, or a block at a time.

Every format and sample type the installed libsndfile reads: WAV (8/16/24/32-bit
integer, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE, RF64), FLAC, OGG/Vorbis and Opus,
AIFF, CAF, and MP3 where the library is 1.1 or newer (the ``soundfile`` wheels
bundle one). Integer samples are scaled by their full scale (``2**15`` for 16-bit,
``2**23`` for 24-bit, ...; 8-bit unsigned around 128); float files are read as they
are, as float32. A WAV whose header promises more data than the file holds is
refused instead of read short.

:func:`read_audio` reads a whole file; :class:`AudioBlockReader` reads the same
frames a block at a time (``grafx-core render --block-size``), through the same
reader, so that the blocks of a file joined equal :func:`read_audio` of it bit for
bit, in every format. :class:`AudioBlockWriter` writes a WAV a block at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Literal

import numpy as np
import torch

from .errors import AudioFileError

__all__ = ["AudioBlockReader", "AudioBlockWriter", "read_audio", "read_source_blocks", "readable_formats"]

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
    with AudioBlockReader(path) as reader:
        return reader.read(-1), reader.sample_rate


class AudioBlockReader:
    """Frames of an audio file (any format :func:`read_audio` reads), read a block at a time.

    Args:
        path: the file.

    Attributes:
        name: the file's path.
        sample_rate: in Hz.
        channels: channel count.
        frames: the file's length in samples per channel, as its header gives it.

    Raises:
        AudioFileError: as :func:`read_audio`, when the file is opened.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import soundfile

        self.name = name = os.fspath(path)
        if not os.path.exists(name):
            raise AudioFileError(f"{name!r}: no such file")
        if os.path.isdir(name):
            raise AudioFileError(f"{name!r} is a folder, not an audio file")
        if os.path.getsize(name) == 0:
            raise AudioFileError(f"{name!r} is empty (0 bytes): there is no audio in it")
        try:
            self._file = soundfile.SoundFile(name)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioFileError(_unreadable(name, exc)) from exc
        except OSError as exc:
            raise AudioFileError(f"cannot read {name!r}: {exc}") from exc
        try:
            self.sample_rate, self.channels, self.frames = self._file.samplerate, self._file.channels, self._file.frames
            if self.sample_rate <= 0:
                raise AudioFileError(f"{name!r}: the header gives sample rate {self.sample_rate} Hz; expected a "
                                     "positive rate")
            _require_complete_wav(name, self.channels, self._file.subtype)
        except BaseException:
            self._file.close()
            raise

    def read(self, frames: int) -> torch.Tensor:
        """The next ``frames`` frames (fewer at the end; ``-1``: all that are left), float32 ``[channels, frames]``.

        Raises:
            AudioFileError: the file is damaged past its header.
        """
        import soundfile

        try:
            data = self._file.read(frames, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(_unreadable(self.name, exc)) from exc
        return torch.from_numpy(np.ascontiguousarray(data.T))

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> AudioBlockReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class AudioBlockWriter:
    """A WAV file written a block at a time (libsndfile fills in the header's sizes when it is closed).

    Args:
        path: the file to write (overwritten; any extension: the container is WAV).
        channels: channel count.
        sample_rate: in Hz.
        format: ``"float32"`` or ``"int16"`` (clipped to ``[-1, 1]`` and rounded, as
            :func:`grafx_core.wavfile.write_wav` writes it).

    Raises:
        AudioFileError: a bad format, channel count or rate, or the file cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str], channels: int, sample_rate: int,
                 format: Literal["float32", "int16"] = "float32") -> None:
        import soundfile

        self.name = os.fspath(path)
        if format not in ("float32", "int16"):
            raise AudioFileError(f"{self.name!r}: WAV format {format!r} is not one of ('float32', 'int16')")
        if channels < 1 or not 1 <= sample_rate < 2**32:
            raise AudioFileError(f"{self.name!r}: cannot write {channels} channel(s) at {sample_rate} Hz")
        self.channels, self.format, self.frames = int(channels), format, 0
        self._width = 4 if format == "float32" else 2
        try:
            self._file = soundfile.SoundFile(self.name, "w", int(sample_rate), self.channels,
                                             "FLOAT" if format == "float32" else "PCM_16", format="WAV")
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot write {self.name!r}: {exc}") from exc
        _without_peak_chunk(self._file)

    def write(self, audio: torch.Tensor) -> None:
        """Append ``audio`` ``[channels, samples]`` (finite floats).

        Raises:
            AudioFileError: another channel count, NaN or Inf, or a write error.
        """
        import soundfile

        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise AudioFileError(f"{self.name!r}: a block of shape {list(audio.shape)}; expected "
                                 f"[{self.channels}, samples]")
        if not bool(torch.isfinite(audio).all()):
            raise AudioFileError(f"{self.name!r}: the audio to write holds NaN or Inf; a WAV file holds finite samples")
        data = audio.detach().to("cpu", torch.float32).numpy().T
        if self.format == "int16":  # converted here: libsndfile would wrap values beyond full scale
            data = np.round(np.clip(data, -1.0, 1.0) * 32767.0).astype(np.int16)
        if self.frames + data.shape[0] > (2**32 - 64) // (self.channels * self._width):
            raise AudioFileError(f"{self.name!r}: a WAV file holds at most 4 GiB of data")
        try:
            self._file.write(np.ascontiguousarray(data))
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot write {self.name!r}: {exc}") from exc
        self.frames += data.shape[0]

    def close(self) -> None:
        """Finish the header and close the file."""
        self._file.close()

    def __enter__(self) -> AudioBlockWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _without_peak_chunk(file: Any) -> None:
    """Leave out libsndfile's PEAK chunk of float WAVs: it holds the time of writing, so two renders of the
    same audio would differ in their bytes. (soundfile exposes no call for it; skipped where that changes.)"""
    import soundfile

    set_add_peak_chunk = 0x1050  # SFC_SET_ADD_PEAK_CHUNK in sndfile.h
    try:
        soundfile._snd.sf_command(file._file, set_add_peak_chunk, soundfile._ffi.NULL, 0)
    except AttributeError:
        pass


def read_source_blocks(readers: Sequence[AudioBlockReader], block_size: int,
                       pad: bool = False) -> Iterator[torch.Tensor]:
    """Blocks of several files read side by side, as a graph's sources.

    Args:
        readers: one open reader per ``"in"`` node, in node-id order.
        block_size: frames per block (the last block may be shorter).
        pad: zero-pad shorter files to the longest instead of raising.

    Yields:
        float32 ``[len(readers), channels, frames]`` blocks.

    Raises:
        AudioFileError: the files differ in sample rate or channel count, or
            in length without ``pad`` (checked before the first block).
    """
    names = [os.path.basename(r.name) for r in readers]
    for what, values, hint in (("sample rates", [f"{r.sample_rate} Hz" for r in readers],
                                "resample them to one rate first"),
                               ("channel counts", [r.channels for r in readers],
                                "convert them to one channel count first (e.g. duplicate mono files to stereo)")):
        if len(set(values)) > 1:
            listed = ", ".join(f"{n}: {v}" for n, v in zip(names, values))
            raise AudioFileError(f"the sources have different {what} ({listed}); {hint}")
    lengths = [r.frames for r in readers]
    if len(set(lengths)) > 1 and not pad:
        listed = ", ".join(f"{n}: {v}" for n, v in zip(names, lengths))
        raise AudioFileError(f"the sources have different lengths in samples ({listed}); "
                             "trim them to one length, or zero-pad them to the longest (--pad)")
    total = max(lengths)
    for start in range(0, total, block_size):
        length = min(block_size, total - start)
        pieces = [r.read(length) for r in readers]
        yield torch.stack([torch.nn.functional.pad(p, (0, length - p.shape[1])) for p in pieces])


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
    from ._riff import _header_problem

    problem = _header_problem(name)
    if problem is not None:
        return f"{name!r} is not a readable WAV file: {problem}"
    if extension.upper() in formats or extension in ("wav", "wave", "oga", "opus", "aif", "aiff"):
        return (f"{name!r} is not a readable {extension.upper()} file: it looks damaged or cut short "
                f"(libsndfile: {reason}); export it again, or {_CONVERT.replace('xyz', extension)}")
    return (f"{name!r} is not an audio file this installation reads (libsndfile: {reason}); it reads "
            f"{', '.join(formats)}: {_CONVERT.replace('xyz', extension or 'file')}")


def _require_complete_wav(name: str, channels: int, subtype: str) -> None:
    from ._riff import _require_complete_data

    with open(name, "rb") as f:
        riff = f.read(4) in (b"RIFF", b"RIFX")
    if riff:
        itemsize = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                    "ULAW": 1, "ALAW": 1}.get(subtype, 1)
        # An empty array whose item size and channel count are the file's: what the check measures frames in.
        _require_complete_data(name, np.empty((0, channels), dtype=np.dtype(f"V{itemsize}")))
