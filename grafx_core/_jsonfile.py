"""Reading and atomically writing files (JSON files too) whose failures become one of grafx-core's own errors."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def read_bytes(path: str | os.PathLike[str], what: str, error: type[Exception]) -> bytes:
    """The whole content of the file at ``path``.

    Args:
        path: the file.
        what: how messages name it (``"checkpoint"``).
        error: the exception class raised when it is missing, a folder or unreadable.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise error(f"{what} {name!r} does not exist") from exc
    except IsADirectoryError as exc:
        raise error(f"{what} {name!r} is a folder, not a file") from exc
    except OSError as exc:
        raise error(f"{what} {name!r} cannot be read: {exc.strerror or exc}") from exc


def read_json(path: str | os.PathLike[str], what: str, error: type[Exception]) -> Any:
    """Parse the JSON file at ``path``.

    Args:
        path: the file.
        what: how messages name it (``"parameter file"``).
        error: the exception class raised when it cannot be read as JSON: it is
            missing, a folder, unreadable, not UTF-8, not JSON, or nested too deeply.
    """
    name = os.fspath(path)
    data = read_bytes(name, what, error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {name!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {name!r} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise error(f"{what} {name!r} is nested too deeply (deeper than Python's recursion limit)") from exc


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes, what: str, error: type[Exception]) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``.

    A reader opening ``path`` meanwhile sees the old content or the new, never
    a truncated file (``os.replace`` is atomic on POSIX and Windows); an
    interrupted write leaves no temporary file behind.

    Raises:
        error: the file cannot be written (the message names it).
    """
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(name)}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise error(f"cannot write {what} {name!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        # mkstemp makes the file private; keep an existing file's mode, else the usual 0o644.
        os.chmod(temporary, os.stat(name).st_mode & 0o777 if os.path.exists(name) else 0o644)
        os.replace(temporary, name)
    except BaseException as exc:
        os.unlink(temporary)
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {name!r}: {exc.strerror or exc}") from exc
        raise


def write_text_atomically(path: str | os.PathLike[str], text: str, what: str, error: type[Exception]) -> None:
    """Write ``text`` as UTF-8 to ``path`` through :func:`write_bytes_atomically`.

    Raises:
        error: the file cannot be written (the message names it).
    """
    write_bytes_atomically(path, text.encode("utf-8"), what, error)
