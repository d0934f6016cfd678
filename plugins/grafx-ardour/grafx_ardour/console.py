"""``--console ardour``: a console that is Ardour's own mixer, built of grafx-dsp's twins.

Per track (every stem is a stereo track): a-comp, then a-eq, before the
fader; the fader and Ardour's -3 dB panner; a post-fader aux send to a
parallel-compression bus. Drum tracks (:func:`grafx_core.fitting.console.is_drum`)
feed a drum bus, the others a music bus, each with an a-comp and a fader
and panner; the parallel bus has an a-comp (hard settings to start) and
its fader. Buses meet on the master: a-eq, a-comp, the master fader. Each
twin maps one to one to the real plug-in or control the export writes,
so the fitted mix is what Ardour plays.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafx_core import Graph
from grafx_core.fitting.console import Console, is_drum

__all__ = ["build_ardour_console", "START"]

START: dict[str, dict[str, float]] = {
    "dsp:a_comp": {"threshold_db": -20.0, "ratio": 3.0, "knee_db": 3.0, "attack_ms": 10.0, "release_ms": 100.0},
    # A send starts low, so that the parallel bus adds to the mix rather than doubling it.
    "dsp:ardour_send": {"gain_db": -20.0},
}
"""Start values that replace twin defaults (a gentle compressor, sends at -20 dB)."""


def _chain(graph: Graph, source: int, *nodes: tuple[str, str]) -> int:
    for node_type, name in nodes:
        node = graph.add(node_type, name)
        graph.connect(source, node)
        source = node
    return source


def build_ardour_console(track_names: Sequence[str]) -> Console:
    """The Ardour mixer for ``track_names`` (see the module docstring).

    Raises:
        ValueError: no tracks, or a track named like a bus or the master.
    """
    if not track_names:
        raise ValueError("a console needs at least one track")
    reserved = {"master", "drum_bus", "music_bus", "parallel_bus"} & {n.lower() for n in track_names}
    if reserved:
        raise ValueError(f"track name(s) {sorted(reserved)} are the Ardour console's bus names: rename the stems")
    g = Graph()
    drum = [is_drum(name) for name in track_names]
    drums = g.add("mix", "drum_bus") if any(drum) else None
    music = g.add("mix", "music_bus") if not all(drum) else None
    parallel = g.add("mix", "parallel_bus")
    master = g.add("mix", "master")
    for name, on_drums in zip(track_names, drum):
        end = _chain(g, g.add("in", name), ("dsp:a_comp", f"{name}_comp"), ("dsp:a_eq", f"{name}_eq"),
                     ("dsp:ardour_fader", f"{name}_fader"))
        g.connect(end, drums if on_drums else music)
        g.connect(_chain(g, end, ("dsp:ardour_send", f"{name}_send")), parallel)
    for bus, label in ((drums, "drum_bus"), (music, "music_bus"), (parallel, "parallel_bus")):
        if bus is not None:
            g.connect(_chain(g, bus, ("dsp:a_comp", f"{label}_comp"), ("dsp:ardour_fader", f"{label}_fader")),
                      master)
    end = _chain(g, master, ("dsp:a_eq", "master_eq"), ("dsp:a_comp", "master_comp"),
                 ("dsp:ardour_gain", "master_fader"))
    g.connect(end, g.add("out", "mix"))
    return Console(g, {}, {t: dict(v) for t, v in START.items()})
