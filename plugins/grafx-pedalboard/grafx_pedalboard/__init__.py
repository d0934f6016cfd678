"""grafx-pedalboard: Spotify's pedalboard effects as black-box grafx-core processors.

Every built-in effect with numeric controls is a processor (registered as
``pedalboard:compressor``, ``pedalboard:reverb``, ...), a whole
``pedalboard.Pedalboard`` can be one node (:func:`pedalboard_chain`), and so
can a VST3/AU plug-in (:func:`external_processor`). Items run on a thread
pool with one effect instance per thread and ``reset=True`` on every call;
gradients come from finite differences or SPSA (chosen per effect from the
number of differentiable controls, :mod:`grafx_pedalboard.estimator`).
"""

from importlib.metadata import PackageNotFoundError, version

from .chain import pedalboard_chain
from .effects import EFFECTS, Effect, effect_names, get_effect
from .errors import EffectOptionError, PedalboardError, PluginParameterError
from .estimator import FD_MAX_PARAMETERS, default_estimator_name
from .external import ExternalParameter, external_processor, read_parameters
from .probe import ControlProbe, probe_controls
from .processor import effect_specs, pedalboard_processor

try:
    __version__ = version("grafx-pedalboard")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "pedalboard_processor",
    "pedalboard_chain",
    "external_processor",
    "effect_specs",
    "EFFECTS",
    "Effect",
    "effect_names",
    "get_effect",
    "FD_MAX_PARAMETERS",
    "default_estimator_name",
    "ExternalParameter",
    "read_parameters",
    "probe_controls",
    "ControlProbe",
    "PedalboardError",
    "EffectOptionError",
    "PluginParameterError",
]
