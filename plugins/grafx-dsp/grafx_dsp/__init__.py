"""grafx-dsp: analytic (autograd) processors for grafx-core, batched over nodes.

Every processor takes ``[nodes, channels, samples]`` signals and parameters in
natural units with a leading node dimension; see :mod:`grafx_dsp._ranges` for
the convention on out-of-range values and ``default_parameters()`` for the
defaults. The registered names are listed in :data:`grafx_dsp.plugin.PROCESSORS`.
"""

from importlib.metadata import PackageNotFoundError, version

from ._base import DSPProcessor, default_parameters
from ._ranges import Range, soft_limit
from .ardour_comp import A_COMP_PORTS, AComp, a_comp_gain_db
from .ardour_eq import A_EQ_PORTS, AEq, a_eq_coefficients
from .ardour_fader import FADER_MAX_DB, ArdourFader, ardour_balance_gains, ardour_fader, ardour_pan_gains
from .ballistics import ballistics, one_pole, peak_release
from .biquad import FILTER_TYPES, Biquad, biquad, biquad_coefficients, sos_filter
from .containers import Chain, DryWet, ParallelMix
from .crossover import Crossover, linkwitz_riley
from .delay import Delay, MultitapDelay, feedback_delay, multitap_impulse_response
from .distortion import ChebyshevWaveshaper, Distortion, chebyshev_waveshaper, distortion
from .dynamics import Compressor, NoiseGate, SidechainCompressor, compressor, noise_gate
from .eq import FIREQ, ParametricEQ, fir_eq, fir_eq_kernel
from .errors import ChannelCountError, DSPError, SignalShapeError
from .fft import fft_convolve
from .filters import (
    AllPass,
    GraphicEQ,
    StateVariableFilter,
    allpass_coefficients,
    graphic_eq_bands,
    state_variable_coefficients,
)
from .gain import Gain, StereoGain, gain, pan_gains, stereo_gain
from .impulse_response import ImpulseResponse
from .reverb import NoiseReverb, STFTMaskedNoiseReverb
from .sox_compand import SoxCompand, sox_compand_gain_db, sox_transfer_db
from .stereo import (
    MidSideToStereo,
    MonoToStereo,
    StereoToMidSide,
    StereoWidth,
    from_mid_side,
    stereo_width,
    to_mid_side,
)

try:
    __version__ = version("grafx-dsp")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    # base and conventions
    "DSPProcessor",
    "Range",
    "soft_limit",
    "default_parameters",
    "DSPError",
    "SignalShapeError",
    "ChannelCountError",
    # gain and routing
    "Gain",
    "StereoGain",
    "StereoWidth",
    "MonoToStereo",
    "StereoToMidSide",
    "MidSideToStereo",
    "gain",
    "pan_gains",
    "stereo_gain",
    "stereo_width",
    "to_mid_side",
    "from_mid_side",
    # filters and EQ
    "FILTER_TYPES",
    "Biquad",
    "ParametricEQ",
    "FIREQ",
    "Crossover",
    "GraphicEQ",
    "StateVariableFilter",
    "AllPass",
    "graphic_eq_bands",
    "state_variable_coefficients",
    "allpass_coefficients",
    "biquad",
    "biquad_coefficients",
    "sos_filter",
    "fir_eq",
    "fir_eq_kernel",
    "linkwitz_riley",
    "fft_convolve",
    # dynamics
    "Compressor",
    "SidechainCompressor",
    "NoiseGate",
    "compressor",
    "noise_gate",
    "ballistics",
    "one_pole",
    "peak_release",
    # time and space
    "Delay",
    "MultitapDelay",
    "NoiseReverb",
    "STFTMaskedNoiseReverb",
    "feedback_delay",
    "multitap_impulse_response",
    # colour
    "Distortion",
    "ChebyshevWaveshaper",
    "distortion",
    "chebyshev_waveshaper",
    # containers
    "DryWet",
    "Chain",
    "ParallelMix",
    # twins of Ardour's mixer and plug-ins
    "AEq",
    "AComp",
    "SoxCompand",
    "sox_compand_gain_db",
    "sox_transfer_db",
    "ImpulseResponse",
    "ArdourFader",
    "a_eq_coefficients",
    "a_comp_gain_db",
    "ardour_fader",
    "ardour_pan_gains",
    "ardour_balance_gains",
    "A_EQ_PORTS",
    "A_COMP_PORTS",
    "FADER_MAX_DB",
]
