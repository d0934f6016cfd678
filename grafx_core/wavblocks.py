"""WAV files read and written block by block, so that memory does not grow with their length.

:class:`WavBlockReader` parses the RIFF header once and reads frames on demand
with the same scaling as :func:`grafx_core.wavfile.read_wav` (the blocks of a
file joined equal ``read_wav`` of it, bit for bit); :class:`WavBlockWriter`
appends blocks and fixes the header's sizes when closed. Both speak plain
RIFF WAV: PCM 8/16/24/32-bit and IEEE float 32/64-bit (and their
``WAVE_FORMAT_EXTENSIBLE`` forms) in; float32 or 16-bit PCM out.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import BinaryIO, Literal

import numpy as np
import torch

from .errors import AudioFileError

__all__ = ["WavBlockReader", "WavBlockWriter", "read_source_blocks"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class WavBlockReader:
    """Frames of a WAV file, read a block at a time.

    Args:
        path: the file.

    Attributes:
        sample_rate: in Hz.
        channels: channel count.
        frames: the file's length in samples per channel.

    Raises:
        AudioFileError: the file is missing, not a RIFF WAV, in a sample
            format this reader does not know, or its data chunk is cut short.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        try:
            self._file: BinaryIO = open(self.name, "rb")
        except FileNotFoundError as exc:
            raise AudioFileError(f"{self.name!r}: no such file") from exc
        except IsADirectoryError as exc:
            raise AudioFileError(f"{self.name!r} is a folder, not a WAV file") from exc
        try:
            self._parse()
        except BaseException:
            self._file.close()
            raise
        self._done = 0

    def _parse(self) -> None:
        f = self._file
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise AudioFileError(f"{self.name!r} is not a RIFF WAV file (block-wise reading needs one)")
        fmt = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise AudioFileError(f"{self.name!r} is not a readable WAV file: it has no data chunk")
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = f.read(size)
                if size & 1:
                    f.seek(1, os.SEEK_CUR)
            elif chunk_id == b"data":
                break
            else:
                f.seek(size + (size & 1), os.SEEK_CUR)
        if fmt is None or len(fmt) < 16:
            raise AudioFileError(f"{self.name!r} is not a readable WAV file: no format chunk before its data")
        tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        width = bits // 8
        if channels < 1 or rate <= 0 or width < 1 or align != channels * width:
            raise AudioFileError(f"{self.name!r}: the format chunk gives {channels} channel(s), {rate} Hz, "
                                 f"{bits} bits; expected positive counts and whole bytes")
        if (tag, bits) not in ((_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)):
            raise AudioFileError(f"{self.name!r}: unsupported WAV sample type (format {tag}, {bits} bits)")
        self._tag, self._width = tag, width
        self.sample_rate, self.channels = int(rate), int(channels)
        self._start = f.tell()
        available = os.fstat(f.fileno()).st_size - self._start
        if size != 0xFFFFFFFF and available < size:
            raise AudioFileError(
                f"{self.name!r}: the data is cut short: the header declares {size} bytes ({size // align} frames) "
                f"but the file holds {available} ({available // align} frames)")
        self.frames = (available if size == 0xFFFFFFFF else size) // align

    def read(self, frames: int) -> torch.Tensor:
        """The next ``frames`` frames (fewer at the end), float32 ``[channels, frames]``."""
        frames = max(0, min(frames, self.frames - self._done))
        raw = self._file.read(frames * self.channels * self._width)
        self._done += frames
        return torch.from_numpy(np.ascontiguousarray(self._decode(raw).reshape(frames, self.channels).T))

    def _decode(self, raw: bytes) -> np.ndarray:
        if self._tag == _FLOAT:
            return np.frombuffer(raw, dtype="<f4" if self._width == 4 else "<f8").astype(np.float32)
        if self._width == 1:
            return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        if self._width == 2:
            return (np.frombuffer(raw, dtype="<i2").astype(np.float64) / 2.0**15).astype(np.float32)
        if self._width == 3:
            triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            value = (triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)  # left-justified, as scipy
            return (value.astype(np.float64) / 2.0**31).astype(np.float32)
        return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0**31).astype(np.float32)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> WavBlockReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class WavBlockWriter:
    """A WAV file written a block at a time; the header's sizes are filled in by :meth:`close`.

    Args:
        path: the file to write (overwritten).
        channels: channel count.
        sample_rate: in Hz.
        format: ``"float32"`` or ``"int16"`` (clipped to ``[-1, 1]``, as
            :func:`grafx_core.wavfile.write_wav`).

    Raises:
        AudioFileError: a bad format, channel count or rate, or the file cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str], channels: int, sample_rate: int,
                 format: Literal["float32", "int16"] = "float32") -> None:
        self.name = os.fspath(path)
        if format not in ("float32", "int16"):
            raise AudioFileError(f"{self.name!r}: WAV format {format!r} is not one of ('float32', 'int16')")
        if channels < 1 or not 1 <= sample_rate < 2**32:
            raise AudioFileError(f"{self.name!r}: cannot write {channels} channel(s) at {sample_rate} Hz")
        self.channels, self.format, self.frames = int(channels), format, 0
        width = 4 if format == "float32" else 2
        try:
            self._file: BinaryIO = open(self.name, "wb")
            self._file.write(b"RIFF" + struct.pack("<I", 0) + b"WAVE")
            self._file.write(b"fmt " + struct.pack("<IHHIIHH", 16, _FLOAT if format == "float32" else _PCM,
                                                   self.channels, int(sample_rate),
                                                   int(sample_rate) * self.channels * width,
                                                   self.channels * width, 8 * width))
            self._file.write(b"data" + struct.pack("<I", 0))
        except OSError as exc:
            raise AudioFileError(f"cannot write {self.name!r}: {exc}") from exc
        self._width = width

    def write(self, audio: torch.Tensor) -> None:
        """Append ``audio`` ``[channels, samples]`` (finite floats).

        Raises:
            AudioFileError: another channel count, NaN or Inf, or a write error.
        """
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise AudioFileError(f"{self.name!r}: a block of shape {list(audio.shape)}; expected "
                                 f"[{self.channels}, samples]")
        if not bool(torch.isfinite(audio).all()):
            raise AudioFileError(f"{self.name!r}: the audio to write holds NaN or Inf; a WAV file holds finite samples")
        data = audio.detach().to("cpu", torch.float32).numpy().T
        if self.format == "int16":
            data = np.round(np.clip(data, -1.0, 1.0) * 32767.0).astype("<i2")
        else:
            data = data.astype("<f4")
        if self.frames + data.shape[0] > (2**32 - 64) // (self.channels * self._width):
            raise AudioFileError(f"{self.name!r}: a WAV file holds at most 4 GiB of data")
        try:
            self._file.write(np.ascontiguousarray(data).tobytes())
        except OSError as exc:
            raise AudioFileError(f"cannot write {self.name!r}: {exc}") from exc
        self.frames += data.shape[0]

    def close(self) -> None:
        """Fill in the header's sizes and close the file."""
        if self._file.closed:
            return
        size = self.frames * self.channels * self._width
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + size))
        self._file.seek(40)
        self._file.write(struct.pack("<I", size))
        self._file.close()

    def __enter__(self) -> WavBlockWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def read_source_blocks(readers: Sequence[WavBlockReader], block_size: int,
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
