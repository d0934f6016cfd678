"""Audio metrics of a fitted mix against its target: SNR, log-spectral distance, loudness, peak.

Integrated loudness (ITU-R BS.1770-4) comes from pyloudnorm, a well-kept
implementation of the standard. Signals shorter than its one 400 ms block,
which it refuses, are measured by :func:`bs1770_loudness`, this module's own
implementation: K-weighting (a high shelf and a high-pass, designed for any
sample rate from the standard's analog prototype), 400 ms blocks with 75 %
overlap, an absolute gate at -70 LKFS and a relative gate 10 LU below the
ungated loudness. The two agree within 0.1 LU (tested). Left and right
channels weigh 1.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = [
    "AUDIBLE_BAND_HZ",
    "k_weighting",
    "integrated_loudness",
    "bs1770_loudness",
    "snr_db",
    "log_spectral_distance_db",
    "peak_dbfs",
    "audio_metrics",
]

# The K-weighting prototype (shelf gain, Q and corner; high-pass Q and corner) that reproduces
# BS.1770's published 48 kHz coefficients when discretised with a pre-warped bilinear transform.
_SHELF_DB, _SHELF_Q, _SHELF_HZ = 3.999843853973347, 0.7071752369554196, 1681.974450955533
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGHPASS_Q, _HIGHPASS_HZ = 0.5003270373238773, 38.13547087602444
_BLOCK_S, _OVERLAP = 0.4, 0.75
_ABSOLUTE_GATE, _RELATIVE_GATE = -70.0, -10.0

AUDIBLE_BAND_HZ = (20.0, 20000.0)
"""The band :func:`log_spectral_distance_db` measures over when given a sample rate, in Hz."""


def k_weighting(sample_rate: float) -> np.ndarray:
    """The K-weighting filter at ``sample_rate`` Hz as second-order sections ``[2, 6]`` (scipy's sos layout)."""
    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    vh = 10 ** (_SHELF_DB / 20)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1 + k / _SHELF_Q + k * k
    shelf = [(vh + vb * k / _SHELF_Q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / _SHELF_Q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / _SHELF_Q + k * k) / a0]
    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass])


def integrated_loudness(audio: torch.Tensor, sample_rate: float) -> float:
    """Integrated loudness of ``audio`` ``[channels, samples]`` (one or two channels) in LUFS, by pyloudnorm;
    :func:`bs1770_loudness` for signals shorter than one 400 ms block.

    Returns ``-inf`` for silence (every block below the absolute gate).
    """
    import pyloudnorm

    x = audio.detach().to("cpu", torch.float64).numpy()
    if x.shape[-1] <= int(round(_BLOCK_S * sample_rate)) or not np.any(x):
        return bs1770_loudness(audio, sample_rate)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's mean of an empty gated set, for near silence
        loudness = pyloudnorm.Meter(sample_rate).integrated_loudness(np.ascontiguousarray(x.T))
    return float(loudness) if np.isfinite(loudness) else -math.inf


def bs1770_loudness(audio: torch.Tensor, sample_rate: float) -> float:
    """Integrated loudness of ``audio`` ``[channels, samples]`` in LUFS by this module's BS.1770-4 code
    (see the module's description); a signal shorter than one 400 ms block is measured as one block.

    Returns ``-inf`` for silence (every block below the absolute gate).
    """
    from scipy.signal import sosfilt

    x = audio.detach().to("cpu", torch.float64).numpy()
    weighted = sosfilt(k_weighting(sample_rate), x, axis=-1) ** 2
    block = int(round(_BLOCK_S * sample_rate))
    hop = max(int(round(block * (1 - _OVERLAP))), 1)
    if weighted.shape[-1] <= block:
        powers = weighted.mean(axis=-1).sum(axis=0, keepdims=True)
    else:
        starts = range(0, weighted.shape[-1] - block + 1, hop)
        cumulative = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(weighted, axis=-1)], axis=-1)
        powers = np.array([(cumulative[:, s + block] - cumulative[:, s]).sum() / block for s in starts])
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(powers)
    kept = powers[loudness > _ABSOLUTE_GATE]
    if kept.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(kept.mean()) + _RELATIVE_GATE
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10 * np.log10(kept) > relative]
    return float(-0.691 + 10 * math.log10(kept.mean()))


def snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` (same shape), in dB:
    ``10 log10(sum reference^2 / sum (estimate - reference)^2)``; ``inf`` when they are equal."""
    ref = reference.detach().to("cpu", torch.float64)
    error = float((estimate.detach().to("cpu", torch.float64) - ref).pow(2).sum())
    power = float(ref.pow(2).sum())
    if error == 0:
        return math.inf
    return 10 * math.log10(max(power, 1e-300) / error)


def log_spectral_distance_db(estimate: torch.Tensor, reference: torch.Tensor, n_fft: int = 2048,
                             sample_rate: float | None = None,
                             band_hz: tuple[float, float] = AUDIBLE_BAND_HZ) -> float:
    """Log-spectral distance in dB: per STFT frame (Hann, hop ``n_fft / 4``) the RMS over
    frequency of the difference of the power spectra in dB, averaged over frames and channels.

    With ``sample_rate`` only the bins inside ``band_hz`` count (by default the audible
    20 Hz - 20 kHz): what a 96 kHz file holds above hearing, or a DC offset, is not heard
    and would otherwise dominate the figure.

    Args:
        estimate, reference: ``[channels, samples]``.
        n_fft: frame length.
        sample_rate: in Hz (``None``: every bin counts).
        band_hz: the lowest and highest frequency that count, in Hz.
    """
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def power_db(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to("cpu", torch.float64).reshape(-1, x.shape[-1])
        spec = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs().pow(2)
        return 10 * torch.log10(spec + 1e-10)

    difference = power_db(estimate) - power_db(reference)
    if sample_rate is not None:
        freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
        difference = difference[:, (freqs >= band_hz[0]) & (freqs <= band_hz[1])]
    return float(difference.pow(2).mean(dim=-2).sqrt().mean())


def peak_dbfs(audio: torch.Tensor) -> float:
    """The sample peak of ``audio`` in dB relative to full scale (``-inf`` for silence)."""
    peak = float(audio.detach().abs().max()) if audio.numel() else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def audio_metrics(mix: torch.Tensor, target: torch.Tensor, sample_rate: float) -> dict[str, float]:
    """``snr_db``, ``log_spectral_distance_db`` (against ``target``, over the audible band),
    ``loudness_lufs``, ``peak_dbfs`` of ``mix``.

    Args:
        mix, target: ``[channels, samples]``.
        sample_rate: in Hz.
    """
    return {
        "snr_db": snr_db(mix, target),
        "log_spectral_distance_db": log_spectral_distance_db(mix, target, sample_rate=sample_rate),
        "loudness_lufs": integrated_loudness(mix, sample_rate),
        "peak_dbfs": peak_dbfs(mix),
    }
