"""The ``grafx-core`` console script: Ctrl-C while the library loads exits quietly.

Importing :mod:`grafx_core` loads torch and the plugins, which takes seconds;
a ``KeyboardInterrupt`` raised then would print an import traceback, since
:func:`grafx_core.cli.main` (which turns Ctrl-C into one line and exit status
130) is not running yet. This module lives outside the package, so nothing
is imported before the ``try``.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

INTERRUPTED = 130  # 128 + SIGINT, as shells report it; grafx_core.fitting.INTERRUPTED once loaded


def main() -> int:
    """Load :mod:`grafx_core.cli` and run it; Ctrl-C during loading prints one line and returns 130."""
    try:
        from grafx_core.cli import main as run
    except KeyboardInterrupt:
        print("grafx-core: interrupted while starting", file=sys.stderr)
        return INTERRUPTED
    return run()


if __name__ == "__main__":
    raise SystemExit(main())
