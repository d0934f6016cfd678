"""Exceptions specific to grafx-dsp processors."""

from __future__ import annotations

from grafx_core import GrafxError, InletChannelError

__all__ = ["DSPError", "SignalShapeError", "ChannelCountError"]


class DSPError(GrafxError):
    """The root of grafx-dsp's errors (a :class:`~grafx_core.GrafxError`)."""


class SignalShapeError(DSPError, ValueError):
    """A processor received signals whose shapes it cannot treat (inlets that
    disagree on nodes or samples, for instance)."""


class ChannelCountError(SignalShapeError, InletChannelError):
    """A processor received a signal with a channel count it cannot treat
    (a stereo-only processor given mono, for instance); an
    :class:`~grafx_core.InletChannelError` too, what the engine raises for
    the same mistake before the call."""
