"""Native code (a VST3, an AU, a shared library) loads only from folders the user allowed.

A graph file and an options file are data that may come from anyone; a
processor option naming a plug-in path would make rendering them run that
plug-in's machine code. So a processor that loads native code from a path
calls :func:`check_plugin_path` first, which refuses any path outside the
folders allowed in this process, by the user: ``--allow-plugins DIR`` on the
command line, or :func:`allow_plugin_folders` in Python. Nothing read from a
file can allow a folder.
"""

from __future__ import annotations

import os
import threading

from .errors import GrafxError

__all__ = ["NativeCodeError", "allow_plugin_folders", "allowed_plugin_folders", "check_plugin_path"]

_lock = threading.Lock()
_allowed: list[str] = []


class NativeCodeError(GrafxError, PermissionError):
    """A processor would load native code from a folder that was not allowed (see :func:`allow_plugin_folders`)."""


def allow_plugin_folders(*folders: str | os.PathLike[str]) -> None:
    """Allow processors to load plug-ins and shared libraries found below ``folders``, in this process.

    Each folder is resolved (links followed) when allowed; a plug-in path is
    allowed when its resolved path lies below one of them.

    Raises:
        NativeCodeError: a folder does not exist or is not a folder.
    """
    resolved = []
    for folder in folders:
        real = os.path.realpath(os.fspath(folder))
        if not os.path.isdir(real):
            raise NativeCodeError(f"cannot allow plug-ins from {os.fspath(folder)!r}: it is not a folder")
        resolved.append(real)
    with _lock:
        _allowed.extend(r for r in resolved if r not in _allowed)


def allowed_plugin_folders() -> tuple[str, ...]:
    """The folders allowed so far (resolved paths), in the order they were allowed."""
    with _lock:
        return tuple(_allowed)


def _forget_allowed_folders() -> None:
    """For tests: allow nothing again."""
    with _lock:
        _allowed.clear()


def check_plugin_path(path: str | os.PathLike[str], who: str) -> str:
    """The resolved ``path`` when it lies below an allowed folder.

    Args:
        path: the plug-in file or bundle about to be loaded.
        who: what would load it, for the message (``"pedalboard:external"``).

    Raises:
        NativeCodeError: ``path`` lies outside every allowed folder (the
            message names it and how to allow its folder).
    """
    real = os.path.realpath(os.fspath(path))
    for folder in allowed_plugin_folders():
        if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
            return real
    folder = os.path.dirname(real) or "."
    raise NativeCodeError(
        f"{who} would load native code from {os.fspath(path)!r}, which lies in no allowed plug-in folder: "
        f"allow it with --allow-plugins {folder} on the command line, or "
        f"grafx_core.allow_plugin_folders({folder!r}) in Python")
