"""Exception classes of grafx-ardour."""

from __future__ import annotations

from grafx_core.errors import GrafxError

__all__ = ["ArdourError", "ArdourNotFoundError", "SessionExistsError", "UnmappableGraphError", "ArdourRunError"]


class ArdourError(GrafxError):
    """Base class of grafx-ardour's errors."""


class ArdourNotFoundError(ArdourError):
    """Ardour's command-line programs (``ardour7-lua``, ``ardour7-export``) are not installed."""


class SessionExistsError(ArdourError):
    """The session folder exists and ``force`` was not given, or it is not an Ardour session."""


class UnmappableGraphError(ArdourError):
    """A fitted graph holds a node that has no Ardour counterpart (the message names it)."""


class ArdourRunError(ArdourError):
    """An Ardour program failed; the message holds the end of its output."""
