"""Exceptions specific to grafx-dsp processors."""

from __future__ import annotations

from grafx_core import GrafxError

__all__ = ["ChannelCountError"]


class ChannelCountError(GrafxError, ValueError):
    """A processor received a signal with a channel count it cannot treat
    (a stereo-only processor given mono, for instance)."""
