"""A minimal grafx-core plugin: the processors of the plugin tutorial."""

from .processors import Crossfade, MidSide, SoftClip

__all__ = ["SoftClip", "Crossfade", "MidSide"]
