"""A minimal Standard MIDI File writer: one track of notes for one instrument (format 0)."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Note", "write_midi"]

TICKS_PER_BEAT = 480


class Note(NamedTuple):
    """A note: start and length in beats, MIDI key (60 = middle C), velocity 1-127."""

    beat: float
    beats: float
    key: int
    velocity: int = 96


def _variable_length(value: int) -> bytes:
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def write_midi(path: str | os.PathLike[str], notes: Sequence[Note], program: int, channel: int = 0,
               bpm: float = 120.0) -> None:
    """Write ``notes`` played by General MIDI ``program`` (0-127) on ``channel`` at ``bpm`` to ``path``.

    Raises:
        ValueError: a key, velocity, program or channel out of MIDI's range, or a negative time.
    """
    if not (0 <= program < 128 and 0 <= channel < 16):
        raise ValueError(f"program must be 0-127 and channel 0-15, got {program}, {channel}")
    events: list[tuple[int, int, bytes]] = []  # (tick, order: offs before ons, message)
    for note in notes:
        if not (0 <= note.key < 128 and 0 < note.velocity < 128 and note.beat >= 0 and note.beats > 0):
            raise ValueError(f"not a playable MIDI note: {note}")
        start = round(note.beat * TICKS_PER_BEAT)
        stop = max(round((note.beat + note.beats) * TICKS_PER_BEAT), start + 1)
        events.append((start, 1, bytes([0x90 | channel, note.key, note.velocity])))
        events.append((stop, 0, bytes([0x80 | channel, note.key, 0])))
    tempo = round(60_000_000 / bpm)
    body = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big") + bytes([0x00, 0xC0 | channel, program])
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        body += _variable_length(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"
    with open(path, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT))
        f.write(b"MTrk" + struct.pack(">I", len(body)) + body)
