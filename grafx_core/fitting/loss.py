"""The loss a console fit minimises: a multi-resolution STFT distance to the target mix."""

from __future__ import annotations

import torch

__all__ = ["SpectralLoss"]


class SpectralLoss:
    """Multi-resolution STFT loss against a fixed target: spectral convergence plus log-magnitude L1.

    Each channel is compared on its own, so that level and panning both count.

    Args:
        target: ``[channels, samples]``.
        fft_sizes: STFT sizes (hop a quarter, Hann window).
    """

    def __init__(self, target: torch.Tensor, fft_sizes: tuple[int, ...] = (256, 1024, 4096)) -> None:
        self.fft_sizes = fft_sizes
        self._targets = [self._magnitude(target, n) for n in fft_sizes]

    @staticmethod
    def _magnitude(x: torch.Tensor, n: int) -> torch.Tensor:
        window = torch.hann_window(n, dtype=x.dtype, device=x.device)
        return torch.stft(x, n, hop_length=n // 4, window=window, return_complex=True).abs()

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """The loss of ``y`` (``[channels, samples]``), a scalar."""
        total = y.new_zeros(())
        for n, target in zip(self.fft_sizes, self._targets):
            magnitude = self._magnitude(y, n)
            convergence = torch.linalg.norm(magnitude - target) / torch.linalg.norm(target).clamp_min(1e-8)
            log_distance = (torch.log(magnitude + 1e-5) - torch.log(target + 1e-5)).abs().mean()
            total = total + convergence + log_distance
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
            magnitude = self._magnitude(y, n)
            at = magnitude if centre is None else self._magnitude(reference, n)
            target_norm = torch.linalg.norm(target).clamp_min(1e-8)
            centre_norm = torch.linalg.norm(at - target).clamp_min(1e-8 * target_norm)
            parts.append(((magnitude - target) / (centre_norm * target_norm).sqrt()).flatten())
            log_target = torch.log(target + 1e-5)
            weight = ((torch.log(at + 1e-5) - log_target).abs() + 0.01) * target.numel()
            parts.append(((torch.log(magnitude + 1e-5) - log_target) / weight.sqrt()).flatten())
        return torch.cat(parts) / len(self.fft_sizes) ** 0.5
