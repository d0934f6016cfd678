"""Biquad families beyond the RBJ cookbook: a graphic EQ, a state-variable filter, all-pass cascades.

Each is a cascade of second-order sections applied like every grafx-dsp IIR
filter (:func:`grafx_dsp.biquad.sos_filter`: the frequency response sampled
on a grid as long as the impulse response, then an FFT convolution).
Coefficients are computed in float64.
"""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range
from ._stream import StatefulConvolution
from .biquad import (FILTER_GAIN_DB, Q, biquad_coefficients, frequency_range, sos_filter, sos_kernel,
                     spread_frequencies)

__all__ = [
    "GraphicEQ",
    "graphic_eq_bands",
    "StateVariableFilter",
    "state_variable_coefficients",
    "AllPass",
    "allpass_coefficients",
]

SVF_GAIN = Range(low=-2.0, high=2.0, default=0.0, floor=-3.0, ceiling=3.0)


def graphic_eq_bands(bands_per_octave: int, sample_rate: float) -> tuple[torch.Tensor, float]:
    """Centre frequencies ``1000 * 2 ** (k / bands_per_octave)`` Hz between 25 Hz and
    ``min(20 kHz, 0.45 * sample_rate)``, and the Q of a band one
    ``1 / bands_per_octave`` octave wide (``2 ** (b / 2) / (2 ** b - 1)``).

    Returns:
        ``(centres_hz [bands] float64, q)``.
    """
    if bands_per_octave < 1:
        raise ValueError(f"GraphicEQ: bands_per_octave must be >= 1, got {bands_per_octave!r}")
    top = min(20000.0, 0.45 * sample_rate)
    low_k = math.ceil(bands_per_octave * math.log2(25.0 / 1000.0))
    high_k = math.floor(bands_per_octave * math.log2(top / 1000.0))
    k = torch.arange(low_k, high_k + 1, dtype=torch.float64)
    width = 1.0 / bands_per_octave
    return 1000.0 * torch.pow(2.0, k / bands_per_octave), 2 ** (width / 2) / (2 ** width - 1)


