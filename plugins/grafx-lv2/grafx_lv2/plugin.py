"""The hook implementations grafx-core finds through the ``lv2`` entry point.

Every installed LV2 plug-in with a main audio input and an audio output is
registered as ``lv2:<name>`` (:mod:`grafx_lv2.names`), its URI in the
description; ``lv2:plugin`` takes any plug-in by URI or name (``plugin=``).
Listing reads manifests and a disk cache (:mod:`grafx_lv2.world`); nothing is
instantiated until a processor is made::

    from grafx_core import get_processor
    comp = get_processor("lv2:lsp_compressor_stereo", sample_rate=48000, include=["at", "rt", "cr"])
"""

from __future__ import annotations

from functools import partial

from grafx_core import ProcessorSpec, hookimpl
from grafx_core.estimators.default import default_estimator_name

from .errors import LilvUnavailableError
from .instance import unsupported_features
from .names import plugin_names
from .processor import lv2_processor
from .world import world

__all__ = ["grafx_register_processors"]


@hookimpl
def grafx_register_processors() -> list[ProcessorSpec]:
    """One processor per installed plug-in with audio in and out, plus ``plugin``."""
    specs = [ProcessorSpec("plugin", lv2_processor, "Any installed LV2 plug-in, by URI or name (plugin=...)",
                           gradient="finite-difference")]
    try:
        summaries = world().summaries()
    except LilvUnavailableError:
        return specs  # lv2:plugin then raises the error naming the missing library
    names = {uri: name for name, uri in plugin_names(s.uri for s in summaries).items()}
    for summary in summaries:
        if summary.inputs < 1 or summary.outputs < 1:
            continue
        kind = default_estimator_name(summary.controls)
        name = names[summary.uri]
        missing = unsupported_features(summary.requires)
        note = f" [will not load: needs LV2 {', '.join(missing)}]" if missing else ""
        specs.append(ProcessorSpec(name, partial(lv2_processor, summary.uri),
                                   f"{summary.name} ({summary.uri}){note}", gradient=kind))
    return specs
