"""Registrations that load but would surprise their users: advice, as warnings.

A factory that takes the sample rate under another name than ``sample_rate``
(GRAFX's ``sr``) never gets the sources' rate, and a spec whose ``gradient``
disagrees with the module's ``gradient_kind`` makes ``grafx-core plugins``
list a gradient the processor does not have.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..description import describe
from ._records import ProcessorInfo

__all__ = ["SAMPLE_RATE_ALIASES", "sample_rate_advice", "gradient_advice"]

SAMPLE_RATE_ALIASES = ("sr", "fs", "rate", "samplerate", "sampling_rate", "sample_rate_hz", "sampling_frequency")
"""Factory argument names that look like a sample rate but are not ``sample_rate``."""


def sample_rate_advice(info: ProcessorInfo) -> str | None:
    """A warning message when the factory takes a sample-rate alias and no ``sample_rate``."""
    try:
        parameters = inspect.signature(info.spec.factory).parameters
    except (TypeError, ValueError):  # a builtin or C factory: nothing to read
        return None
    aliases = [name for name in parameters if name.lower() in SAMPLE_RATE_ALIASES]
    if not aliases or "sample_rate" in parameters:
        return None
    return (f"processor {info.name!r} from {info.distribution_label}: its factory takes {aliases[0]!r}, which "
            "looks like a sample rate; grafx-core passes the sources' rate only as 'sample_rate' (the "
            "render command, for instance), so name the argument sample_rate")


def gradient_advice(info: ProcessorInfo, processor: Any) -> str | None:
    """A warning message when the built module's ``gradient_kind`` is not the spec's ``gradient``."""
    try:
        built = describe(processor).gradient_kind
    except (TypeError, ValueError) as error:
        return f"processor {info.name!r} from {info.distribution_label}: {error}"
    if built == info.gradient:
        return None
    return (f"processor {info.name!r} from {info.distribution_label}: its ProcessorSpec declares "
            f"gradient={info.gradient!r}, but the module its factory built has gradient_kind {built!r}; "
            "listings show the spec's, so make them agree")
