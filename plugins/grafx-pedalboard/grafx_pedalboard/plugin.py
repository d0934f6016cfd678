"""The hook implementations grafx-core finds through the ``grafx_core`` entry point.

Every effect of :data:`~grafx_pedalboard.effects.EFFECTS` is registered as
``pedalboard:<name>`` (``pedalboard:compressor``); ``pedalboard:chain`` takes a
whole board (``board=``) and ``pedalboard:external`` a VST3/AU plug-in
(``path=``, in a folder allowed by :func:`grafx_core.allow_plugin_folders` or
``--allow-plugins``). Options go to the factories::

    from grafx_core import get_processor
    comp = get_processor("pedalboard:compressor", sample_rate=48000)
    verb = get_processor("pedalboard:reverb", estimator="finite-difference")
"""

from __future__ import annotations

from functools import partial

import pedalboard

from grafx_core import ProcessorSpec, hookimpl

from .chain import pedalboard_chain
from .effects import EFFECTS
from .estimator import default_estimator_name
from .external import registered_external_processor
from .processor import effect_specs, pedalboard_processor

__all__ = ["grafx_register_processors"]


@hookimpl
def grafx_register_processors() -> list[ProcessorSpec]:
    """One processor per built-in effect this pedalboard has, plus ``chain`` and ``external``."""
    specs = []
    for name, effect in EFFECTS.items():
        if not hasattr(pedalboard, effect.class_name):
            continue  # an older pedalboard without this effect
        kind = default_estimator_name(effect_specs(effect))
        if kind == "straight-through" and effect.signal_gradient == "none":
            kind = "none"  # no differentiable control and a stopped signal: see settle_gradient_kind
        specs.append(ProcessorSpec(name, partial(pedalboard_processor, name), f"pedalboard.{effect.class_name}: "
                                   f"{effect.description}", gradient=kind,
                                   signal_gradient=effect.signal_gradient))
    specs.append(ProcessorSpec("chain", pedalboard_chain, "A whole pedalboard.Pedalboard as one node (board=...)",
                               gradient="spsa"))
    specs.append(ProcessorSpec("external", registered_external_processor,
                               "A VST3/AU plug-in via pedalboard.load_plugin (path=...; its folder allowed with "
                               "--allow-plugins or grafx_core.allow_plugin_folders)",
                               gradient="finite-difference"))
    return specs
