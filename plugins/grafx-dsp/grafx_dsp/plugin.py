"""The grafx-core plugin entry point: registers every grafx-dsp processor.

Published as entry point ``dsp`` in group ``grafx_core``, so the processors
are found as ``dsp:gain``, ``dsp:compressor``, and so on.
"""

from __future__ import annotations

from functools import partial

from grafx_core import ProcessorSpec, hookimpl

from .ardour_comp import AComp
from .ardour_eq import AEq
from .ardour_fader import ArdourFader
from .biquad import Biquad
from .containers import Chain, DryWet, ParallelMix
from .crossover import Crossover
from .delay import Delay, MultitapDelay
from .distortion import ChebyshevWaveshaper, Distortion
from .dynamics import Compressor, NoiseGate, SidechainCompressor
from .eq import FIREQ, ParametricEQ
from .filters import AllPass, GraphicEQ, StateVariableFilter
from .gain import Gain, StereoGain
from .impulse_response import ImpulseResponse
from .reverb import NoiseReverb, STFTMaskedNoiseReverb
from .sox_compand import SoxCompand
from .stereo import MidSideToStereo, MonoToStereo, StereoToMidSide, StereoWidth

__all__ = ["PROCESSORS", "grafx_register_processors"]

_BIQUADS = {
    "lowpass": "Low-pass biquad (RBJ): cutoff_hz, q",
    "highpass": "High-pass biquad (RBJ): cutoff_hz, q",
    "bandpass": "Band-pass biquad, 0 dB peak (RBJ): cutoff_hz, q",
    "notch": "Notch biquad (RBJ): cutoff_hz, q",
    "peak": "Peaking EQ biquad (RBJ): cutoff_hz, q, gain_db",
    "low_shelf": "Low-shelf biquad (RBJ): cutoff_hz, q, gain_db",
    "high_shelf": "High-shelf biquad (RBJ): cutoff_hz, q, gain_db",
}

PROCESSORS: tuple[ProcessorSpec, ...] = (
    ProcessorSpec("gain", Gain, "Gain in dB: gain_db"),
    ProcessorSpec("stereo_gain", StereoGain, "Gain and constant-power pan, mono or stereo to stereo: gain_db, pan"),
    ProcessorSpec("stereo_width", StereoWidth, "Mid/side stereo width: width"),
    ProcessorSpec("mono_to_stereo", MonoToStereo, "Copy mono to both channels"),
    ProcessorSpec("stereo_to_mid_side", StereoToMidSide, "Stereo to outlets mid and side"),
    ProcessorSpec("mid_side_to_stereo", MidSideToStereo, "Inlets mid and side to stereo"),
    *(ProcessorSpec(name, partial(Biquad, name), text) for name, text in _BIQUADS.items()),
    ProcessorSpec("parametric_eq", ParametricEQ, "Low shelf, N peaks and high shelf (option n_peaks)"),
    ProcessorSpec("fir_eq", FIREQ, "Zero-phase FIR EQ from gains at log-spaced bands: gain_db"),
    ProcessorSpec("graphic_eq", GraphicEQ, "Graphic EQ of fixed peaking bands (option bands_per_octave): gain_db"),
    ProcessorSpec("state_variable_filter", StateVariableFilter,
                  "State-variable filter, a mix of its outputs: cutoff_hz, q, lowpass/bandpass/highpass_gain"),
    ProcessorSpec("allpass", AllPass, "Cascade of second-order all-pass filters (option n_stages): cutoff_hz, q"),
    ProcessorSpec("crossover", Crossover, "Linkwitz-Riley 4th-order crossover to outlets low and high: cutoff_hz"),
    ProcessorSpec("compressor", Compressor, "Compressor with soft knee and attack/release ballistics"),
    ProcessorSpec("sidechain_compressor", SidechainCompressor,
                  "Compressor whose detector listens to inlet sidechain"),
    ProcessorSpec("noise_gate", NoiseGate, "Noise gate / downward expander with attack, release and range"),
    ProcessorSpec("delay", Delay, "Feedback delay: delay_ms, feedback, mix"),
    ProcessorSpec("multitap_delay", MultitapDelay, "Learnable multitap delay (option n_taps): delay_ms, gain"),
    ProcessorSpec("reverb", NoiseReverb, "Filtered-noise reverb, per-band decay and gain for mid and side"),
    ProcessorSpec("impulse_response", ImpulseResponse,
                  "Learned stereo impulse response, one tap per sample (option taps): ir"),
    ProcessorSpec("stft_reverb", STFTMaskedNoiseReverb,
                  "STFT-masked noise reverb, decay and gain per STFT bin for mid and side"),
    ProcessorSpec("distortion", Distortion, "tanh distortion: drive_db (pedalboard's Distortion curve)"),
    ProcessorSpec("waveshaper", ChebyshevWaveshaper, "Chebyshev harmonic waveshaper: drive_db, harmonic_gain"),
    ProcessorSpec("dry_wet", DryWet, "Dry/wet mix around a processor (option processor=...): mix"),
    ProcessorSpec("chain", Chain, "Processors in series in one node (option stages=[...] or {name: ...})"),
    ProcessorSpec("a_eq", AEq, "Twin of Ardour's a-eq: shelves, four bells, master gain (settled glide)"),
    ProcessorSpec("sox_compand", SoxCompand, "Twin of sox's compand (peak envelope, soft-knee curve, one pair)"),
    ProcessorSpec("a_comp", AComp, "Twin of Ardour's a-comp (mono or stereo-linked peak compressor)"),
    ProcessorSpec("ardour_fader", ArdourFader, "Twin of an Ardour strip's fader and default panner: gain_db, position"),
    ProcessorSpec("ardour_gain", partial(ArdourFader, pan=False), "Twin of an Ardour fader without panner: gain_db"),
    ProcessorSpec("ardour_send", partial(ArdourFader, pan=False), "Twin of an Ardour aux send's level: gain_db"),
    ProcessorSpec("parallel_mix", ParallelMix,
                  "Processors side by side in one node, weighted sum (option branches=[...] or {name: ...})"),
)
"""Every processor grafx-dsp offers (all with ``gradient="autograd"``)."""


@hookimpl
def grafx_register_processors() -> list[ProcessorSpec]:
    """grafx-dsp's processors, for the grafx-core registry."""
    return list(PROCESSORS)
