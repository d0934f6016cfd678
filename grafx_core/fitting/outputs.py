"""The folder a fit writes into: no silent overwrite, no stale files, and the command that reproduces its mix.

A results folder holds a manifest (``.grafx-results.json``) listing what
the run wrote, with each file's size and SHA-256. Reusing a folder that
holds earlier results needs ``force=True``, which first removes exactly the
files that manifest lists, so nothing stale from the earlier run survives
next to the new results; and only when each is a plain file inside the
folder, unchanged since it was written (a manifest that names anything else
is refused, nothing removed).
A folder holding other files is refused, and so is any run that would
write over one of its own inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._jsonfile import write_text_atomically
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

    The manifest records, for every result, its size and SHA-256 once it is
    written. ``force`` removes an earlier run's results only when every
    file the manifest lists is a plain file inside the folder (no ``..``, no
    absolute path, no symbolic link on the way) whose size and hash still
    match what was recorded: a manifest naming anything else is refused as a
    whole, before anything is removed. A result is never written through a
    symbolic link, nor over a file that the run did not write itself.

    Args:
        path: the folder (created if missing).
        force: replace the results of an earlier run there.
        inputs: files the run reads; none may lie where it writes.
        option: how the command line calls the folder, for messages (e.g. ``"--output"``).

    Raises:
        OutputFolderError: the folder holds earlier results and ``force`` is
            false, holds files that are not results of a run, is a file, or
            contains one of ``inputs`` among the files it will hold; with
            ``force``, its manifest lists a path outside the folder, through a
            link, or a file changed since it was written.
    """

    def __init__(self, path: str | os.PathLike[str], force: bool = False,
                 inputs: Sequence[str | os.PathLike[str]] = (), option: str = "--output") -> None:
        self.path = Path(path)
        self._option = option
        self._inputs = [os.fspath(p) for p in inputs]
        self._written: dict[str, dict[str, Any]] = {}
        if self.path.exists() and not self.path.is_dir():
            raise OutputFolderError(f"{option} {os.fspath(self.path)!r} is a file, not a folder: choose a folder")
        for name in self._inputs:
            if os.path.abspath(name).startswith(os.path.abspath(self.path) + os.sep):
                raise OutputFolderError(
                    f"input {name!r} lies inside the output folder {os.fspath(self.path)!r}, where it could be "
                    f"overwritten: choose another {option}")
        if os.path.islink(self.path / MANIFEST):
            raise OutputFolderError(
                f"{os.fspath(self.path / MANIFEST)!r} is a symbolic link; grafx-core never writes through "
                f"links: remove it, or choose another {option}")
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
            self._remove(self._removable(earlier))
        self.path.mkdir(parents=True, exist_ok=True)
        self._save_manifest()

    def _earlier_results(self) -> dict[str, Any] | None:
        try:
            with open(self.path / MANIFEST, encoding="utf-8") as f:
                listed = json.load(f)["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if isinstance(listed, list):  # written before the manifest recorded sizes and hashes
            return {name: None for name in listed}
        return listed if isinstance(listed, dict) else None

    def _inside(self, name: Any) -> str | None:
        """Why ``name`` is no path inside the folder this project could have written (``None``: it is)."""
        if not isinstance(name, str) or not name or os.path.isabs(name) or "\\" in name:
            return "is not a relative path"
        parts = name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return "leaves the folder or is not a plain relative path"
        for k in range(1, len(parts) + 1):
            if os.path.islink(self.path.joinpath(*parts[:k])):
                return "goes through a symbolic link"
        return None

    def _removable(self, earlier: dict[str, Any]) -> list[str]:
        """The earlier results to remove; refuses the lot when one entry is not verifiably this project's."""
        manifest = os.fspath(self.path / MANIFEST)
        removable = []
        for name, record in earlier.items():
            why = self._inside(name)
            if why is None and not os.path.lexists(self.path / name):
                continue
            if why is None and not (self.path / name).is_file():
                why = "is not a plain file"
            if why is None:
                why = _changed(self.path / name, record)
            if why is not None:
                raise OutputFolderError(
                    f"--force refused: the manifest {manifest!r} lists {name!r}, which {why}; grafx-core removes "
                    f"only files it wrote itself in that folder, so nothing was removed: move the folder's "
                    f"contents away by hand, or choose another {self._option}")
            removable.append(name)
        return removable

    def _remove(self, names: Iterable[str]) -> None:
        for name in names:
            os.remove(self.path / name)
        for folder in sorted({os.path.dirname(n) for n in names if os.path.dirname(n)}, reverse=True):
            with contextlib.suppress(OSError):  # kept when something else lives there
                os.rmdir(self.path / folder)

    def file(self, name: str) -> str:
        """The path of result ``name`` (e.g. ``"fitted.wav"``, ``"sources/00_kick.wav"``), recorded in the manifest.

        Raises:
            OutputFolderError: ``name`` leaves the folder or goes through a link, would overwrite an
                input, or names a file there that this run did not write.
        """
        path = self.path / name
        why = self._inside(name)
        if why is not None:
            raise OutputFolderError(f"result {name!r} {why}: results are written only inside "
                                    f"{os.fspath(self.path)!r}, never through a link")
        for source in self._inputs:
            if same_file(path, source):
                raise OutputFolderError(f"writing {os.fspath(path)!r} would overwrite an input: choose another output")
        if name not in self._written and os.path.lexists(path):
            raise OutputFolderError(
                f"{os.fspath(path)!r} exists and was not written by this run (an earlier run's manifest does not "
                f"list it): move it away, or choose another {self._option}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name not in self._written:
            self._written[name] = {}
        self._save_manifest()
        return os.fspath(path)

    def close(self) -> None:
        """Record the size and hash of every result written so far (also done at each :meth:`file`)."""
        self._save_manifest()

    def __enter__(self) -> ResultsFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _save_manifest(self) -> None:
        for name, record in self._written.items():
            _record(self.path / name, record)
        files = {name: {k: record[k] for k in ("bytes", "sha256") if k in record}
                 for name, record in self._written.items()}
        write_text_atomically(self.path / MANIFEST, json.dumps({"files": files}, indent=1), "manifest",
                              OutputFolderError)


def _record(path: Path, record: dict[str, Any]) -> None:
    """Fill ``record`` with the size and SHA-256 of ``path`` when it changed since last recorded."""
    try:
        stat = path.stat()
    except OSError:
        return
    stamp = (stat.st_size, stat.st_mtime_ns)
    if record.get("stamp") != stamp:
        record.update(stamp=stamp, bytes=stat.st_size, sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _changed(path: Path, record: Any) -> str | None:
    """Why the file at ``path`` is not what the manifest recorded (``None``: it is)."""
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        return "has no recorded size and hash (a run that was killed, or an older manifest)"
    if path.stat().st_size != record.get("bytes") or _sha256(path) != record["sha256"]:
        return "changed since grafx-core wrote it (its size or SHA-256 differs from the manifest's)"
    return None


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
