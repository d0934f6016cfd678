"""Files of tensors with an integrity header: a damaged, truncated or foreign file is named, never loaded.

A checked file is one header line, a JSON line recording what it holds and
the size and SHA-256 of its payload, then the payload: ``torch.save`` of the
object. Loading reads the whole file, checks the header, the size and the
hash, and only then unpickles the payload with ``weights_only=True`` (tensors
and plain containers only: a pickle that would run code is refused).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from typing import Any

import torch

from ._jsonfile import read_bytes, write_bytes_atomically

MAGIC = b"grafx-core checked file\n"


def save_checked(obj: Any, path: str | os.PathLike[str], kind: str, error: type[Exception]) -> None:
    """Write ``obj`` to ``path`` as a checked file of ``kind``, through a temporary file renamed over it.

    Raises:
        error: the file cannot be written (the message names it).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    header = {"kind": kind, "version": 1, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    write_bytes_atomically(path, MAGIC + json.dumps(header).encode() + b"\n" + payload, f"{kind} file", error)


def _what_it_is(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        return ("a plain torch.save file without grafx-core's integrity header (written by other code, or by an "
                "earlier grafx-core: save it again with this version)")
    if data.lstrip()[:1] in (b"{", b"["):
        return "JSON text"
    if data.startswith(b"RIFF"):
        return "a RIFF (WAV) file"
    return f"not a grafx-core file (it starts with {data[:8]!r})"


def load_checked(path: str | os.PathLike[str], kind: str, what: str, error: type[Exception],
                 map_location: str | torch.device = "cpu") -> Any:
    """The object saved in the checked file ``path`` by :func:`save_checked` with the same ``kind``.

    Args:
        path: the file.
        kind: what it must hold (its header's ``kind``).
        what: how messages name it (``"checkpoint"``).
        error: the exception class raised for every fault.
        map_location: where tensors are loaded.

    Raises:
        error: the file is missing, a folder, unreadable, empty, another kind
            of file, truncated or extended, corrupted (hash mismatch), or its
            payload holds objects ``weights_only`` loading refuses.
    """
    name = os.fspath(path)
    data = read_bytes(name, what, error)
    if not data:
        raise error(f"{what} {name!r} is empty (0 bytes)")
    if not data.startswith(MAGIC):
        raise error(f"{what} {name!r} is {_what_it_is(data)}, not a {kind}")
    line, _, payload = data[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(line)
        size, digest, found = int(header["bytes"]), str(header["sha256"]), str(header["kind"])
    except (ValueError, KeyError, TypeError) as exc:
        raise error(f"{what} {name!r} has a damaged header (the line after the first is not the JSON "
                    f"written with it): the file is corrupted") from exc
    if found != kind:
        raise error(f"{what} {name!r} holds a {found}, not a {kind}")
    if len(payload) != size:
        state = "is truncated" if len(payload) < size else "has bytes appended"
        raise error(f"{what} {name!r} {state}: {len(payload)} bytes of payload, {size} were written")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise error(f"{what} {name!r} is corrupted: its payload's SHA-256 differs from the one recorded when it "
                    "was written (a changed byte)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} {name!r} holds objects that torch's weights_only loading refuses (a pickle that "
                    f"could run code): {reason}") from exc
    except Exception as exc:  # torch.load raises many kinds on a payload that is not its format
        raise error(f"{what} {name!r}: torch.load cannot read its payload ({type(exc).__name__}: {exc})") from exc
