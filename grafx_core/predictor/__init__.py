"""Neural parameter predictors: audio in, a parameter tree for a render plan out.

:class:`ParameterPredictor` builds one head per processor type and parameter
of a graph (:mod:`.layout`) on a small audio encoder (:mod:`.encoder`);
:class:`PredictorTrainer` trains it with clipping, per-step seeds, a progress
bar and resumable checkpoints; :func:`multi_resolution_stft_loss` compares
rendered audio.
"""

from .encoder import AudioEncoder, LogMel, mel_filterbank
from .layout import HeadSpec, declared_ranges, head_specs
from .loss import multi_resolution_stft_loss
from .predictor import ParameterPredictor
from .training import CHECKPOINT_FORMAT, PredictorTrainer, step_generator

__all__ = [
    "ParameterPredictor",
    "AudioEncoder",
    "LogMel",
    "mel_filterbank",
    "HeadSpec",
    "head_specs",
    "declared_ranges",
    "multi_resolution_stft_loss",
    "PredictorTrainer",
    "step_generator",
    "CHECKPOINT_FORMAT",
]
