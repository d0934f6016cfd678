"""A small audio encoder: log-mel spectrogram, 1-D convolutions over time, statistics pooling."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import PredictorError

__all__ = ["mel_filterbank", "LogMel", "AudioEncoder"]


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: float, low_hz: float = 20.0,
                   high_hz: float | None = None) -> torch.Tensor:
    """Triangular mel filters (HTK mel scale), ``[n_mels, n_freqs]`` float32.

    Args:
        n_freqs: STFT bins from 0 Hz to Nyquist (``n_fft // 2 + 1``).
        n_mels: filters, centred at equally spaced mels from ``low_hz`` to ``high_hz``.
        sample_rate: in Hz.
        low_hz, high_hz: the band covered (``high_hz`` defaults to Nyquist).

    Each filter peaks at 1 at its centre and falls to 0 at its neighbours' centres.
    """
    high_hz = sample_rate / 2 if high_hz is None else high_hz
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges_mel = torch.linspace(float(_hz_to_mel(torch.tensor(low_hz))), float(_hz_to_mel(torch.tensor(high_hz))),
                               n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """``[batch, channels, samples]`` audio to ``[batch, channels * n_mels, frames]`` log-mel energies.

    Energies are ``log10(mel + 1e-5)`` of the power spectrum of a Hann-windowed
    STFT, so loudness is kept (a compressor's setting depends on it).

    Args:
        sample_rate: in Hz.
        n_fft: STFT size (hop a quarter of it).
        n_mels: mel bands.
    """

    def __init__(self, sample_rate: float, n_fft: int = 1024, n_mels: int = 64) -> None:
        super().__init__()
        self.n_fft, self.hop = int(n_fft), int(n_fft) // 4
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(self.n_fft // 2 + 1, n_mels, sample_rate), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``[batch, channels, samples]`` (more than ``n_fft // 2`` samples) to
        ``[batch, channels * n_mels, frames]``, in the filters' dtype."""
        batch, channels, samples = audio.shape
        flat = audio.reshape(batch * channels, samples).to(self.window.dtype)
        spec = torch.stft(flat, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        mel = torch.matmul(self.filters, spec.abs().square())
        return torch.log10(mel + 1e-5).reshape(batch, channels * mel.shape[1], mel.shape[2])


class AudioEncoder(nn.Module):
    """Audio to one embedding per example: log-mel, strided 1-D convolutions, mean and std over time
    of both the convolutions' features and the log-mel bands.

    Args:
        channels: audio channels it takes.
        sample_rate: in Hz.
        n_fft, n_mels: the log-mel front end (:class:`LogMel`).
        width: convolution channels.
        layers: convolution blocks (each halves the frame rate).
        embedding: size of the output.

    Group normalisation, not batch normalisation: an example's embedding does
    not depend on the rest of its batch (so results do not change with the
    batch size or across data-parallel workers).
    """

    def __init__(self, channels: int = 1, sample_rate: float = 44100.0, *, n_fft: int = 1024, n_mels: int = 64,
                 width: int = 128, layers: int = 4, embedding: int = 128) -> None:
        super().__init__()
        self.channels, self.embedding = int(channels), int(embedding)
        self.front = LogMel(sample_rate, n_fft, n_mels)
        blocks: list[nn.Module] = []
        size = self.channels * n_mels
        for _ in range(layers):
            blocks += [nn.Conv1d(size, width, 3, stride=2, padding=1), nn.GroupNorm(8 if width % 8 == 0 else 1, width),
                       nn.GELU()]
            size = width
        self.body = nn.Sequential(*blocks)
        self.project = nn.Linear(2 * width + 2 * self.channels * n_mels, self.embedding)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Encode ``audio`` ``[batch, channels, samples]`` into ``[batch, embedding]``.

        Raises:
            PredictorError: the audio is not 3-D with the encoder's channel count.
        """
        if audio.dim() != 3 or audio.shape[1] != self.channels:
            raise PredictorError(
                f"AudioEncoder: expected audio [batch, {self.channels}, samples], got {list(audio.shape)}"
            )
        # log10 energies span about -5 (the floor) to 5 (full scale): bring them to about [-1, 1].
        spectrum = self.front(audio) / 5.0
        features = self.body(spectrum)
        # The group norms remove each example's level; the band statistics bring level and spectral
        # envelope back, which is what gains, compressors and EQs are set from.
        pooled = torch.cat([features.mean(-1), features.std(-1, unbiased=False),
                            spectrum.mean(-1), spectrum.std(-1, unbiased=False)], dim=-1)
        return self.project(pooled).to(audio.dtype)

