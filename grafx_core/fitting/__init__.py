"""Fitting a mixing console to a target mix: the machinery ``grafx-core fit`` and ``grafx-core demo`` share.

- :mod:`~grafx_core.fitting.console`: a console graph for named stems from any registered processor names;
- :mod:`~grafx_core.fitting.stems`: stems and a target read from WAVs and conformed (rate, length, channels);
- :mod:`~grafx_core.fitting.latent`, :mod:`~grafx_core.fitting.loss`, :mod:`~grafx_core.fitting.loop`:
  the optimisation (latent parameter spaces, a multi-resolution STFT loss, Adam with early stopping and Ctrl-C);
- :mod:`~grafx_core.fitting.optimizers`, :mod:`~grafx_core.fitting.gauss_newton`, :mod:`~grafx_core.fitting.renders`:
  other fit backends (Gauss-Newton on black boxes, CMA-ES, NGOpt, random search) and the render count they share;
- :mod:`~grafx_core.fitting.metrics`: SNR, log-spectral distance, BS.1770 loudness, peak;
- :mod:`~grafx_core.fitting.pruning`: gate every node and prune what the mix does not need;
- :mod:`~grafx_core.fitting.outputs`, :mod:`~grafx_core.fitting.report`, :mod:`~grafx_core.fitting.session`:
  the results folder, the report and plots, and one fit from start to files.
"""

from .console import CONSOLES, Console, ConsoleEffects, build_console
from .latent import LatentParameters, is_black_box, is_log_scaled
from .loop import FitResult, fit
from .loss import SpectralLoss
from .metrics import audio_metrics, integrated_loudness, log_spectral_distance_db, snr_db
from .optimizers import OPTIMIZERS, optimise
from .progress import LossLog, Progress
from .renders import RenderBudget
from .session import INTERRUPTED, FitJob, FitOutcome, fit_console
from .stems import Multitrack, read_multitrack

__all__ = [
    "CONSOLES", "Console", "ConsoleEffects", "build_console",
    "LatentParameters", "is_black_box", "is_log_scaled",
    "FitResult", "fit", "SpectralLoss", "LossLog", "Progress",
    "OPTIMIZERS", "optimise", "RenderBudget",
    "audio_metrics", "integrated_loudness", "log_spectral_distance_db", "snr_db",
    "INTERRUPTED", "FitJob", "FitOutcome", "fit_console",
    "Multitrack", "read_multitrack",
]
