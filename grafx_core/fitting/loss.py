"""The loss a console fit minimises: a multi-resolution STFT distance to the target mix (the core's one loss)."""

from __future__ import annotations

from ..spectral_loss import SpectralLoss

__all__ = ["SpectralLoss"]
