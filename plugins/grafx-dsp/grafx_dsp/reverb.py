"""A filtered-noise reverb: band-wise decaying noise, mid/side, applied by FFT convolution."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._base import DSPProcessor, require_count
from ._interp import interpolation_matrix
from ._ranges import Range
from ._stream import StatefulConvolution
from .fft import fft_convolve

__all__ = ["NoiseReverb", "STFTMaskedNoiseReverb"]

LN_1000 = math.log(1000.0)
"""An amplitude falls by 60 dB, a factor 1000, over one decay time (T60)."""


class NoiseReverb(StatefulConvolution, DSPProcessor):
    """Reverb whose impulse response is shaped noise, separately for mid and side.

    The impulse response is built in the STFT domain: a fixed white noise
    (seeded, variance ``1 / sample_rate`` per sample, so unit energy per
    second) is multiplied, bin by bin and frame by frame, by
    ``10 ** (gain_db / 20) * exp(-ln(1000) * t / decay_s)``, where ``gain_db``
    and ``1 / decay_s`` are interpolated linearly over log-frequency between
    ``n_bands`` log-spaced band centres. The mid and side responses become
    ``left = mid + side`` and ``right = mid - side``, and each input channel is
    convolved with its response by FFT. The output is wet only (wrap it in
    :class:`grafx_dsp.containers.DryWet` for a dry/wet mix).

    Args:
        n_bands: number of bands, centres log-spaced from 62.5 Hz to
            ``min(16 kHz, 0.45 * sample_rate)``.
        ir_seconds: length of the impulse response; decays longer than about
            a third of it are cut short.
        n_fft: STFT size (hop ``n_fft / 2``, Hann window): the envelope's
            time step is ``n_fft / 2`` samples.
        seed: seed of the noise (the same for every node and call).
        sample_rate: in Hz.

    Parameters (row 0 mid, row 1 side):
        gain_db ``[nodes, 2, n_bands]``: range [-60, 12] dB, default 0 for mid
        and -6 for side.
        decay_s ``[nodes, 2, n_bands]``: 60 dB decay time, range [0.05, 10] s, default 1.

    Signals: mono or stereo in, stereo out.
    """

    inlet_channels = (1, 2)

    def __init__(self, n_bands: int = 8, ir_seconds: float = 2.0, n_fft: int = 512,
                 seed: int = 0, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        require_count("NoiseReverb", "n_bands", n_bands, 1, 256)
        require_count("NoiseReverb", "n_fft", n_fft, 16, 1 << 16)
        require_count("NoiseReverb", "seed", seed, 0, 2**63 - 1)
        if n_fft % 2:
            raise ValueError(f"NoiseReverb: n_fft must be even and >= 16, got {n_fft!r}")
        if not isinstance(ir_seconds, (int, float)) or isinstance(ir_seconds, bool) or not 0 < ir_seconds <= 60:
            raise ValueError(f"NoiseReverb: ir_seconds must be in (0, 60] s, got {ir_seconds!r}")
        self.n_bands, self.n_fft, self.seed = n_bands, n_fft, seed
        self.hop = self.n_fft // 2
        self.ir_length = max(int(round(ir_seconds * sample_rate)), self.n_fft)
        bins = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
        self.band_hz, self._band_to_bin = self._bands(bins)
        self._noise: dict[tuple, torch.Tensor] = {}
        shape = (2, self.n_bands)
        self.ranges = {
            "gain_db": Range(low=-60.0, high=12.0, default=0.0, floor=-80.0, ceiling=18.0, shape=shape),
            "decay_s": Range(low=0.05, high=10.0, default=1.0, floor=0.02, ceiling=15.0, shape=shape,
                             scale="log"),
        }

    def _bands(self, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Band centres in Hz and the ``[bins, bands]`` interpolation onto the STFT bins."""
        high = min(16000.0, 0.45 * self.sample_rate)
        centres = np.geomspace(62.5, high, self.n_bands) if self.n_bands > 1 else np.array([1000.0])
        return centres, interpolation_matrix(np.log(centres), np.log(np.maximum(bins, centres[0])))

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        params = super().default_parameters(nodes, dtype=dtype, device=device)
        params["gain_db"][:, 1] = -6.0
        return params

    def _window(self, like: torch.Tensor) -> torch.Tensor:
        return torch.hann_window(self.n_fft, dtype=like.dtype, device=like.device)

    def noise_stft(self, like: torch.Tensor) -> torch.Tensor:
        """STFT of the fixed mid and side noises, complex ``[2, n_fft // 2 + 1, frames]``
        (computed once per dtype and device)."""
        key = (like.dtype, like.device)
        if key not in self._noise:
            # A cache filled under inference_mode would hold an inference tensor, which
            # a later call with gradients could not save for its backward pass.
            with torch.inference_mode(False):
                generator = torch.Generator().manual_seed(self.seed)
                noise = torch.randn(2, self.ir_length, generator=generator, dtype=torch.float64)
                noise = (noise / math.sqrt(self.sample_rate)).to(dtype=like.dtype, device=like.device)
                self._noise[key] = torch.stft(noise, self.n_fft, self.hop, window=self._window(noise),
                                              return_complex=True)
        return self._noise[key]

    def impulse_response(self, gain_db: torch.Tensor, decay_s: torch.Tensor,
                         length: int | None = None) -> torch.Tensor:
        """Stereo impulse responses ``[nodes, 2, length]`` from soft-limited parameters
        ``[nodes, 2, n_bands]``: the first ``length`` samples (default and at most
        ``ir_length``), synthesised from only the STFT frames that reach them."""
        length = self.ir_length if length is None else min(length, self.ir_length)
        # Frame m spans samples [(m - 1) hop, (m + 1) hop).
        frames = min(math.ceil(length / self.hop) + 1, 1 + self.ir_length // self.hop)
        noise = self.noise_stft(gain_db)[..., :frames]
        to_bins = torch.as_tensor(self._band_to_bin, dtype=gain_db.dtype, device=gain_db.device)
        log_gain = (gain_db @ to_bins.T) * (math.log(10.0) / 20.0)  # [nodes, 2, bins]
        decay_rate = (1.0 / decay_s) @ to_bins.T * LN_1000
        frame_s = torch.arange(noise.shape[-1], dtype=gain_db.dtype, device=gain_db.device) * (
            self.hop / self.sample_rate)
        envelope = torch.exp(log_gain.unsqueeze(-1) - decay_rate.unsqueeze(-1) * frame_s)
        # A real mask times (re, im) pairs costs half a complex product.
        spectrum = torch.view_as_complex(torch.view_as_real(noise) * envelope.unsqueeze(-1))
        nodes = spectrum.shape[0]
        mid_side = torch.istft(spectrum.reshape(nodes * 2, *spectrum.shape[2:]), self.n_fft, self.hop,
                               window=self._window(gain_db), length=length)
        mid, side = mid_side.reshape(nodes, 2, -1).unbind(dim=1)
        return torch.stack([mid + side, mid - side], dim=1)

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor, decay_s: torch.Tensor) -> torch.Tensor:
        self.check_channels(x)
        # The first `samples` outputs only need the response's first `samples` samples.
        response = self.impulse_response(self.limit("gain_db", gain_db), self.limit("decay_s", decay_s),
                                         length=x.shape[-1])
        return fft_convolve(x, response, mode="causal")

    def stream_kernel(self, x: torch.Tensor, gain_db: torch.Tensor, decay_s: torch.Tensor) -> torch.Tensor:
        """The whole stereo impulse response, ``[nodes, 2, ir_length]``, for block-wise renders."""
        return self.impulse_response(self.limit("gain_db", gain_db), self.limit("decay_s", decay_s))

    def extra_repr(self) -> str:
        return (f"n_bands={self.n_bands}, ir_length={self.ir_length}, n_fft={self.n_fft}, "
                f"seed={self.seed}, sample_rate={self.sample_rate:g}")


