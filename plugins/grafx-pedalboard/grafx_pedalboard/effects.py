"""The table of pedalboard's built-in effects: parameter specs, safe ranges and options.

Each :class:`Effect` says which pedalboard class it wraps, the controls a node
of it has (:class:`~grafx_core.blackbox.ParameterSpec`: natural units, range,
scale, default, differentiable or not) and the constructor options that are not
controls (a filter mode, a switch). Ranges are what a mixing engineer would
use, inside the limits pedalboard enforces and inside the limits it does *not*
enforce but should (Chorus or Phaser feedback near 1 blows up; a filter cutoff
above Nyquist returns Inf). Frequencies, times and ratios use a log scale.

The ``differentiable`` flags come from measurement, not intuition: see
``tools/measure_controls.py`` and the plugin README for the figures. A control
marked non-differentiable moves the output in steps (delay time in whole
samples, bit depth) or like noise (LFO rates, pitch-shift amount); the default
estimator leaves it out, and ``differentiable={"name": True}`` with a
straight-through surrogate or a neural proxy can train it anyway.

Effects without a numeric control are left out on purpose: ``Invert`` is
exactly ``-x`` (a black box would only lose its exact gradient), ``IIRFilter``
is an abstract base, and ``Chain``/``Mix``/``Pedalboard`` are containers
(see :mod:`grafx_pedalboard.chain`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grafx_core.blackbox import ParameterSpec

__all__ = ["Effect", "EFFECTS", "effect_names", "get_effect", "MP3_SAMPLE_RATES"]

MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates (Hz) at which pedalboard's MP3 encoder (LAME) runs."""


@dataclass(frozen=True)
class Control:
    """A control before the sample rate is known.

    ``maximum`` may be a callable of the sample rate (frequency ceilings).
    ``limits`` are the widest range a user may ask for with ``ranges=``:
    pedalboard's own checks, or where it stays finite when it checks nothing.
    ``time_varying`` controls may be automated (a curve, set block by block
    inside one effect instance, see :class:`~grafx_pedalboard.processor.SetAndProcess`).
    """

    name: str
    minimum: float
    maximum: float | Callable[[float], float]
    default: float
    scale: str = "linear"
    differentiable: bool = True
    limits: tuple[float, float | Callable[[float], float]] | None = None
    time_varying: bool = False

    def resolve(self, sample_rate: float, minimum: float | None = None, maximum: float | None = None,
                differentiable: bool | None = None) -> ParameterSpec:
        hi = self.maximum(sample_rate) if callable(self.maximum) else self.maximum
        lo = self.minimum if minimum is None else minimum
        hi = hi if maximum is None else maximum
        default = min(max(self.default, lo), hi)
        return ParameterSpec(self.name, lo, hi, default=default, scale=self.scale,
                             differentiable=self.differentiable if differentiable is None else differentiable,
                             time_varying=self.time_varying)

    def limit_range(self, sample_rate: float) -> tuple[float, float]:
        lo, hi = self.limits if self.limits is not None else (self.minimum, self.maximum)
        return lo, (hi(sample_rate) if callable(hi) else hi)