class GraphicEQ(StatefulConvolution, DSPProcessor):
    """A graphic EQ: fixed peaking bands (RBJ), one gain slider per band.

    Args:
        bands_per_octave: 1 (10 octave bands, 31.25 Hz to 16 kHz at 44.1
            kHz), 3 (28 third-octave bands over the same span), ...; centres
            and Q as :func:`graphic_eq_bands`.
        sample_rate: in Hz.

    Parameters:
        gain_db ``[nodes, bands]``: each band's gain at its centre, range
        [-24, 24] dB, default 0. Neighbouring bands overlap, so a band's gain
        shows a little in its neighbours' (as on a hardware graphic EQ).

    Signals: any channel count in, the same out; all gains at 0 dB is the identity.
    """

    def __init__(self, bands_per_octave: int = 1, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        centres, self.q = graphic_eq_bands(bands_per_octave, sample_rate)
        self.bands_per_octave = int(bands_per_octave)
        self.band_hz = centres  # float64 on the CPU: not a buffer, so .to(float32) cannot round it
        self.ranges = {"gain_db": FILTER_GAIN_DB.replace(shape=(len(centres),))}

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return sos_filter(x, *self._sections(gain_db))

    def stream_kernel(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        """The impulse response :meth:`forward` convolves with, ``[nodes, 1, taps]``."""
        return sos_kernel(*self._sections(gain_db), x)

    def _sections(self, gain_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gain = self.limit("gain_db", gain_db)
        centres = self.band_hz.to(gain.device).expand(gain.shape[0], -1)
        return biquad_coefficients("peak", centres, torch.full_like(centres, self.q), gain, self.sample_rate)

    def extra_repr(self) -> str:
        return f"bands_per_octave={self.bands_per_octave}, bands={len(self.band_hz)}, sample_rate={self.sample_rate:g}"


def state_variable_coefficients(cutoff_hz: torch.Tensor, q: torch.Tensor, lowpass: torch.Tensor,
                                bandpass: torch.Tensor, highpass: torch.Tensor,
                                sample_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The biquad of a state-variable filter whose three outputs are mixed.

    The analog prototype is ``(highpass s**2 + bandpass w s + lowpass w**2) /
    (s**2 + w s / q + w**2)``: the SVF's high-, band- and low-pass outputs
    (the band-pass peaks at ``q`` at the cutoff) weighted and summed. It is
    discretised by the bilinear transform with the cutoff prewarped, which
    is what a trapezoidal (TPT) SVF computes sample by sample.

    Args:
        cutoff_hz, q, lowpass, bandpass, highpass: broadcastable tensors.
        sample_rate: in Hz.

    Returns:
        ``(b, a)``, each ``[*shape, 3]`` float64, ``a[..., 0] == 1``.
    """
    k = torch.tan((math.pi / sample_rate) * cutoff_hz.to(torch.float64))
    q = q.to(torch.float64)
    lowpass, bandpass, highpass = (t.to(torch.float64) for t in (lowpass, bandpass, highpass))
    k2 = k * k
    b = torch.stack([highpass + bandpass * k + lowpass * k2, 2 * (lowpass * k2 - highpass),
                     highpass - bandpass * k + lowpass * k2], dim=-1)
    a = torch.stack([1 + k / q + k2, 2 * (k2 - 1), 1 - k / q + k2], dim=-1)
    return b / a[..., :1], a / a[..., :1]


class StateVariableFilter(StatefulConvolution, DSPProcessor):
    """A state-variable filter with a learnable mix of its low-, band- and high-pass outputs
    (see :func:`state_variable_coefficients`).

    Parameters (each ``[nodes, 1]``):
        cutoff_hz: range [20, min(20000, 0.45 fs)] Hz, default 1000.
        q: resonance, range [0.1, 20], default 0.7071.
        lowpass_gain, bandpass_gain, highpass_gain: weights of the three
            outputs, range [-2, 2], defaults 1, 0, 0 (a low-pass; 1, 0, 1 is
            a notch, 1, 1 / q, 1 the identity).

    Signals: any channel count in, the same out.
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {"cutoff_hz": frequency_range(sample_rate), "q": Q,
                       "lowpass_gain": SVF_GAIN.replace(default=1.0), "bandpass_gain": SVF_GAIN,
                       "highpass_gain": SVF_GAIN}

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor, lowpass_gain: torch.Tensor,
                bandpass_gain: torch.Tensor, highpass_gain: torch.Tensor) -> torch.Tensor:
        return sos_filter(x, *self._sections(x, cutoff_hz, q, lowpass_gain, bandpass_gain, highpass_gain))

    def stream_kernel(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor, lowpass_gain: torch.Tensor,
                      bandpass_gain: torch.Tensor, highpass_gain: torch.Tensor) -> torch.Tensor:
        """The impulse response :meth:`forward` convolves with, ``[nodes, 1, taps]``."""
        return sos_kernel(*self._sections(x, cutoff_hz, q, lowpass_gain, bandpass_gain, highpass_gain), x)

    def _sections(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor, lowpass_gain: torch.Tensor,
                  bandpass_gain: torch.Tensor, highpass_gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = {name: per_node(self.limit(name, value), x, trailing=1) for name, value in (
            ("cutoff_hz", cutoff_hz), ("q", q), ("lowpass_gain", lowpass_gain),
            ("bandpass_gain", bandpass_gain), ("highpass_gain", highpass_gain))}
        return state_variable_coefficients(p["cutoff_hz"], p["q"], p["lowpass_gain"], p["bandpass_gain"],
                                           p["highpass_gain"], self.sample_rate)


def allpass_coefficients(cutoff_hz: torch.Tensor, q: torch.Tensor,
                         sample_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order all-pass sections (RBJ): unit magnitude, a phase turning by
    360 degrees around ``cutoff_hz``, faster for higher ``q``.

    Returns:
        ``(b, a)``, each ``[*shape, 3]`` float64, ``a[..., 0] == 1``; ``b`` is ``a`` reversed.
    """
    w0 = (2.0 * math.pi / sample_rate) * cutoff_hz.to(torch.float64)
    alpha = torch.sin(w0) / (2.0 * q.to(torch.float64))
    cos_w0 = torch.cos(w0)
    a = torch.stack([1 + alpha, -2 * cos_w0, 1 - alpha], dim=-1)
    return a.flip(-1) / a[..., :1], a / a[..., :1]


class AllPass(StatefulConvolution, DSPProcessor):
    """A cascade of ``n_stages`` second-order all-pass filters (see :func:`allpass_coefficients`).

    Alone it changes only the phase (a dispersion, a smeared transient); in
    a mix with the dry signal (:class:`~grafx_dsp.containers.DryWet`) it
    notches like a phaser stage.

    Args:
        n_stages: number of sections (>= 1).
        sample_rate: in Hz.

    Parameters:
        cutoff_hz ``[nodes, n_stages]``: range [20, min(20000, 0.45 fs)] Hz,
        defaults log-spaced from 200 Hz to 5 kHz.
        q ``[nodes, n_stages]``: range [0.1, 20], default 0.7071.

    Signals: any channel count in, the same out, with the same energy spectrum.
    """

    def __init__(self, n_stages: int = 2, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        if n_stages < 1:
            raise ValueError(f"AllPass: n_stages must be >= 1, got {n_stages!r}")
        self.n_stages = int(n_stages)
        stages = (self.n_stages,)
        self.ranges = {"cutoff_hz": frequency_range(sample_rate).replace(shape=stages), "q": Q.replace(shape=stages)}

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        params = super().default_parameters(nodes, dtype=dtype, device=device)
        params["cutoff_hz"] = spread_frequencies(self.n_stages, self.ranges["cutoff_hz"], nodes, dtype, device)
        return params

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        b, a = allpass_coefficients(self.limit("cutoff_hz", cutoff_hz), self.limit("q", q), self.sample_rate)
        return sos_filter(x, b, a)

    def stream_kernel(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """The impulse response :meth:`forward` convolves with, ``[nodes, 1, taps]``."""
        b, a = allpass_coefficients(self.limit("cutoff_hz", cutoff_hz), self.limit("q", q), self.sample_rate)
        return sos_kernel(b, a, x)

    def extra_repr(self) -> str:
        return f"n_stages={self.n_stages}, sample_rate={self.sample_rate:g}"
