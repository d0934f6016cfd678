"""RBJ biquad filters applied by frequency sampling.

The coefficient formulas are Robert Bristow-Johnson's "Audio EQ Cookbook"
(the bilinear transform of a second-order analog prototype, prewarped at the
cutoff). A filter is applied by frequency sampling: its frequency response, sampled
on an FFT grid as long as its impulse response takes to decay below ``1e-9``
of its peak, gives the impulse response, which is convolved with the signal
by FFT. No per-sample loop, differentiable by autograd, on any device; the
result equals ``scipy.signal.lfilter`` up to that ``1e-9`` tail.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._base import DSPProcessor, Number, per_node
from ._ranges import Range
from .moving_filter import DEFAULT_BLOCK, blockwise_coefficients, moving, moving_sos_filter
from ._stream import StatefulConvolution
from .fft import decay_length, fast_length, fft_convolve

__all__ = [
    "FILTER_TYPES",
    "biquad_coefficients",
    "biquad_response",
    "pole_radius",
    "sos_impulse_response",
    "sos_impulse_head",
    "HEAD_FACTOR",
    "sos_filter",
    "sos_kernel",
    "biquad",
    "moving_biquad_design",
    "frequency_range",
    "spread_frequencies",
    "Biquad",
]

FILTER_TYPES = ("lowpass", "highpass", "bandpass", "notch", "peak", "low_shelf", "high_shelf")
"""The RBJ designs; ``peak`` and the shelves also take ``gain_db``."""

Q = Range(low=0.1, high=20.0, default=math.sqrt(0.5), floor=0.025, ceiling=40.0, scale="log")
FILTER_GAIN_DB = Range(low=-24.0, high=24.0, default=0.0, floor=-36.0, ceiling=36.0)


def frequency_range(sample_rate: float, default: float = 1000.0) -> Range:
    """Range of a cutoff or centre frequency: [20 Hz, min(20 kHz, 0.45 fs)],
    with a guard band from 10 Hz to 0.49 fs."""
    return Range(
        low=20.0,
        high=min(20000.0, 0.45 * sample_rate),
        default=min(default, 0.45 * sample_rate),
        floor=10.0,
        ceiling=0.49 * sample_rate,
        scale="log",
    )


def spread_frequencies(count: int, bounds: Range, nodes: int, dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """``[nodes, count]`` default centres: log-spaced from 200 Hz to
    ``min(5 kHz, bounds.high)`` (a spread of bands across the mids)."""
    high = min(5000.0, bounds.high)
    centres = torch.logspace(math.log10(200.0), math.log10(high), count, dtype=dtype, device=device)
    return centres.expand(nodes, -1).clone()


def biquad_coefficients(
    filter_type: str,
    cutoff_hz: torch.Tensor,
    q: torch.Tensor,
    gain_db: torch.Tensor | None = None,
    sample_rate: float = 44100.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RBJ cookbook coefficients, normalised so that ``a[..., 0] == 1``.

    Args:
        filter_type: one of :data:`FILTER_TYPES`.
        cutoff_hz: cutoff (or centre) frequency in Hz, in ``(0, sample_rate / 2)``; any shape.
        q: quality factor ``> 0``, broadcastable against ``cutoff_hz``.
        gain_db: gain in dB for ``peak`` and the shelves (ignored otherwise).
        sample_rate: in Hz.

    Returns:
        ``(b, a)``, each ``[*shape, 3]`` float64: numerator and denominator in
        powers of ``z^-1``. They are computed in float64 whatever the inputs'
        dtype: in float32, ``1 - cos(w0)`` loses most of its digits at low cutoffs.

    Raises:
        ValueError: unknown ``filter_type``, or a gain missing for a type that needs one.
    """
    if filter_type not in FILTER_TYPES:
        raise ValueError(f"biquad: filter_type must be one of {FILTER_TYPES}, got {filter_type!r}")
    if filter_type in ("peak", "low_shelf", "high_shelf") and gain_db is None:
        raise ValueError(f"biquad: filter_type {filter_type!r} needs gain_db")
    cutoff_hz, q = cutoff_hz.to(torch.float64), q.to(torch.float64)
    gain_db = None if gain_db is None else gain_db.to(torch.float64)
    w0 = (2.0 * math.pi / sample_rate) * cutoff_hz
    cos_w0, sin_w0 = torch.cos(w0), torch.sin(w0)
    alpha = sin_w0 / (2.0 * q)
    one = torch.ones_like(cos_w0)
    if filter_type == "lowpass":
        b = [(1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    elif filter_type == "highpass":
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    elif filter_type == "bandpass":
        b = [alpha, 0 * alpha, -alpha]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    elif filter_type == "notch":
        b = [one, -2 * cos_w0, one]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    else:
        amp = torch.pow(10.0, gain_db / 40.0)
        if filter_type == "peak":
            b = [1 + alpha * amp, -2 * cos_w0, 1 - alpha * amp]
            a = [1 + alpha / amp, -2 * cos_w0, 1 - alpha / amp]
        else:
            sign = 1.0 if filter_type == "low_shelf" else -1.0
            two_sqrt_a_alpha = 2 * torch.sqrt(amp) * alpha
            b = [
                amp * ((amp + 1) - sign * (amp - 1) * cos_w0 + two_sqrt_a_alpha),
                sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos_w0),
                amp * ((amp + 1) - sign * (amp - 1) * cos_w0 - two_sqrt_a_alpha),
            ]
            a = [
                (amp + 1) + sign * (amp - 1) * cos_w0 + two_sqrt_a_alpha,
                -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos_w0),
                (amp + 1) + sign * (amp - 1) * cos_w0 - two_sqrt_a_alpha,
            ]
    b_t, a_t = torch.stack(b, dim=-1), torch.stack(a, dim=-1)
    a0 = a_t[..., :1]
    return b_t / a0, a_t / a0


