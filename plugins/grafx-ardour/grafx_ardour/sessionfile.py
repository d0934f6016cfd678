"""Edits to a saved Ardour 7 session file: the audio regions, the session range, panners and fades.

Ardour 7.3's Lua cannot import audio files, so the stems are written as the
session's own sources (one mono float WAV per channel, in
``interchange/NAME/audiofiles``) and the session file gets, per track, two
sources, a whole-file region and that region on the track's playlist at
time 0. Times are Ardour 7's audio-time positions (``"a"`` followed by
superclock ticks, 282,240,000 per second; a duration is ``distance@position``). The session range covers the
stems, region and transport fades are switched off (a fit has none), and
each strip's panner gets its azimuth and is pinned to the stereo balance
panner (Ardour's headless tools create no panner, so the Lua script cannot
set it).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import ArdourError

__all__ = ["SUPERCLOCK_RATE", "TrackAudio", "superclock", "add_audio"]

SUPERCLOCK_RATE = 282_240_000
"""Ardour 7's superclock ticks per second."""

_FADE_OPTIONS = ("use-region-fades", "use-transport-fades", "use-monitor-fades")


@dataclass(frozen=True)
class TrackAudio:
    """One track's audio: its channel files (inside the session's audiofiles folder) and length."""

    files: tuple[str, ...]
    samples: int


def superclock(samples: int, sample_rate: int) -> str:
    """``samples`` at ``sample_rate`` as an Ardour 7 audio time (``"a<ticks>"``).

    Raises:
        ArdourError: ``sample_rate`` does not divide the superclock rate (no exact position).
    """
    if SUPERCLOCK_RATE % sample_rate:
        raise ArdourError(f"sample rate {sample_rate} Hz does not divide Ardour's superclock rate "
                          f"{SUPERCLOCK_RATE}: resample the fit to 44100 or 48000 Hz")
    return f"a{samples * (SUPERCLOCK_RATE // sample_rate)}"


class _Ids:
    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.next = int(root.get("id-counter", "1000")) + 1

    def __call__(self) -> str:
        value = self.next
        self.next += 1
        self.root.set("id-counter", str(self.next))
        return str(value)


def _region(ids: _Ids, name: str, sources: Sequence[str], length: str, whole_file: bool) -> ET.Element:
    attrs = {"name": name, "muted": "0", "opaque": "1", "locked": "0", "video-locked": "0", "automatic": "0",
             "whole-file": "1" if whole_file else "0", "import": "0", "external": "0", "hidden": "0",
             "start": "a0", "length": length, "position": "a0", "sync-position": "a0", "ancestral-start": "a0",
             "ancestral-length": "a0@a0", "stretch": "1", "shift": "1", "layering-index": "0",
             "envelope-active": "0", "default-fade-in": "0", "default-fade-out": "0", "fade-in-active": "0",
             "fade-out-active": "0", "scale-amplitude": "1", "id": ids(), "type": "audio",
             "first-edit": "nothing", "channels": str(len(sources))}
    for k, source in enumerate(sources):
        attrs[f"source-{k}"] = source
        attrs[f"master-source-{k}"] = source
    return ET.Element("Region", attrs)


def _child(root: ET.Element, tag: str) -> ET.Element:
    node = root.find(tag)
    if node is None:
        node = ET.SubElement(root, tag)
    return node


_BALANCE = "http://ardour.org/plugin/panner_balance"


def _set_panner(route: ET.Element, position: float) -> None:
    for control in route.iter("Controllable"):
        if control.get("name") == "pan-azimuth":
            control.set("value", repr(float(position)))
    # Pin the stereo balance panner, Ardour 7's default for two channels (priority 25), so that a
    # user's preferred panner cannot change how the session sounds.
    for processor in route.iter("Processor"):
        shell = processor.find("PannerShell")
        if processor.get("type") == "main-outs" and shell is not None:
            shell.set("user-panner", _BALANCE)


def add_audio(session_file: str, audio: Mapping[str, TrackAudio], panners: Mapping[str, float],
              sample_rate: int) -> None:
    """Add the tracks' regions, the session range and the panners to a saved session file.

    Args:
        session_file: the ``NAME.ardour`` file ``ardour7-lua`` saved.
        audio: track name -> its channel files and length.
        panners: strip name -> azimuth (0 left, 1 right).
        sample_rate: the session's rate in Hz.

    Raises:
        ArdourError: a track or its playlist is missing from the file.
    """
    tree = ET.parse(session_file)
    root = tree.getroot()
    ids = _Ids(root)
    config = _child(root, "Config")
    for option in config.iter("Option"):
        if option.get("name") in _FADE_OPTIONS:
            option.set("value", "0")
    routes = {r.get("name"): r for r in root.iter("Route")}
    playlists = {p.get("id"): p for p in _child(root, "Playlists").iter("Playlist")}
    sources_node, regions_node = _child(root, "Sources"), _child(root, "Regions")
    longest = 0
    for track, item in audio.items():
        route = routes.get(track)
        playlist = playlists.get(route.get("audio-playlist")) if route is not None else None
        if route is None or playlist is None:
            raise ArdourError(f"{session_file}: track {track!r} or its playlist is missing")
        source_ids = []
        for channel, file in enumerate(item.files):
            source_id = ids()
            ET.SubElement(sources_node, "Source", {"name": os.path.basename(file), "type": "audio", "flags": "",
                                                   "id": source_id, "captured-for": track, "channel": "0",
                                                   "origin": "", "gain": "1", "take-id": ""})
            source_ids.append(source_id)
        length = f"{superclock(item.samples, sample_rate)}@a0"  # a duration: distance@position
        regions_node.append(_region(ids, track, source_ids, length, whole_file=True))
        playlist.append(_region(ids, f"{track}.1", source_ids, length, whole_file=False))
        longest = max(longest, item.samples)
    locations = _child(root, "Locations")
    ET.SubElement(locations, "Location", {"id": ids(), "name": "session", "start": "a0",
                                          "end": superclock(longest, sample_rate), "flags": "IsSessionRange",
                                          "locked": "0", "timestamp": "0", "cue": "0"})
    for name, position in panners.items():
        route = routes.get("Master" if name == "master" else name)
        if route is not None:
            _set_panner(route, position)
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)
