"""RIFF chunk checks for the audio-file reader (private): what libsndfile does not say of a damaged WAV."""

from __future__ import annotations

import os
import struct

import numpy as np

from .errors import AudioFileError

__all__ = ["_require_complete_data", "_header_problem"]


def _require_complete_data(name: str, data: np.ndarray) -> None:
    """Raise if the header's data chunk is longer than what the file holds.

    scipy reads a file cut at a frame boundary as a shorter signal without a
    word; the RIFF chunk sizes tell how long the data should be.
    """
    with open(name, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] not in (b"RIFF", b"RIFX"):
            return  # scipy read it, so it is a variant (RF64) whose sizes live elsewhere
        order = "<" if header[:4] == b"RIFF" else ">"
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            chunk_id, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if chunk_id == b"data":
                break
            f.seek(size + (size & 1), os.SEEK_CUR)
        available = os.fstat(f.fileno()).st_size - f.tell()
    if size != 0xFFFFFFFF and available < size:
        frame = data.itemsize * (data.shape[1] if data.ndim == 2 else 1)
        raise AudioFileError(
            f"{name!r}: the data is cut short: the header declares {size} bytes ({size // frame} frames) "
            f"but the file holds {available} ({available // frame} frames)"
        )


def _header_problem(name: str) -> str | None:
    """What is wrong with a RIFF WAV's header in a user's words (it ends inside it, sample rate 0), where
    libsndfile only says it cannot open the file; ``None`` for a file that is not RIFF or whose header is fine."""
    with open(name, "rb") as f:
        header = f.read(12)
        if header[:4] not in (b"RIFF", b"RIFX"):
            return None
        order = "<" if header[:4] == b"RIFF" else ">"
        if len(header) < 12:
            return "it ends inside its header"
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return "it ends inside its header"
            chunk_id, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = f.read(size)
                if len(fmt) < 16:
                    return "it ends inside its header"
                rate = struct.unpack(order + "I", fmt[4:8])[0]
                if rate == 0:
                    return "the header gives sample rate 0 Hz; expected a positive rate"
                f.seek(size & 1, os.SEEK_CUR)
                continue
            if chunk_id == b"data":
                return None
            f.seek(size + (size & 1), os.SEEK_CUR)
