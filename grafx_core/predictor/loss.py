"""The multi-resolution STFT loss used to train predictors through rendered audio."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["multi_resolution_stft_loss"]


def multi_resolution_stft_loss(prediction: torch.Tensor, target: torch.Tensor,
                               fft_sizes: Sequence[int] = (256, 1024, 4096)) -> torch.Tensor:
    """Spectral convergence plus log-magnitude L1, averaged over STFT sizes and examples.

    Each example and channel is compared on its own; the spectral convergence
    ``||S - T|| / ||T||`` is taken per example, so a quiet example counts as
    much as a loud one. Hann windows, hop a quarter of the size.

    Args:
        prediction, target: ``[..., samples]`` of one shape (``[batch, channels, samples]``
            for rendered graphs).
        fft_sizes: STFT sizes; sizes above the signal length are skipped (all
            but the smallest when every size is too long).

    Returns:
        A scalar in ``prediction``'s dtype.

    Raises:
        ValueError: the shapes differ.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"multi_resolution_stft_loss: shapes differ, {list(prediction.shape)} and {list(target.shape)}")
    length = prediction.shape[-1]
    sizes = [n for n in fft_sizes if n <= length] or [min(fft_sizes)]
    batch = prediction.shape[0] if prediction.dim() > 1 else 1
    flat_p, flat_t = prediction.reshape(-1, length), target.reshape(-1, length)
    total = prediction.new_zeros(())
    for n in sizes:
        window = torch.hann_window(n, dtype=prediction.dtype, device=prediction.device)
        spec_p = torch.stft(flat_p, n, n // 4, window=window, return_complex=True).abs()
        spec_t = torch.stft(flat_t, n, n // 4, window=window, return_complex=True).abs()
        difference = (spec_p - spec_t).reshape(batch, -1)
        convergence = difference.norm(dim=1) / spec_t.reshape(batch, -1).norm(dim=1).clamp_min(1e-8)
        log_distance = (torch.log(spec_p + 1e-5) - torch.log(spec_t + 1e-5)).abs().mean()
        total = total + convergence.mean() + log_distance
    return total / len(sizes)
