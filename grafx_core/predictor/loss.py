"""The multi-resolution STFT loss used to train predictors through rendered audio (the core's one loss)."""

from __future__ import annotations

from ..spectral_loss import multi_resolution_stft_loss

__all__ = ["multi_resolution_stft_loss"]