@dataclass(frozen=True)
class Effect:
    """One pedalboard effect class as a grafx-core processor.

    Attributes:
        name: registered short name (``"compressor"`` → ``"pedalboard:compressor"``).
        class_name: the pedalboard class (``"Compressor"``).
        description: one line for listings.
        controls: the controls a node has, in estimator column order.
        options: constructor options that are not controls, with their defaults.
        cheap: costs well under a millisecond per item; runs on one thread by default
            (threads cost more than they save, see FACTS.md).
        fresh_instance: every item gets a new instance, because a control is
            smoothed across calls even with ``reset=True`` (so an output would
            depend on the previous item's values).
        signal_gradient: the default gradient of the input signal: ``"auto"``
            (the estimator's choice), ``"straight-through"`` for codecs and
            quantisers (output close to input), ``"none"`` where the identity
            would be wrong (a pitch shift).
    """

    name: str
    class_name: str
    description: str
    controls: tuple[Control, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    cheap: bool = False
    fresh_instance: bool = False
    signal_gradient: str = "auto"


def nyquist_fraction(fraction: float, ceiling: float = 20000.0) -> Callable[[float], float]:
    """A frequency maximum of ``min(ceiling, fraction * sample_rate)`` Hz."""
    return lambda sample_rate: min(ceiling, fraction * sample_rate)


_CUTOFF_MAX = nyquist_fraction(0.45)
_CUTOFF_LIMIT = nyquist_fraction(0.49, ceiling=float("inf"))


def _cutoff(name: str, default: float) -> Control:
    return Control(name, 20.0, _CUTOFF_MAX, default, "log", limits=(1.0, _CUTOFF_LIMIT))


def _eq(name: str, class_name: str, description: str, frequency: float) -> Effect:
    return Effect(name, class_name, description, (
        _cutoff("cutoff_frequency_hz", frequency),
        Control("gain_db", -24.0, 24.0, 0.0, limits=(-48.0, 48.0)),
        Control("q", 0.1, 10.0, 0.7071067811865476, "log", limits=(0.01, 100.0)),
    ))


_TIME_ATTACK = Control("attack_ms", 0.1, 100.0, 5.0, "log", limits=(0.01, 1000.0))
_TIME_RELEASE = Control("release_ms", 5.0, 1000.0, 100.0, "log", limits=(0.1, 5000.0))
_RATIO = Control("ratio", 1.0, 20.0, 4.0, "log", limits=(1.0, 100.0))

EFFECTS: dict[str, Effect] = {e.name: e for e in (
    # -- dynamics -------------------------------------------------------------------
    Effect("compressor", "Compressor", "JUCE compressor: threshold, ratio, attack and release", (
        Control("threshold_db", -60.0, 0.0, -20.0, limits=(-100.0, 12.0), time_varying=True),
        _RATIO, _TIME_ATTACK, _TIME_RELEASE,
    )),
    Effect("limiter", "Limiter", "JUCE limiter (two compressors and a hard clip)", (
        Control("threshold_db", -40.0, 0.0, -10.0, limits=(-100.0, 12.0)),
        _TIME_RELEASE,
    )),
    Effect("brickwall_limiter", "BrickwallLimiter", "Lookahead brickwall limiter", (
        Control("ceiling_db", -40.0, 0.0, -3.0, limits=(-100.0, 12.0)),
        # release is piecewise constant in practice (measured; FACTS.md)
        Control("release_ms", 1.0, 1000.0, 100.0, "log", differentiable=False, limits=(0.01, 5000.0)),
        Control("lookahead_ms", 0.5, 20.0, 5.0, "log", differentiable=False, limits=(0.01, 100.0)),
    ), options={"true_peak": False}),
    Effect("noise_gate", "NoiseGate", "JUCE noise gate (downward expander)", (
        Control("threshold_db", -80.0, 0.0, -40.0, limits=(-120.0, 12.0)),
        _RATIO,
        Control("attack_ms", 0.1, 100.0, 1.0, "log", limits=(0.01, 1000.0)),
        _TIME_RELEASE,
    )),
    # -- gain and saturation ----------------------------------------------------------
    Effect("gain", "Gain", "Gain in dB: x * 10**(gain_db / 20)", (
        Control("gain_db", -48.0, 24.0, 0.0, limits=(-120.0, 60.0), time_varying=True),
    ), cheap=True),
    Effect("distortion", "Distortion", "tanh saturation: tanh(x * 10**(drive_db / 20))", (
        Control("drive_db", 0.0, 48.0, 12.0, limits=(-60.0, 80.0)),
    )),
    Effect("clipping", "Clipping", "Hard clip at a threshold in dB", (
        Control("threshold_db", -48.0, 0.0, -6.0, limits=(-120.0, 24.0)),
    ), cheap=True),
    # The signal gradient is the probe's (signal_gradient="auto"), not a declared straight-through: the
    # probe's central differences step over many quantisation steps and measure what passes (bench/seam.py).
    Effect("bitcrush", "Bitcrush", "Quantise to a bit depth", (
        Control("bit_depth", 1.0, 16.0, 8.0, differentiable=False, limits=(0.0, 32.0)),
    ), cheap=True),
    # -- space and modulation -----------------------------------------------------------
    Effect("reverb", "Reverb", "Freeverb-style algorithmic reverb (JUCE)", (
        Control("room_size", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
        Control("damping", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
        Control("wet_level", 0.0, 1.0, 0.33, limits=(0.0, 1.0), time_varying=True),
        Control("dry_level", 0.0, 1.0, 0.4, limits=(0.0, 1.0), time_varying=True),
        Control("width", 0.0, 1.0, 0.8, limits=(0.0, 1.0)),
    # Reverb ramps dry_level from the previous call's value even with reset=True
    # (measured: 0.96 peak difference after a 0.7 -> 0.3 change); a new Reverb
    # costs no more than a reset one (0.55 vs 0.63 ms for 0.25 s stereo).
    ), options={"freeze_mode": False}, fresh_instance=True),
    Effect("chorus", "Chorus", "JUCE chorus (LFO-modulated delay)", (
        Control("rate_hz", 0.05, 10.0, 1.0, "log", differentiable=False, limits=(0.0, 100.0)),
        Control("depth", 0.0, 1.0, 0.25, differentiable=False, limits=(0.0, 1.0)),
        Control("centre_delay_ms", 1.0, 30.0, 7.0, "log", differentiable=False, limits=(0.1, 100.0)),
        # pedalboard checks nothing here; |feedback| -> 1 rings up to ~1e19 or NaN
        Control("feedback", -0.9, 0.9, 0.0, limits=(-0.95, 0.95)),
        Control("mix", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
    )),
    Effect("phaser", "Phaser", "JUCE phaser (LFO-modulated allpass chain)", (
        Control("rate_hz", 0.05, 10.0, 1.0, "log", differentiable=False, limits=(0.01, 100.0)),
        Control("depth", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
        Control("centre_frequency_hz", 50.0, nyquist_fraction(0.25, 10000.0), 1300.0, "log",
                limits=(10.0, nyquist_fraction(0.45))),
        # unchecked by pedalboard: feedback near +-1 gives NaN
        Control("feedback", -0.9, 0.9, 0.0, limits=(-0.95, 0.95)),
        Control("mix", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
    )),
    Effect("delay", "Delay", "Feedback delay", (
        # moves in whole samples: steps, not a slope
        Control("delay_seconds", 0.001, 2.0, 0.25, "log", differentiable=False, limits=(0.0001, 30.0)),
        Control("feedback", 0.0, 0.9, 0.3, limits=(0.0, 0.99)),
        Control("mix", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
    )),
    Effect("convolution", "Convolution", "Convolution with a fixed impulse response (option impulse_response)", (
        Control("mix", 0.0, 1.0, 0.5, limits=(0.0, 1.0)),
    ), options={"impulse_response": None, "impulse_response_sample_rate": None}),
    Effect("pitch_shift", "PitchShift", "Rubber Band pitch shift in semitones", (
        Control("semitones", -12.0, 12.0, 0.0, differentiable=False, limits=(-72.0, 72.0)),
    ), signal_gradient="none"),
    # -- filters ---------------------------------------------------------------------------
    Effect("ladder_filter", "LadderFilter", "Moog-style ladder filter (mode: LPF12, HPF12, BPF12, LPF24, ...)", (
        Control("cutoff_hz", 20.0, _CUTOFF_MAX, 1000.0, "log", limits=(1.0, _CUTOFF_LIMIT)),
        Control("resonance", 0.0, 0.95, 0.2, limits=(0.0, 1.0)),
        Control("drive", 1.0, 10.0, 1.5, "log", limits=(1.0, 100.0)),
    ), options={"mode": "LPF12"}),
    Effect("lowpass_filter", "LowpassFilter", "First-order low-pass filter", (
        _cutoff("cutoff_frequency_hz", 5000.0),
    )),
    Effect("highpass_filter", "HighpassFilter", "First-order high-pass filter", (
        _cutoff("cutoff_frequency_hz", 200.0),
    )),
    _eq("peak_filter", "PeakFilter", "RBJ peaking EQ band", 1000.0),
    _eq("low_shelf_filter", "LowShelfFilter", "RBJ low-shelf EQ", 200.0),
    _eq("high_shelf_filter", "HighShelfFilter", "RBJ high-shelf EQ", 5000.0),
    # -- codecs and resampling --------------------------------------------------------------
    Effect("mp3_compressor", "MP3Compressor", "MP3 (LAME VBR) encode and decode", (
        Control("vbr_quality", 0.0, 9.5, 2.0, differentiable=False, limits=(0.0, 9.99)),
    )),
    Effect("gsm_full_rate_compressor", "GSMFullRateCompressor", "GSM full-rate codec at 8 kHz, encode and decode",
           (), options={"quality": "WindowedSinc8"}, signal_gradient="straight-through"),
    Effect("resample", "Resample", "Down- and up-sample through a lower sample rate", (
        Control("target_sample_rate", 1000.0, nyquist_fraction(1.0, float("inf")), 8000.0, "log",
                differentiable=False, limits=(100.0, nyquist_fraction(1.0, float("inf")))),
    ), options={"quality": "WindowedSinc32"}, signal_gradient="none"),
)}
"""Every wrapped effect by registered short name."""


def effect_names() -> list[str]:
    """The registered short names, sorted."""
    return sorted(EFFECTS)


def get_effect(name: str) -> Effect:
    """The :class:`Effect` registered as ``name`` (``"compressor"`` or ``"pedalboard:compressor"``).

    Raises:
        KeyError: no such effect (the message lists the known names).
    """
    short = name.split(":", 1)[1] if name.startswith("pedalboard:") else name
    if short not in EFFECTS:
        raise KeyError(f"no pedalboard effect {name!r}; known effects are {effect_names()}")
    return EFFECTS[short]
