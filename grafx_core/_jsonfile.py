"""Reading a JSON file whose failures become one of grafx-core's own errors."""

from __future__ import annotations

import json
import os
from typing import Any


def read_json(path: str | os.PathLike[str], what: str, error: type[Exception]) -> Any:
    """Parse the JSON file at ``path``.

    Args:
        path: the file.
        what: how messages name it (``"parameter file"``).
        error: the exception class raised when it is missing or not JSON.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise error(f"{what} {name!r} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{what} {name!r} is not valid JSON: {exc}") from exc