def _polynomial_response(coefficients: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``sum_k c_k exp(-j k w)`` on the ``rfft`` grid, as two real matmuls (complex
    broadcasting arithmetic is several times slower on CPU)."""
    omega = torch.arange(n_fft // 2 + 1, dtype=coefficients.dtype, device=coefficients.device) * (
        2 * math.pi / n_fft)
    angles = torch.arange(coefficients.shape[-1], dtype=coefficients.dtype,
                          device=coefficients.device).unsqueeze(1) * omega
    flat = coefficients.reshape(-1, coefficients.shape[-1])  # one 2-D matmul beats a batched one
    shape = (*coefficients.shape[:-1], omega.shape[0])
    return torch.complex((flat @ torch.cos(angles)).reshape(shape), -(flat @ torch.sin(angles)).reshape(shape))


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Frequency response of cascades of biquads on the ``rfft`` grid of length ``n_fft``.

    Args:
        b: numerators ``[..., sections, 3]``.
        a: denominators ``[..., sections, 3]``.
        n_fft: the grid's FFT length.

    Returns:
        Complex ``[..., n_fft // 2 + 1]``: the product of the sections' responses.
    """
    numerators, denominators = _polynomial_response(b, n_fft), _polynomial_response(a, n_fft)
    numerator, denominator = numerators[..., 0, :], denominators[..., 0, :]
    for section in range(1, b.shape[-2]):
        numerator = numerator * numerators[..., section, :]
        denominator = denominator * denominators[..., section, :]
    return numerator / denominator


def pole_radius(a: torch.Tensor) -> torch.Tensor:
    """Largest pole radius of each normalised denominator ``[..., 3]``, ``[...]``."""
    a1, a2 = a[..., 1], a[..., 2]
    disc = a1 * a1 - 4 * a2
    real_root = (a1.abs() + disc.clamp(min=0).sqrt()) / 2
    return torch.where(disc < 0, a2.clamp(min=0).sqrt(), real_root)


def sos_impulse_response(b: torch.Tensor, a: torch.Tensor, samples: int | None = None) -> torch.Tensor:
    """Impulse responses of cascades of biquads, long enough to have decayed (or their first ``samples``).

    The length is the sum over sections of :func:`grafx_dsp.fft.decay_length`
    of the slowest node's poles (the cascade's response is the convolution of
    the sections'), rounded up to a fast FFT length. The response is sampled
    on that grid and inverse-transformed, so the part of the impulse response
    beyond the grid folds back onto it; that part is below ``1e-9`` of the peak.

    Where ``samples`` is given and the response takes longer than that to decay,
    only its first ``samples`` are computed, exactly, by :func:`sos_impulse_head`:
    a pole near the unit circle (a resonant shelf at 40 Hz) takes hundreds of
    thousands of samples to decay, and the grid's cost grows with every node of
    the batch, as the slowest node sets it for all.

    Args:
        b: numerators ``[nodes, sections, 3]``.
        a: normalised denominators ``[nodes, sections, 3]``, poles inside the unit circle.
        samples: the most samples the caller uses (a causal filter of a signal that long), or ``None``.

    Returns:
        ``[nodes, length]`` in the coefficients' dtype: ``length`` the decay length, or ``samples``
        where that is shorter.
    """
    radii = pole_radius(a.detach()).amax(dim=0).tolist()
    length = fast_length(sum(decay_length(radius) for radius in radii))
    if samples is not None and length > HEAD_FACTOR * samples:
        return sos_impulse_head(b, a, samples)
    return torch.fft.irfft(biquad_response(b, a, length), n=length)


HEAD_FACTOR = 2
""":func:`sos_impulse_response` computes only the samples used where the response's decay is longer than
this many times their count (the head's recursion and convolutions cost a few transforms of twice that
count)."""


def sos_impulse_head(b: torch.Tensor, a: torch.Tensor, samples: int) -> torch.Tensor:
    """The first ``samples`` of the impulse responses of cascades of biquads, exactly, however slowly they decay.

    Each section's response follows its recursion ``h[n] = -a1 h[n-1] - a2 h[n-2]`` after its first three
    samples: the state ``(h[n], h[n-1])`` is carried ``k`` samples on by the ``k``-th power of the
    section's companion matrix, and the states of ``1, 2, 4, ...`` samples on are made by repeated
    squaring (``log2 samples`` batched products, differentiable). The sections' heads are convolved one
    after another by FFT, each product cut to ``samples`` (the first ``samples`` of a cascade's response
    depend only on the sections' first ``samples``).
    Computed in float64 (a power's rounding grows with the exponent), returned in the coefficients' dtype.

    Args:
        b: numerators ``[nodes, sections, 3]``.
        a: normalised denominators ``[nodes, sections, 3]``.
        samples: how many samples, at least 1.

    Returns:
        ``[nodes, samples]`` in the coefficients' dtype.
    """
    b64, a64 = b.to(torch.float64), a.to(torch.float64)
    a1, a2 = a64[..., 1], a64[..., 2]
    h0 = b64[..., 0]
    h1 = b64[..., 1] - a1 * h0
    h2 = b64[..., 2] - a1 * h1 - a2 * h0
    companion = torch.stack([torch.stack([-a1, -a2], dim=-1), torch.stack([torch.ones_like(a1), torch.zeros_like(a2)],
                                                                          dim=-1)], dim=-2)  # [N, S, 2, 2]
    states = torch.stack([h2, h1], dim=-1).unsqueeze(-2)  # [N, S, 1, 2]: (h[2], h[1])
    power = companion
    while states.shape[-2] < samples - 2:
        states = torch.cat([states, states @ power.transpose(-1, -2)], dim=-2)  # the next as many, by M^count
        power = power @ power
    heads = torch.cat([h0.unsqueeze(-1), h1.unsqueeze(-1), states[..., 0]], dim=-1)[..., :samples]  # [N, S, L]
    n_fft = fast_length(2 * samples)
    cascade = heads[:, 0]
    for section in range(1, heads.shape[1]):  # cut after each product: a product of all would wrap around
        product = torch.fft.rfft(cascade, n=n_fft) * torch.fft.rfft(heads[:, section], n=n_fft)
        cascade = torch.fft.irfft(product, n=n_fft)[..., :samples]
    return cascade.to(b.dtype)


def sos_filter(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Filter each node's signal with its cascade of biquad sections.

    Sampling the frequency response on a grid only as long as the impulse
    response (:func:`sos_impulse_response`) and convolving by FFT costs far
    less than sampling it on the signal's grid: the response's arithmetic
    scales with nodes x sections x grid length.

    Args:
        x: ``[nodes, channels, samples]``.
        b: numerators ``[nodes or 1, sections, 3]``.
        a: normalised denominators ``[nodes or 1, sections, 3]``, poles inside the unit circle.

    Returns:
        ``[nodes, channels, samples]``, equal to ``scipy.signal.sosfilt`` with
        zero initial state up to the impulse response's tail (see module docstring).
    """
    response = sos_impulse_response(b, a, x.shape[-1]).to(x.dtype)
    return fft_convolve(x, response.unsqueeze(1), mode="causal")


def biquad(
    x: torch.Tensor,
    filter_type: str,
    cutoff_hz: Number,
    q: Number,
    gain_db: Number | None = None,
    sample_rate: float = 44100.0,
) -> torch.Tensor:
    """Filter ``x`` ``[nodes, channels, samples]`` with one RBJ biquad per node.

    Args:
        x: ``[nodes, channels, samples]``.
        filter_type: one of :data:`FILTER_TYPES`.
        cutoff_hz: per node, in ``(0, sample_rate / 2)``; any of the three
            may move (``[nodes, 1, samples]``): the biquad is then redesigned
            every :data:`~grafx_dsp.moving_filter.DEFAULT_BLOCK` samples
            (:func:`~grafx_dsp.moving_filter.moving_sos_filter`).
        q: per node, ``> 0``.
        gain_db: per node, for ``peak`` and the shelves.
        sample_rate: in Hz.
    """
    values = {"cutoff_hz": cutoff_hz, "q": q, **({} if gain_db is None else {"gain_db": gain_db})}
    if moving(values):
        design, given = moving_biquad_design(x, filter_type, values, sample_rate)
        b, a = blockwise_coefficients(design, given, x.shape[-1], DEFAULT_BLOCK)
        return moving_sos_filter(x, b, a, DEFAULT_BLOCK)
    cutoff = per_node(cutoff_hz, x, trailing=1)
    gain = None if gain_db is None else per_node(gain_db, x, trailing=1)
    b, a = biquad_coefficients(filter_type, cutoff, per_node(q, x, trailing=1), gain, sample_rate)
    return sos_filter(x, b, a)


def moving_biquad_design(x: torch.Tensor, filter_type: str, values: dict[str, Number],
                         sample_rate: float) -> tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]],
                                                      dict[str, torch.Tensor]]:
    """How a moving biquad is designed: ``(design, controls)`` for
    :func:`~grafx_dsp.moving_filter.blockwise_coefficients`, ``controls`` being ``values``
    (``cutoff_hz``, ``q``, optional ``gain_db``) as ``[nodes, 1, samples]`` curves or ``[nodes, 1]``."""
    def design(**flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return biquad_coefficients(filter_type, flat["cutoff_hz"], flat["q"], flat.get("gain_db"), sample_rate)

    nodes = x.shape[0]
    given = {k: torch.as_tensor(v, dtype=x.dtype, device=x.device) for k, v in values.items()}
    return design, {k: v if v.dim() == 3 else v.reshape(-1, 1).expand(nodes, 1) for k, v in given.items()}


def sos_kernel(b: torch.Tensor, a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The impulse response :func:`sos_filter` convolves with, ``[nodes, 1, taps]`` in ``like``'s dtype."""
    return sos_impulse_response(b, a).to(like.dtype).unsqueeze(1)


class Biquad(StatefulConvolution, DSPProcessor):
    """One RBJ biquad per node (see :func:`biquad_coefficients`).

    Args:
        filter_type: one of :data:`FILTER_TYPES`.
        sample_rate: in Hz.

    Parameters:
        cutoff_hz ``[nodes, 1]``: range [20, min(20000, 0.45 fs)] Hz, default 1000
        (guard band 10 Hz to 0.49 fs).
        q ``[nodes, 1]``: range [0.1, 20], default 0.7071 (guard band 0.025 to 40).
        gain_db ``[nodes, 1]`` (``peak`` and shelves only): range [-24, 24] dB, default 0.

    Signals: any channel count in, the same out. Streams block by block
    (the filter's overhang carried as state; with moving controls, the
    recursion's memories and its place on the coefficient grid).
    """

    def __init__(self, filter_type: str = "lowpass", sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        if filter_type not in FILTER_TYPES:
            raise ValueError(f"Biquad: filter_type must be one of {FILTER_TYPES}, got {filter_type!r}")
        self.filter_type = filter_type
        self.ranges = {"cutoff_hz": frequency_range(sample_rate).replace(time_varying=True),
                       "q": Q.replace(time_varying=True)}
        if filter_type in ("peak", "low_shelf", "high_shelf"):
            self.ranges["gain_db"] = FILTER_GAIN_DB.replace(time_varying=True)

    def forward(
        self,
        x: torch.Tensor,
        cutoff_hz: torch.Tensor,
        q: torch.Tensor,
        gain_db: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self._check_gain(gain_db)
        gain = None if gain_db is None else self.limit("gain_db", gain_db)
        return biquad(
            x,
            self.filter_type,
            self.limit("cutoff_hz", cutoff_hz),
            self.limit("q", q),
            gain,
            self.sample_rate,
        )

    def coefficients(self, cutoff_hz: torch.Tensor, q: torch.Tensor,
                     gain_db: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft-limited constant parameters ``[nodes, 1]`` to the biquad ``(b, a)``, each ``[nodes, 1, 3]``
        float64 (one section, as :meth:`grafx_dsp.eq.ParametricEQ.coefficients` gives its sections)."""
        self._check_gain(gain_db)
        gain = None if gain_db is None else self.limit("gain_db", gain_db)
        return biquad_coefficients(self.filter_type, self.limit("cutoff_hz", cutoff_hz), self.limit("q", q), gain,
                                   self.sample_rate)

    def stream_kernel(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor,
                      gain_db: torch.Tensor | None = None) -> torch.Tensor:
        """The impulse response :meth:`forward` convolves with, ``[nodes, 1, taps]``."""
        self._check_gain(gain_db)
        gain = None if gain_db is None else per_node(self.limit("gain_db", gain_db), x, trailing=1)
        b, a = biquad_coefficients(self.filter_type, per_node(self.limit("cutoff_hz", cutoff_hz), x, trailing=1),
                                   per_node(self.limit("q", q), x, trailing=1), gain, self.sample_rate)
        return sos_kernel(b, a, x)

    def moving_design(self, x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor,
                      gain_db: torch.Tensor | None = None) -> tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]],
                                                                    dict[str, torch.Tensor], int]:
        """How a block of a stream with moving controls is designed (:func:`moving_biquad_design`):
        ``(design, controls, samples between coefficient updates)``."""
        self._check_gain(gain_db)
        values = {"cutoff_hz": self.limit("cutoff_hz", cutoff_hz), "q": self.limit("q", q)}
        if gain_db is not None:
            values["gain_db"] = self.limit("gain_db", gain_db)
        return (*moving_biquad_design(x, self.filter_type, values, self.sample_rate), DEFAULT_BLOCK)

    def _check_gain(self, gain_db: torch.Tensor | None) -> None:
        if (gain_db is None) != ("gain_db" not in self.ranges):
            raise TypeError(
                f"Biquad({self.filter_type!r}): gain_db is "
                + ("required" if gain_db is None else "not a parameter of this filter type")
            )

    def extra_repr(self) -> str:
        return f"filter_type={self.filter_type!r}, sample_rate={self.sample_rate:g}"
