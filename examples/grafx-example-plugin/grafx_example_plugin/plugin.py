"""The hook implementations grafx-core finds through the ``grafx_core`` entry point."""

from __future__ import annotations

from grafx_core import ProcessorSpec, hookimpl

from .processors import Crossfade, MidSide, SoftClip


@hookimpl
def grafx_register_processors() -> list[ProcessorSpec]:
    """The example processors, all differentiated by autograd."""
    return [
        ProcessorSpec("soft_clip", SoftClip, "tanh saturation with a drive in dB"),
        ProcessorSpec("crossfade", Crossfade, "Weighted mix of two inlets, 'a' and 'b'"),
        ProcessorSpec("mid_side", MidSide, "Split a stereo signal into mid and side outlets"),
    ]
