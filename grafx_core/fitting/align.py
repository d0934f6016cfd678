"""Line a target mix up with its stems before a fit: a mix a few milliseconds late ruins a waveform match.

The lag is the peak of the phase-transform weighted cross-correlation
(GCC-PHAT) of the target's mid channel with the sum of the stems' mid
channels: whitening each frequency makes the peak sharp and leaves it where
it is when the mix was equalised, compressed or sent through a reverb. Lags
under a quarter of a millisecond are left alone: an equaliser's phase in the
target moves the peak by a sample or two, and the console's own equaliser
reproduces that. A longer lag is a late or early export, and the
target is then shifted by that many samples (zeros where it moved away from
an end), so the stems, and the render command that replays them, stay as
they were given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Alignment", "estimate_lag", "shift", "align_target"]

_WHITENING_FLOOR = 1e-3  # relative to the largest cross-spectrum bin: silent bins are not amplified into noise


@dataclass(frozen=True)
class Alignment:
    """How a target was lined up with its stems.

    Attributes:
        lag_samples: how late the target was (negative: early); when applied, it was moved this much earlier.
        lag_ms: the same in milliseconds.
        confidence: the correlation peak over the highest one an eighth of the search range away (>= 1;
            about 1 means there was no clear peak and the lag is a guess).
        applied: whether the target was shifted (lags under ``min_ms`` are not).
    """

    lag_samples: int
    lag_ms: float
    confidence: float
    applied: bool

    def note(self) -> str:
        """One line for the fit's notes."""
        if not self.applied:
            return (f"target: in time with the stems (cross-correlation peak at {self.lag_ms:.2f} ms, "
                    f"confidence {self.confidence:.1f})")
        when = "late" if self.lag_samples > 0 else "early"
        return (f"target: {abs(self.lag_ms):.2f} ms ({abs(self.lag_samples)} samples) {when} against the stems; "
                f"shifted to line up (confidence {self.confidence:.1f}; --no-align keeps it as it is)")


def estimate_lag(stems: torch.Tensor, target: torch.Tensor, max_lag: int) -> tuple[int, float]:
    """How many samples ``target`` lags the sum of ``stems`` (GCC-PHAT; see the module's description).

    Args:
        stems: ``[stems, channels, samples]``.
        target: ``[channels, samples]``, as long as the stems.
        max_lag: the largest lag searched, either way, in samples.

    Returns:
        ``(lag, confidence)``: the lag in samples (positive: the target is late) and the peak's
        ratio to the highest correlation more than ``max_lag // 8`` samples (at least one) away.
    """
    reference = stems.detach().to("cpu", torch.float64).sum(dim=0).mean(dim=0)
    mix = target.detach().to("cpu", torch.float64).mean(dim=0)
    n = 1 << (reference.shape[-1] + max_lag).bit_length()
    cross = torch.fft.rfft(mix, n) * torch.fft.rfft(reference, n).conj()
    magnitude = cross.abs()
    cross = cross / magnitude.clamp_min(_WHITENING_FLOOR * float(magnitude.max().clamp_min(1e-300)))
    correlation = torch.fft.irfft(cross, n)
    lags = torch.cat([correlation[-max_lag:], correlation[:max_lag + 1]]) if max_lag else correlation[:1]
    peak = int(lags.argmax())
    lag = peak - max_lag
    guard = max(max_lag // 8, 1)
    others = torch.cat([lags[:max(peak - guard, 0)], lags[peak + guard + 1:]])
    best = float(lags[peak])
    second = float(others.max()) if others.numel() else 0.0
    confidence = best / second if second > 0 else float("inf")
    return lag, confidence


def shift(audio: torch.Tensor, lag: int) -> torch.Tensor:
    """``audio`` ``[channels, samples]`` moved ``lag`` samples earlier (later when negative), zero-filled,
    same length."""
    if lag == 0:
        return audio.clone()
    out = torch.zeros_like(audio)
    if lag > 0:
        out[..., :-lag] = audio[..., lag:]
    else:
        out[..., -lag:] = audio[..., :lag]
    return out


def align_target(stems: torch.Tensor, target: torch.Tensor, sample_rate: int,
                 max_ms: float = 50.0, min_ms: float = 0.25) -> tuple[torch.Tensor, Alignment]:
    """The target shifted to line up with the stems, and how far it moved.

    Args:
        stems: ``[stems, channels, samples]``.
        target: ``[channels, samples]``.
        sample_rate: in Hz.
        max_ms: the largest lag searched, either way, in milliseconds.
        min_ms: shorter lags are reported but not applied (see the module's description).
    """
    max_lag = min(int(round(max_ms * 1e-3 * sample_rate)), target.shape[-1] // 2)
    lag, confidence = estimate_lag(stems, target, max_lag)
    lag_ms = 1e3 * lag / sample_rate
    applied = abs(lag_ms) >= min_ms
    return (shift(target, lag) if applied else target), Alignment(lag, lag_ms, confidence, applied)
