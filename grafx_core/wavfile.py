"""WAV files in and out of ``[channels, samples]`` tensors.

:func:`read_wav` is :func:`~grafx_core.audiofile.read_audio` (libsndfile):
integer WAVs are scaled to ``[-1, 1)`` by their full scale, 8-bit unsigned
around 128, float WAVs read as they are, everything as float32. :func:`write_wav`
writes plain RIFF WAVs (scipy: a format chunk and the data, no time-stamped
chunks, so that one audio gives one file's bytes), and a float32 file it wrote
reads back bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from .errors import AudioFileError

__all__ = ["AudioFileError", "WAV_FORMATS", "read_wav", "write_wav", "read_sources"]

WAV_FORMATS = ("float32", "int16")
"""Sample formats :func:`write_wav` writes: 32-bit IEEE float (exact) or 16-bit PCM."""


def read_wav(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Read a WAV file (or any file :func:`~grafx_core.audiofile.read_audio` reads: it is that reader).

    Args:
        path: the file.

    Returns:
        ``(audio, sample_rate)``: ``audio`` is a float32 ``[channels, samples]``
        tensor on the CPU, ``sample_rate`` in Hz.

    Raises:
        AudioFileError: the file is missing, a folder, not a readable audio file (cut
            inside its header, say), has sample rate 0, or holds less data than its
            header declares.
    """
    from .audiofile import read_audio  # soundfile loads libsndfile: only when a file is read

    return read_audio(path)


def write_wav(path: str | os.PathLike[str], audio: torch.Tensor | np.ndarray, sample_rate: int,
              format: Literal["float32", "int16"] = "float32") -> None:
    """Write ``audio`` as a WAV file.

    Args:
        path: the file to write (overwritten).
        audio: ``[channels, samples]`` or ``[samples]``, a tensor (any device)
            or numpy array of any real floating-point dtype.
        sample_rate: in Hz.
        format: ``"float32"`` (lossless for float32 audio, values above 1 kept)
            or ``"int16"`` (16-bit PCM; values are clipped to ``[-1, 1]``).

    Raises:
        AudioFileError: a bad shape, format or sample rate, NaN or Inf
            samples, or the file cannot be written.
    """
    from scipy.io import wavfile

    name = os.fspath(path)
    if format not in WAV_FORMATS:
        raise AudioFileError(f"{name!r}: WAV format {format!r} is not one of {WAV_FORMATS}")
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if not isinstance(audio, torch.Tensor) or not audio.is_floating_point():
        what = f"{audio.dtype} samples" if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise AudioFileError(f"{name!r}: audio to write must be a real floating-point tensor or numpy array, "
                             f"got {what}")
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise AudioFileError(f"{name!r}: audio to write must be [channels, samples], got {list(audio.shape)}")
    if not isinstance(sample_rate, (int, float)) or isinstance(sample_rate, bool) or not 1 <= sample_rate < 2**32:
        raise AudioFileError(f"{name!r}: sample rate must be a positive number of Hz, got {sample_rate!r}")
    if not bool(torch.isfinite(audio).all()):
        raise AudioFileError(f"{name!r}: the audio to write holds NaN or Inf; a WAV file holds finite samples")
    data = audio.detach().to("cpu", torch.float32).numpy().T
    if format == "int16":
        data = np.round(np.clip(data, -1.0, 1.0) * 32767.0).astype(np.int16)
    try:
        wavfile.write(name, int(sample_rate), np.ascontiguousarray(data))
    except OSError as exc:
        raise AudioFileError(f"cannot write {name!r}: {exc}") from exc


def _describe(paths: Sequence[str], values: Sequence[object]) -> str:
    return ", ".join(f"{os.path.basename(p)}: {v}" for p, v in zip(paths, values))


def read_sources(paths: Sequence[str | os.PathLike[str]], pad: bool = False) -> tuple[torch.Tensor, int]:
    """Read several audio files (WAV, FLAC, ...: :func:`~grafx_core.audiofile.read_audio`) as the sources
    of a graph, in the order given.

    Args:
        paths: one file per ``"in"`` node, in node-id order.
        pad: zero-pad shorter files to the longest instead of raising.

    Returns:
        ``(sources, sample_rate)``: ``sources`` is float32 ``[len(paths),
        channels, samples]``.

    Raises:
        AudioFileError: no paths; a file cannot be read; the files differ in
            sample rate or channel count, or in length without ``pad``.
    """
    names = [os.fspath(p) for p in paths]
    if not names:
        raise AudioFileError("no source files given")
    from .audiofile import read_audio  # soundfile loads libsndfile: only when sources are read

    audios, rates = zip(*(read_audio(name) for name in names))
    if len(set(rates)) > 1:
        raise AudioFileError(
            f"the sources have different sample rates ({_describe(names, [f'{r} Hz' for r in rates])}); "
            "resample them to one rate first"
        )
    channels = [a.shape[0] for a in audios]
    if len(set(channels)) > 1:
        raise AudioFileError(
            f"the sources have different channel counts ({_describe(names, channels)}); "
            "convert them to one channel count first (e.g. duplicate mono files to stereo)"
        )
    lengths = [a.shape[1] for a in audios]
    if len(set(lengths)) > 1:
        if not pad:
            raise AudioFileError(
                f"the sources have different lengths in samples ({_describe(names, lengths)}); "
                "trim them to one length, or zero-pad them to the longest (--pad)"
            )
        longest = max(lengths)
        audios = tuple(torch.nn.functional.pad(a, (0, longest - a.shape[1])) for a in audios)
    return torch.stack(audios), int(rates[0])
