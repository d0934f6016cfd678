"""The folder a fit writes into: no silent overwrite, no stale files, and the command that reproduces its mix.

A results folder holds a manifest (``.grafx-results.json``) listing what
the run wrote. Reusing a folder that holds earlier results needs
``force=True``, which first removes exactly the files that manifest lists,
so nothing stale from the earlier run survives next to the new results.
A folder holding other files is refused, and so is any run that would
write over one of its own inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import GrafxError

__all__ = ["OutputFolderError", "ResultsFolder", "render_command", "cli_executable", "same_file"]

MANIFEST = ".grafx-results.json"


class OutputFolderError(GrafxError):
    """An output folder or file would overwrite inputs or earlier results."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether paths ``a`` and ``b`` name one file (the same path, or links to one file)."""
    return os.path.abspath(a) == os.path.abspath(b) or (
        os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))


class ResultsFolder:
    """An output folder claimed for one run.

    Args:
        path: the folder (created if missing).
        force: replace the results of an earlier run there.
        inputs: files the run reads; none may lie where it writes.
        option: how the command line calls the folder, for messages (e.g. ``"--output"``).

    Raises:
        OutputFolderError: the folder holds earlier results and ``force`` is
            false, holds files that are not results of a run, is a file, or
            contains one of ``inputs`` among the files it will hold.
    """

    def __init__(self, path: str | os.PathLike[str], force: bool = False,
                 inputs: Sequence[str | os.PathLike[str]] = (), option: str = "--output") -> None:
        self.path = Path(path)
        self._inputs = [os.fspath(p) for p in inputs]
        self._written: list[str] = []
        if self.path.exists() and not self.path.is_dir():
            raise OutputFolderError(f"{option} {os.fspath(self.path)!r} is a file, not a folder: choose a folder")
        for name in self._inputs:
            if os.path.abspath(name).startswith(os.path.abspath(self.path) + os.sep):
                raise OutputFolderError(
                    f"input {name!r} lies inside the output folder {os.fspath(self.path)!r}, where it could be "
                    f"overwritten: choose another {option}")
        earlier = self._earlier_results()
        if self.path.is_dir() and any(self.path.iterdir()):
            if earlier is None:
                raise OutputFolderError(
                    f"{option} {os.fspath(self.path)!r} exists and holds files that are not grafx-core results: "
                    f"choose a new or empty folder")
            if not force:
                raise OutputFolderError(
                    f"{option} {os.fspath(self.path)!r} holds the results of an earlier run: pass --force to "
                    f"replace them, or choose another {option}")
            self._remove(earlier)
        self.path.mkdir(parents=True, exist_ok=True)
        self._save_manifest()

    def _earlier_results(self) -> list[str] | None:
        try:
            with open(self.path / MANIFEST, encoding="utf-8") as f:
                listed = json.load(f)["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return [name for name in listed if isinstance(name, str)]

    def _remove(self, names: Iterable[str]) -> None:
        root = os.path.abspath(self.path)
        for name in names:
            target = os.path.abspath(os.path.join(root, name))
            if target.startswith(root + os.sep) and os.path.isfile(target):
                os.remove(target)
        for folder in sorted({os.path.dirname(n) for n in names if os.path.dirname(n)}, reverse=True):
            with contextlib.suppress(OSError):  # kept when something else lives there
                os.rmdir(os.path.join(root, folder))

    def file(self, name: str) -> str:
        """The path of result ``name`` (e.g. ``"fitted.wav"``, ``"sources/00_kick.wav"``), recorded in the manifest."""
        path = self.path / name
        for source in self._inputs:
            if same_file(path, source):
                raise OutputFolderError(f"writing {os.fspath(path)!r} would overwrite an input: choose another output")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name not in self._written:
            self._written.append(name)
            self._save_manifest()
        return os.fspath(path)

    def _save_manifest(self) -> None:
        with open(self.path / MANIFEST, "w", encoding="utf-8") as f:
            json.dump({"files": self._written}, f, indent=1)


def cli_executable() -> list[str]:
    """The words that run this installation's ``grafx-core``: the script next to the running
    Python when there is one (a virtual environment's ``bin/``), else ``python -m grafx_core``."""
    script = os.path.join(os.path.dirname(sys.executable), "grafx-core")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [_display(script)]
    return [_display(sys.executable), "-m", "grafx_core"]


def _display(path: str | os.PathLike[str]) -> str:
    """A path relative to the working folder when it lies below it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith(os.pardir) else relative


def render_command(graph: str, sources: Sequence[str], parameters: str, options: str, output: str,
                   threads: int) -> str:
    """The ``grafx-core render`` command line (shell-quoted) that renders ``graph`` with these files into
    ``output`` on ``threads`` torch threads; with ``--force``, so that it runs again as printed, replacing
    only ``output``."""
    words = [*cli_executable(), "render", _display(graph), *[w for s in sources for w in ("-s", _display(s))],
             "-p", _display(parameters), "--options", _display(options), "-o", _display(output),
             "--threads", str(threads), "--force"]
    return shlex.join(words)
