"""The estimator interface and the choice of input-signal gradient.

Every estimator returns vector-Jacobian products: the incoming gradient of the
output is multiplied in, never dropped. The gradient with respect to the input
signal is chosen per processor, independently of the parameter estimator
(``signal_gradient=``):

``"spectral-ratio"``, ``"fft-ratio"``, ``"smooth-gain"``
    The adjoint of a linear stand-in fitted to what the forward pass saw (a
    short-time spectral ratio, a whole-signal FFT ratio, a smoothed
    time-varying gain; see :mod:`grafx_core.estimators.linearisation`). No
    extra render.
``"diagonal"``
    The per-sample derivative of a memoryless effect (up to a latency of a few
    samples) from two extra renders per node at randomly perturbed inputs (a central difference).
    Exact for waveshapers and gains, wrong for anything with more memory.
``"gain-tangent"``, ``"tangent-ratio"``, ``"band-tangent"``, ``"fine-band-tangent"``, ``"wide-band-tangent"``
    Stand-ins that follow the effect's tangent, not its secant (see
    :mod:`grafx_core.estimators.tangent`): a time-varying gain and that gain's
    reaction to level, from one extra render per node at a scaled input
    (dynamics processors); the short-time spectral ratio of the effect's
    directional derivative along its input, from two (a central difference);
    or that ratio corrected to the effect's Jacobian-vector products along two
    bands of the input, from four extra renders per node (effects with filters
    around a nonlinearity), at 1 % of the input's level or, ``"fine-band-tangent"``,
    at 0.015 % (an effect whose response bends within a fraction of a
    percent: a hard-knee, fast-attack limiter), or, ``"wide-band-tangent"``, at
    5 % along bands split without wrap-round (an effect driven far into clipping).
``"straight-through"``
    Identity: the first inlet receives the output's gradient unchanged
    (output and input must have the same shape). Exact for effects close to
    the identity, biased otherwise.
``"spsa"``
    Simultaneous perturbation of every input sample value: ``signal_samples``
    pairs of extra renders per node. Unbiased on smooth effects, but a
    44,100-sample signal is a 44,100-parameter problem: with a few samples its
    estimate is almost orthogonal to the true gradient and far too large
    (cosine near 0, norms 100-10,000 times off in ``bench/seam.py``). Kept for
    short signals and for comparison.
``"proxy"``
    The neural proxy's gradient (only with the ``neural-proxy`` estimator).
``"none"``
    Stop: the input signal gets no gradient. Cheapest; right when nothing
    upstream is trained.
``"auto"`` (the default)
    Straight-through for the straight-through estimator and the proxy for the
    neural proxy; for the others, the processor picks one of the stand-ins above
    (``"fine-band-tangent"`` only where its response is rough) or
    ``"straight-through"`` at its first call whose input wants a gradient,
    from a probe of the upstream gradient each passes on
    (:func:`~grafx_core.estimators.auto.probe_signal_gradient`),
    keeps it in its ``signal_gradient`` attribute, and probes again when its
    parameters move far. Where nothing scores well the best estimate is passed
    on with a warning stating its measured quality (or, with
    ``strict_signal_gradient=True``, the call raises). Calls whose input wants
    no gradient cost nothing extra.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import EstimatorError
from ..processor import SIGNAL_GRADIENTS
from ..registry._default import get_estimator
from ._rules import GradientRule, IdentitySignalRule, SignalSPSARule, render_estimated
from .auto import CALIBRATIONS, LinearisedSignalRule, probe_generator, probe_signal_gradient
from .linearisation import LINEARISATIONS
from .tangent import TANGENTS, TangentSignalRule
from .target import RenderTarget

__all__ = ["Estimator", "SIGNAL_GRADIENTS", "resolve_estimator"]


def _positive(owner: str, name: str, value: float, integer: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not value > 0 or not np.isfinite(value):
        kind = "a positive integer" if integer else "a positive finite number"
        raise EstimatorError(f"{owner}: {name} must be {kind}, got {value!r}")


class Estimator(ABC):
    """Base class of gradient estimators.

    Args:
        signal_samples: perturbation pairs per node when the signal gradient
            is ``"spsa"``.
        signal_step: size of the signal perturbations: in sample-value units for
            ``"spsa"``, relative to the input's RMS for ``"diagonal"`` and the
            automatic choice's probe.
        seed: seeds the estimator's own random generator; every call draws a
            fresh child generator from it, so runs are reproducible and the
            global RNGs are never touched. ``None`` seeds from the OS.
        strict_signal_gradient: where the automatic signal-gradient choice finds no
            stand-in it trusts, raise :class:`~grafx_core.errors.SignalGradientQualityError`
            instead of passing the best one on with a warning.
        signal_calibration: when the automatic choice's input gradient is scaled to the norm its probe
            measured: ``"agreeing"`` (where random output gradients see the same error as a log-spectral
            loss's), ``"loss"`` (wherever the loss's see one) or ``"off"`` (see
            :data:`~grafx_core.estimators.auto.CALIBRATIONS`).

    Raises:
        EstimatorError: a bad option.
    """

    kind: ClassVar[str] = "none"
    """The ``gradient_kind`` a processor using this estimator reports."""
    default_signal_gradient: ClassVar[str] = "auto"
    """What ``signal_gradient="auto"`` means for this estimator (``"auto"``: a probe decides)."""

    def __init__(self, *, signal_samples: int = 4, signal_step: float = 1e-3, seed: int | None = None,
                 strict_signal_gradient: bool = False, signal_calibration: str = "agreeing") -> None:
        owner = type(self).__name__
        _positive(owner, "signal_samples", signal_samples, integer=True)
        _positive(owner, "signal_step", signal_step)
        self.signal_samples = int(signal_samples)
        self.signal_step = float(signal_step)
        self.seed = seed
        self.strict_signal_gradient = bool(strict_signal_gradient)
        if signal_calibration not in CALIBRATIONS:
            raise EstimatorError(f"{owner}: signal_calibration must be one of {CALIBRATIONS}, got {signal_calibration!r}")
        self.signal_calibration = signal_calibration
        self._seeds = np.random.SeedSequence(seed)

    def generator(self) -> np.random.Generator:
        """A fresh generator for one call, the next child of the estimator's seed."""
        return np.random.default_rng(self._seeds.spawn(1)[0])

    def resolve_signal_gradient(self, choice: str) -> str:
        """Turn ``"auto"`` into this estimator's default and check the choice.

        The result is ``"auto"`` where the estimator leaves the choice to a probe.

        Raises:
            EstimatorError: ``choice`` is not ``"auto"`` or one of :data:`SIGNAL_GRADIENTS`,
                or it needs something this estimator lacks (``"proxy"``).
        """
        resolved = self.default_signal_gradient if choice == "auto" else choice
        if resolved not in SIGNAL_GRADIENTS and resolved != "auto":
            raise EstimatorError(
                f"{type(self).__name__}: signal_gradient {choice!r} is not 'auto' or one of {SIGNAL_GRADIENTS}"
            )
        if resolved == "proxy" and self.kind != "neural-proxy":
            raise EstimatorError(
                f"{type(self).__name__}: signal_gradient 'proxy' needs the neural-proxy estimator; "
                f"choose one of {[g for g in SIGNAL_GRADIENTS if g != 'proxy']}"
            )
        return resolved

    @abstractmethod
    def parameter_rule(self, target: RenderTarget) -> GradientRule | None:
        """The rule giving the parameters' VJP for one call (``None``: no renders needed)."""

    def signal_rule(self, choice: str, target: RenderTarget) -> GradientRule | None:
        """The rule giving the input signals' VJP for one call, per ``choice``."""
        if choice == "straight-through":
            return IdentitySignalRule()
        if choice == "spsa":
            return SignalSPSARule(self.signal_samples, self.signal_step, self.generator())
        if choice in LINEARISATIONS:
            return LinearisedSignalRule(choice, self.signal_step, self.generator())
        if choice in TANGENTS:
            return TangentSignalRule(choice, self.signal_step)
        return None

    def apply(self, target: RenderTarget, signals: Sequence[torch.Tensor], params: torch.Tensor, *,
              signal_gradient: str = "auto") -> torch.Tensor:
        """Render ``target`` with gradients from this estimator.

        Args:
            target: the processor as a batched render function.
            signals: one ``[N, channels, samples]`` tensor per inlet.
            params: ``[N, columns]`` parameters in the target's column space.
            signal_gradient: see the module documentation. ``"auto"`` left to a
                probe is probed on this call (a processor probes once and keeps the choice).

        Returns:
            ``[N, channels', samples]`` output on the signals' device and dtype,
            whose backward pass gives this estimator's VJPs.

        Raises:
            EstimatorError: a bad option, or a straight-through signal gradient for
                an output whose shape differs from the input's.
        """
        choice = self.resolve_signal_gradient(signal_gradient)
        want_params = params.requires_grad and bool(target.differentiable_columns())
        want_signals = any(s.requires_grad for s in signals)
        if choice == "auto" and want_signals:
            choice = probe_signal_gradient(target, signals, params, step=self.signal_step,
                                            rng=probe_generator()).choice
        p_rule = self.parameter_rule(target) if want_params else None
        s_rule = self.signal_rule(choice, target) if want_signals else None
        y = render_estimated(target, signals, params, p_rule, s_rule)
        if isinstance(s_rule, IdentitySignalRule) and y.shape != signals[0].shape:
            raise EstimatorError(
                f"{target.name}: straight-through signal gradient needs the output shape "
                f"{tuple(y.shape)} to equal the input shape {tuple(signals[0].shape)}; "
                "choose signal_gradient 'spectral-ratio', 'fft-ratio', 'smooth-gain', 'diagonal' or 'none'"
            )
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def resolve_estimator(estimator: Any, **options: Any) -> Estimator:
    """An estimator instance from an instance or a registered name.

    Names go through the registry (:func:`grafx_core.get_estimator`), where
    plugins add estimators to the built-ins.

    Raises:
        EstimatorError: ``estimator`` is neither an :class:`Estimator` nor a name,
            or options were given along with an instance.
    """
    if isinstance(estimator, Estimator):
        if options:
            raise EstimatorError(f"options {sorted(options)} given with an estimator instance {estimator!r}")
        return estimator
    if isinstance(estimator, str):
        made = get_estimator(estimator, **options)
        if not isinstance(made, Estimator):
            raise EstimatorError(f"estimator {estimator!r} made {made!r}, which is not an Estimator")
        return made
    raise EstimatorError(f"expected an Estimator or an estimator name, got {estimator!r}")
