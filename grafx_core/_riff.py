"""RIFF chunk checks shared by the WAV reader and the audio-file reader (private)."""

from __future__ import annotations

import os
import struct

import numpy as np

from .errors import AudioFileError

__all__ = ["_require_complete_data"]


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