class STFTMaskedNoiseReverb(NoiseReverb):
    """A :class:`NoiseReverb` masked bin by bin: one gain and one decay time per STFT bin.

    The noise's STFT is multiplied by ``10 ** (gain_db / 20) * exp(-ln(1000)
    * t / decay_s)`` with a separate ``gain_db`` and ``decay_s`` for each of
    the ``n_fft // 2 + 1`` bins (GRAFX's STFT-masked noise reverb, in natural
    units): the finest spectral control over the response, at
    ``2 * (n_fft // 2 + 1)`` values per parameter per node.

    Args:
        ir_seconds, n_fft, seed, sample_rate: as :class:`NoiseReverb`.

    Parameters (row 0 mid, row 1 side):
        gain_db ``[nodes, 2, n_fft // 2 + 1]``: range [-60, 12] dB, default 0
        for mid and -6 for side.
        decay_s ``[nodes, 2, n_fft // 2 + 1]``: 60 dB decay time, range
        [0.05, 10] s, default 1.

    Signals: mono or stereo in, stereo out.
    """

    def __init__(self, ir_seconds: float = 2.0, n_fft: int = 256, seed: int = 0,
                 sample_rate: float = 44100.0) -> None:
        super().__init__(n_bands=n_fft // 2 + 1, ir_seconds=ir_seconds, n_fft=n_fft, seed=seed,
                         sample_rate=sample_rate)

    def _bands(self, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return bins, np.eye(len(bins))
