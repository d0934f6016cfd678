"""Finding and running Ardour's command-line programs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from .errors import ArdourNotFoundError, ArdourRunError

__all__ = ["LUA_TOOL", "EXPORT_TOOL", "INSTALL_HINT", "find_tool", "ardour_available", "run_tool"]

LUA_TOOL = "ardour7-lua"
EXPORT_TOOL = "ardour7-export"
INSTALL_HINT = "apt-get install --no-install-recommends ardour ardour-lv2-plugins"
"""How to install what the export needs (Debian 12 ships Ardour 7.3)."""


def find_tool(name: str) -> str:
    """The path of Ardour program ``name``.

    Raises:
        ArdourNotFoundError: it is not on ``PATH``; the message says how to install it.
    """
    path = shutil.which(name)
    if path is None:
        raise ArdourNotFoundError(f"{name} not found: Ardour 7 is not installed (install it with `{INSTALL_HINT}`)")
    return path


def ardour_available() -> bool:
    """Whether both programs the export and its proof need are installed."""
    return all(shutil.which(name) for name in (LUA_TOOL, EXPORT_TOOL))


_SIGNAL_STATUSES = frozenset(128 + signal for signal in (6, 11))
"""Exit statuses of a shell whose child died of SIGABRT or SIGSEGV."""


def run_tool(name: str, args: Sequence[str], timeout: float = 300.0, cwd: str | None = None,
             attempts: int = 1, before_rerun: Callable[[], None] | None = None) -> str:
    """Run Ardour program ``name`` with ``args`` headless; return its output.

    Args:
        name, args: the program and its arguments.
        timeout: seconds per attempt.
        cwd: its working folder.
        attempts: how often to run it while it dies of a signal (Ardour 7.3's tools sometimes abort in
            ``free()`` or crash; a rerun works).
        before_rerun: called before each rerun, to clear what the crashed run left.

    Raises:
        ArdourNotFoundError: the program is not installed.
        ArdourRunError: it failed, timed out, or printed a Lua error.
    """
    command = [find_tool(name), *args]
    # Ardour reads its configuration from $HOME; a missing or read-only one must not stop a headless run.
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    for attempt in range(max(1, attempts)):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ArdourRunError(f"{name} did not finish within {timeout:g} s") from exc
        # A signal shows as a negative status, or as 128 + signal where a shell in between did not exec.
        if not (done.returncode < 0 or done.returncode in _SIGNAL_STATUSES):
            break
        if before_rerun is not None and attempt + 1 < attempts:
            before_rerun()
    output = done.stdout + done.stderr
    failed = done.returncode != 0 or any(line.startswith("Error:") for line in output.splitlines())
    if failed:
        tail = "\n".join(output.strip().splitlines()[-8:])
        raise ArdourRunError(f"{name} failed (exit status {done.returncode}):\n{tail}")
    return output
