"""Write a fit's results folder as an Ardour 7 session, and render a session with Ardour.

:func:`export_session` reads what ``grafx-core fit`` wrote (``graph.json``,
``options.json``, ``fitted.params.json`` and ``sources/*.wav``), plans the
strips (:mod:`grafx_ardour.plan`), builds them with ``ardour7-lua``
(:mod:`grafx_ardour.lua`), copies the stems into the session and adds the
regions, range and panners (:mod:`grafx_ardour.sessionfile`).
:func:`render_session` plays the session's range through its master bus
with ``ardour7-export`` into a 32-bit float WAV.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from grafx_core import Graph, load_parameters, processors_for_graph
from grafx_core.wavfile import read_wav, write_wav

from .errors import ArdourError, SessionExistsError
from .lua import session_script
from .plan import SessionPlan, plan_session
from .sessionfile import TrackAudio, add_audio
from .tools import EXPORT_TOOL, LUA_TOOL, find_tool, run_tool

__all__ = ["export_session", "render_session", "read_fit", "CRASH_ATTEMPTS"]

CRASH_ATTEMPTS = 8
"""Runs of ``ardour7-export`` or ``ardour7-lua`` while it dies of a signal. Ardour 7.3's export aborts in
``free()`` at random under CPU load (measured: 9 of 20 runs of one session with six busy processes on 2 cores,
none of 12 on an idle machine); a crashed run's file can be garbage, a finished run's matches the others to
4.5e-8. At 4 tries a loaded test run still failed now and then (0.45^4, 4 %); at 8, 0.2 %. ``ardour7-lua``
crashes too (SIGSEGV, seen in the plug-in's own tests on an idle machine); the half-written session folder of
a crashed run is removed before it runs again."""


def read_fit(fit_dir: str | os.PathLike[str]) -> tuple[Graph, dict[str, Any], Any, list[Path], int]:
    """The graph, options, fitted parameters, stem files and sample rate of a fit's results folder.

    Raises:
        ArdourError: a file the fit writes is missing.
    """
    folder = Path(fit_dir)
    needed = [folder / name for name in ("graph.json", "options.json", "fitted.params.json")]
    missing = [os.fspath(p) for p in needed if not p.is_file()]
    stems = sorted((folder / "sources").glob("*.wav"))
    if missing or not stems:
        raise ArdourError(f"{os.fspath(folder)!r} is not a fit's results folder: missing "
                          f"{missing or ['sources/*.wav']} (grafx-core fit --output writes them)")
    graph = Graph.load(needed[0])
    with open(needed[1], encoding="utf-8") as f:
        options = json.load(f)
    params = load_parameters(needed[2])
    _, sample_rate = read_wav(stems[0])
    return graph, options, params, stems, sample_rate


def _claim(session_dir: Path, force: bool) -> None:
    if not session_dir.exists():
        return
    if not force:
        raise SessionExistsError(f"session folder {os.fspath(session_dir)!r} exists: choose another or pass "
                                 "--force to replace it")
    if not session_dir.is_dir() or not any(session_dir.glob("*.ardour")):
        raise SessionExistsError(f"{os.fspath(session_dir)!r} exists and is not an Ardour session folder; "
                                 "refusing to replace it even with --force")
    shutil.rmtree(session_dir)


def _write_stems(plan: SessionPlan, stems: list[Path], session_dir: Path, name: str) -> dict[str, TrackAudio]:
    audiofiles = session_dir / "interchange" / name / "audiofiles"
    audiofiles.mkdir(parents=True, exist_ok=True)
    audio = {}
    for strip in plan.strips:
        if strip.kind != "track" or strip.source is None:
            continue
        signal, rate = read_wav(stems[strip.source])
        if signal.shape[0] == 1:
            signal = signal.expand(2, -1)
        files = []
        for channel, side in enumerate(("L", "R")):
            file = audiofiles / f"{strip.name}%{side}.wav"
            write_wav(file, signal[channel], rate)
            files.append(os.fspath(file))
        audio[strip.name] = TrackAudio(tuple(files), int(signal.shape[-1]))
    return audio


def export_session(fit_dir: str | os.PathLike[str], session_dir: str | os.PathLike[str],
                   force: bool = False) -> Path:
    """Write the fit in ``fit_dir`` as an Ardour 7 session in ``session_dir``.

    The session is named after the folder; it holds one stereo track per
    stem (its region at time 0), the buses and the master, each strip's
    plug-ins with the fitted values, its fader, panner and aux sends.

    Args:
        fit_dir: a results folder of ``grafx-core fit`` made with ``--console ardour``.
        session_dir: the new session's folder.
        force: replace an existing Ardour session folder there.

    Returns:
        The session file (``session_dir/NAME.ardour``).

    Raises:
        ArdourNotFoundError: Ardour is not installed (the message says how to install it).
        SessionExistsError: the folder exists and ``force`` is false, or it is not a session.
        UnmappableGraphError: the fitted graph has a node Ardour cannot hold.
        ArdourRunError: ``ardour7-lua`` failed.
    """
    find_tool(LUA_TOOL)
    graph, options, params, stems, sample_rate = read_fit(fit_dir)
    # Every node type of a session is a grafx-dsp twin, and each takes the sample rate.
    processors = processors_for_graph(graph, {t: {**options.get(t, {}), "sample_rate": sample_rate}
                                              for t in graph.processor_types()})
    plan = plan_session(graph, processors, params)
    folder = Path(session_dir).absolute()
    _claim(folder, force)
    name = folder.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grafx-ardour-") as scratch:
        script = Path(scratch) / "session.lua"
        script.write_text(session_script(plan, os.fspath(folder), name, sample_rate), encoding="utf-8")
        # The folder was claimed above: whatever a crashed run left in it is that run's own.
        run_tool(LUA_TOOL, [os.fspath(script)], cwd=scratch, attempts=CRASH_ATTEMPTS,
                 before_rerun=lambda: shutil.rmtree(folder, ignore_errors=True))
    session_file = folder / f"{name}.ardour"
    if not session_file.is_file():
        raise ArdourError(f"{LUA_TOOL} reported success but wrote no {os.fspath(session_file)!r}")
    audio = _write_stems(plan, stems, folder, name)
    panners = {s.name: s.position for s in plan.strips if s.position is not None}
    add_audio(os.fspath(session_file), audio, panners, sample_rate)
    return session_file


def render_session(session_dir: str | os.PathLike[str], output: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Render a session's range through its master with ``ardour7-export`` (32-bit float).

    Returns:
        ``(audio [channels, samples], sample_rate)`` as read back from ``output``.

    Raises:
        ArdourNotFoundError, ArdourRunError: as :func:`~grafx_ardour.tools.run_tool`.
    """
    folder = Path(session_dir).absolute()
    find_tool(EXPORT_TOOL)
    run_tool(EXPORT_TOOL, ["-b", "float", "-o", os.fspath(Path(output).absolute()), os.fspath(folder), folder.name],
             attempts=CRASH_ATTEMPTS)
    return read_wav(output)
