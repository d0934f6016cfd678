"""The one multi-resolution STFT loss: spectral convergence plus log-magnitude L1.

Fitting a console (:class:`SpectralLoss`, against one fixed target) and
training a predictor (:func:`multi_resolution_stft_loss`, a batch against a
batch) use the same distance. Hann windows, hop a quarter of the size; each
channel is transformed on its own, so that level and panning both count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["stft_magnitude", "spectral_distance", "multi_resolution_stft_loss", "SpectralLoss"]


def stft_magnitude(x: torch.Tensor, n: int) -> torch.Tensor:
    """``|STFT|`` of every row of ``x`` (``[rows, samples]`` or ``[samples]``): ``[rows, n // 2 + 1, frames]``."""
    window = torch.hann_window(n, dtype=x.dtype, device=x.device)
    return torch.stft(x, n, hop_length=n // 4, window=window, return_complex=True).abs()


def spectral_distance(magnitude: torch.Tensor, target: torch.Tensor, examples: int = 1) -> torch.Tensor:
    """Spectral convergence ``||S - T|| / ||T||`` per example, averaged, plus the mean log-magnitude L1.

    Args:
        magnitude, target: magnitudes of one shape whose first dimension holds
            ``examples`` equal blocks (each example's channels).
        examples: how many examples; a quiet one counts as much as a loud one.

    Returns:
        A scalar.
    """
    difference = (magnitude - target).reshape(examples, -1)
    convergence = difference.norm(dim=1) / target.reshape(examples, -1).norm(dim=1).clamp_min(1e-8)
    log_distance = (torch.log(magnitude + 1e-5) - torch.log(target + 1e-5)).abs().mean()
    return convergence.mean() + log_distance


def multi_resolution_stft_loss(prediction: torch.Tensor, target: torch.Tensor,
                               fft_sizes: Sequence[int] = (256, 1024, 4096)) -> torch.Tensor:
    """Spectral convergence plus log-magnitude L1, averaged over STFT sizes and examples.

    Each example and channel is compared on its own; the spectral convergence
    is taken per example, so a quiet example counts as much as a loud one.

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
        total = total + spectral_distance(stft_magnitude(flat_p, n), stft_magnitude(flat_t, n), batch)
    return total / len(sizes)


class SpectralLoss:
    """Multi-resolution STFT loss against a fixed target, whose spectra are computed once.

    Args:
        target: ``[channels, samples]``.
        fft_sizes: STFT sizes (hop a quarter, Hann window).
    """

    def __init__(self, target: torch.Tensor, fft_sizes: tuple[int, ...] = (256, 1024, 4096)) -> None:
        self.fft_sizes = fft_sizes
        self._targets = [stft_magnitude(target, n) for n in fft_sizes]

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """The loss of ``y`` (``[channels, samples]``), a scalar."""
        total = y.new_zeros(())
        for n, target in zip(self.fft_sizes, self._targets):
            total = total + spectral_distance(stft_magnitude(y, n), target)
        return total / len(self.fft_sizes)

    def residuals(self, y: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted residuals whose half sum of squares has the loss's gradient at ``centre`` (for Gauss-Newton).

        Per STFT size, the magnitude differences ``e`` and the log-magnitude
        differences ``d``, weighted as iteratively reweighted least squares
        weights them at ``centre``: ``e / sqrt(|e_c| |target|)`` and ``d / sqrt(n (|d_c| + 0.01))``
        (``n`` log-magnitude bins), so that near ``centre`` half their sum of squares
        changes as the loss does (its spectral-convergence norm and its L1 log distance).

        Args:
            y: ``[channels, samples]``.
            centre: the mix the weights are taken at (default: ``y``).

        Returns:
            ``[residuals]``, in ``y``'s dtype.
        """
        parts = []
        reference = y if centre is None else centre
        for n, target in zip(self.fft_sizes, self._targets):
            magnitude = stft_magnitude(y, n)
            at = magnitude if centre is None else stft_magnitude(reference, n)
            target_norm = torch.linalg.norm(target).clamp_min(1e-8)
            centre_norm = torch.linalg.norm(at - target).clamp_min(1e-8 * target_norm)
            parts.append(((magnitude - target) / (centre_norm * target_norm).sqrt()).flatten())
            log_target = torch.log(target + 1e-5)
            weight = ((torch.log(at + 1e-5) - log_target).abs() + 0.01) * target.numel()
            parts.append(((torch.log(magnitude + 1e-5) - log_target) / weight.sqrt()).flatten())
        return torch.cat(parts) / len(self.fft_sizes) ** 0.5
