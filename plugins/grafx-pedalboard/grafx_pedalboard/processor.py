"""A pedalboard built-in effect as a black-box grafx-core processor.

:func:`pedalboard_processor` turns an entry of :data:`~grafx_pedalboard.effects.EFFECTS`
into a :class:`~grafx_core.blackbox.BlackBoxProcessor`: every worker thread
owns one instance of the effect (pedalboard releases the GIL, and serialises
calls on a shared instance), every item sets the instance's controls to the
node's natural values and calls ``process(..., reset=True)``, so that an output
never depends on what ran before, on which thread, or in which order.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pedalboard

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import ParameterError
from grafx_core.estimators import Estimator

from .effects import MP3_SAMPLE_RATES, Effect, get_effect
from .errors import EffectOptionError
from .estimator import settle_gradient_kind

__all__ = ["pedalboard_processor", "effect_specs", "check_sample_rate", "SetAndProcess", "EffectFactory", "Target"]


Target = tuple[tuple[int, ...], str, str]
"""Where a control goes: ``(path, attribute, how)``; ``path`` indexes into nested
containers (``()`` for the effect itself, ``(2, 0)`` for the first plug-in of the
container at position 2), ``how`` is ``"attribute"`` (``setattr``) or ``"raw"``
(an external plug-in parameter's normalised ``raw_value``)."""


class SetAndProcess:
    """Process one item: set each control on its plug-in, then ``process(reset=True)``.

    Effects that carry a control's value over from one call to the next get a
    fresh instance per item from their black box (``instances="per-item"``).
    An automated control (a float32 array, one value per block of ``block``
    samples) is set before each block, and the blocks run through the one
    instance in order: ``reset=True`` before the first, ``reset=False`` after,
    so the effect's state (a reverb's tail, a compressor's envelope) carries
    through the clip.

    Args:
        targets: control name → :data:`Target`.
        block: samples per block of an automated control (the processor's ``control_block``).
    """

    def __init__(self, targets: Mapping[str, Target], block: int = 512) -> None:
        self.targets = dict(targets)
        self.block = block

    def __call__(self, effect: Any, audio: np.ndarray, sample_rate: float, **natural: Any) -> np.ndarray:
        moving = {name: value for name, value in natural.items() if isinstance(value, np.ndarray)}
        if not moving:
            self._set(effect, natural)
            return effect.process(audio, sample_rate, reset=True)
        self._set(effect, {k: v for k, v in natural.items() if k not in moving})
        chunks = []
        for b, start in enumerate(range(0, audio.shape[-1], self.block)):
            self._set(effect, {name: float(values[b]) for name, values in moving.items()})
            chunks.append(effect.process(audio[..., start:start + self.block], sample_rate, reset=b == 0))
        return np.concatenate(chunks, axis=-1)

    def _set(self, effect: Any, natural: Mapping[str, float]) -> None:
        parameters: dict[tuple[int, ...], Any] = {}
        for name, value in natural.items():
            path, attribute, how = self.targets[name]
            plugin = effect
            for index in path:
                plugin = plugin[index]
            if how == "raw":
                if path not in parameters:
                    parameters[path] = plugin.parameters
                parameters[path][attribute].raw_value = value
            else:
                setattr(plugin, attribute, value)


STREAM_PROBE_BLOCKS = (512, 63, 100)
"""Block lengths a fresh instance is run on to see whether it returns every block whole."""


def streams_in_blocks(factory: Callable[[], Any], sample_rate: float) -> bool:
    """Whether an effect returns each block whole under ``process(reset=False)``.

    Effects with a look-ahead (a brickwall limiter, codecs, pitch shifting)
    hold samples back and return shorter blocks; they are not offered for
    streaming (a stream then refuses them by name).
    """
    try:
        effect = factory()
        for length in STREAM_PROBE_BLOCKS:
            y = effect.process(np.zeros((2, length), dtype=np.float32), sample_rate, reset=False)
            if np.shape(y) != (2, length):
                return False
    except Exception:  # an effect that cannot even run the probe is not offered for streaming
        return False
    return True


class SetAndProcessBlock(SetAndProcess):
    """Process one block of a stream: set each control, then ``process(reset=False)``, so that the
    instance (one per node for the whole stream) carries its state (a reverb's tail) to the next block."""

    def __init__(self, targets: Mapping[str, Target]) -> None:
        super().__init__(targets)
        self._first_block: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        return {"targets": self.targets}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["targets"])  # type: ignore[misc]

    def __call__(self, effect: Any, audio: np.ndarray, sample_rate: float, **natural: float) -> np.ndarray:
        self._set(effect, natural)
        # pedalboard prepares (and so resets) an effect again when a block is longer than any before it:
        # blocks longer than the first are given in pieces no longer than it.
        try:
            limit = self._first_block.setdefault(effect, audio.shape[1])
        except TypeError:  # an effect that cannot be weakly referenced: no pieces
            limit = None
        if limit is None or audio.shape[1] <= limit:
            return effect.process(audio, sample_rate, reset=False)
        return np.concatenate([effect.process(audio[:, s:s + limit], sample_rate, reset=False)
                               for s in range(0, audio.shape[1], limit)], axis=1)


class EffectFactory:
    """Makes one instance of a pedalboard class with fixed constructor options (picklable)."""

    def __init__(self, class_name: str, options: Mapping[str, Any]) -> None:
        self.class_name, self.options = class_name, dict(options)

    def __call__(self) -> Any:
        return getattr(pedalboard, self.class_name)(**self.options)

    def __repr__(self) -> str:
        return f"pedalboard.{self.class_name}({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def check_sample_rate(where: str, sample_rate: Any) -> float:
    """``sample_rate`` as a float of Hz (a Python or numpy number, not a bool).

    Raises:
        EffectOptionError: not a positive finite number; the message starts with ``where``.
    """
    if not (isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
            and math.isfinite(sample_rate) and sample_rate > 0):
        raise EffectOptionError(f"{where}: sample_rate must be a positive number of Hz, got {sample_rate!r}")
    return float(sample_rate)


def _enum(effect: Effect, key: str, value: Any, enum: Any) -> Any:
    if isinstance(value, enum):
        return value
    members = list(enum.__members__)
    if isinstance(value, str) and value in members:
        return enum.__members__[value]
    raise EffectOptionError(f"pedalboard:{effect.name}: option {key}={value!r} is not one of {members}")


def _constructor_options(effect: Effect, options: Mapping[str, Any], sample_rate: float) -> dict[str, Any]:
    unknown = sorted(set(options) - set(effect.options))
    if unknown:
        known = sorted(effect.options) or "none"
        raise EffectOptionError(f"pedalboard:{effect.name}: unknown options {unknown}; its options are {known}")
    values = {**effect.options, **options}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "mode":
            out[key] = _enum(effect, key, value, pedalboard.LadderFilter.Mode)
        elif key == "quality":
            out[key] = _enum(effect, key, value, pedalboard.Resample.Quality)
        elif key == "freeze_mode":
            if not isinstance(value, (bool, np.bool_)):
                raise EffectOptionError(f"pedalboard:{effect.name}: option freeze_mode must be True or False "
                                        f"(the reverb freezes at >= 0.5, a switch), got {value!r}")
            out[key] = 1.0 if value else 0.0
        elif key == "true_peak":
            if not isinstance(value, (bool, np.bool_)):
                raise EffectOptionError(f"pedalboard:{effect.name}: option true_peak must be True or False, "
                                        f"got {value!r}")
            out[key] = bool(value)
        elif key == "impulse_response":
            out[key] = _impulse_response(effect, value)
        elif key == "impulse_response_sample_rate":
            out["sample_rate"] = float(value) if value is not None else float(sample_rate)
        else:  # pragma: no cover - every option in the table is handled above
            raise EffectOptionError(f"pedalboard:{effect.name}: option {key!r} has no converter")
    if effect.class_name == "Convolution":
        out["impulse_response_filename"] = out.pop("impulse_response")
    return out


def _impulse_response(effect: Effect, value: Any) -> np.ndarray:
    if value is None:
        raise EffectOptionError(f"pedalboard:{effect.name}: option impulse_response is required: a float "
                                "array [samples] or [channels, samples]")
    ir = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
    if ir.ndim not in (1, 2) or ir.shape[-1] < 1 or not np.isfinite(ir).all():
        raise EffectOptionError(f"pedalboard:{effect.name}: impulse_response must be a finite array [samples] "
                                f"or [channels, samples], got shape {ir.shape}")
    return ir


def effect_specs(effect: Effect | str, sample_rate: float = 44100.0,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 differentiable: Mapping[str, bool] | None = None) -> tuple[ParameterSpec, ...]:
    """The controls of ``effect`` at ``sample_rate``, with optional overrides.

    Args:
        effect: an :class:`~grafx_pedalboard.effects.Effect` or its name.
        sample_rate: in Hz (frequency ceilings follow it).
        ranges: control name → ``(minimum, maximum)`` replacing the default range;
            it must lie within the control's limits (where pedalboard raises, or
            where it blows up without raising).
        differentiable: control name → whether estimators treat it (to train a
            step-like control with a straight-through surrogate or a proxy).

    Raises:
        ParameterError: an unknown control name, or a range outside the limits.
    """
    info = get_effect(effect) if isinstance(effect, str) else effect
    ranges, differentiable = dict(ranges or {}), dict(differentiable or {})
    names = [c.name for c in info.controls]
    for key in sorted((set(ranges) | set(differentiable)) - set(names)):
        raise ParameterError(f"pedalboard:{info.name}: no control {key!r}; its controls are {names}")
    specs = []
    for control in info.controls:
        lo = hi = None
        if control.name in ranges:
            lo, hi = (float(v) for v in ranges[control.name])
            low_limit, high_limit = control.limit_range(sample_rate)
            if not (math.isfinite(lo) and math.isfinite(hi) and low_limit <= lo < hi <= high_limit):
                raise ParameterError(
                    f"pedalboard:{info.name}: range {control.name}=({lo:g}, {hi:g}) must satisfy "
                    f"{low_limit:g} <= minimum < maximum <= {high_limit:g} at {sample_rate:g} Hz")
            if control.scale == "log" and lo <= 0:
                raise ParameterError(f"pedalboard:{info.name}: {control.name} has a log scale; its minimum "
                                     f"must be > 0, got {lo:g}")
        specs.append(control.resolve(sample_rate, lo, hi, differentiable.get(control.name)))
    return tuple(specs)


def pedalboard_processor(
    effect: str,
    *,
    sample_rate: float = 44100.0,
    estimator: Estimator | str | None = None,
    estimator_options: Mapping[str, Any] | None = None,
    signal_gradient: str | None = None,
    workers: int | None = None,
    runner: Any = "threads",
    ranges: Mapping[str, tuple[float, float]] | None = None,
    differentiable: Mapping[str, bool] | None = None,
    **options: Any,
) -> BlackBoxProcessor:
    """A processor running pedalboard's ``effect`` on every node of a stage.

    Each control is a ``[nodes, 1]`` unconstrained parameter mapped by a sigmoid
    into its range (:func:`effect_specs`), so no value outside the range can
    reach pedalboard. ``default_parameters()`` gives each control's default.

    Args:
        effect: a name of :data:`~grafx_pedalboard.effects.EFFECTS` (``"compressor"``).
        sample_rate: of the signals, in Hz.
        estimator: ``None`` for the measured default
            (:func:`~grafx_pedalboard.estimator.default_estimator_name`), or a
            registered estimator name or instance to override it for this node type.
        estimator_options: options of a named (or the default) estimator
            (``{"samples": 8}`` for SPSA, ``{"mode": "forward"}`` for finite differences).
        signal_gradient: how the input signal's gradient is obtained (see
            :mod:`grafx_core.estimators.base`); default: the effect's choice
            (``"straight-through"`` for codecs and quantisers, ``"none"`` for the
            pitch shifter and the resampler, else the estimator's).
        workers: threads; default one for cheap effects (gain, clipping,
            bitcrush), else one per core (with ``runner="ray"``: Ray workers,
            default the cluster's CPUs).
        runner: ``"threads"``, ``"ray"`` or a runner object, as for
            :class:`~grafx_core.blackbox.BlackBoxProcessor`.
        ranges, differentiable: per-control overrides (see :func:`effect_specs`).
        **options: the effect's constructor options (``mode="HPF24"`` for the
            ladder filter, ``freeze_mode=True`` for the reverb, ``quality=...``,
            ``true_peak=...``, ``impulse_response=...`` for the convolution).

    Returns:
        A :class:`~grafx_core.blackbox.BlackBoxProcessor` named ``"pedalboard:<effect>"``.

    Raises:
        KeyError: an unknown effect.
        EffectOptionError: an unknown option or a bad option value, or a sample
            rate the effect does not support.
        ParameterError: a bad ``ranges``/``differentiable`` override.
        EstimatorError: a bad estimator or estimator option.
    """
    info = get_effect(effect)
    sample_rate = check_sample_rate(f"pedalboard:{info.name}", sample_rate)
    if info.class_name == "MP3Compressor" and sample_rate not in MP3_SAMPLE_RATES:
        raise EffectOptionError(f"pedalboard:{info.name}: the MP3 encoder runs at {list(MP3_SAMPLE_RATES)} Hz, "
                                f"not {sample_rate:g} Hz")
    if not hasattr(pedalboard, info.class_name):
        raise EffectOptionError(f"pedalboard:{info.name}: this pedalboard ({pedalboard.__version__}) has no "
                                f"{info.class_name}")
    specs = effect_specs(info, sample_rate, ranges, differentiable)
    factory = EffectFactory(info.class_name, _constructor_options(info, options, sample_rate))
    processor = BlackBoxProcessor(
        None,
        specs,
        effect_factory=factory,
        process=SetAndProcess({s.name: ((), s.name, "attribute") for s in specs}),
        process_block=SetAndProcessBlock({s.name: ((), s.name, "attribute") for s in specs})
        if streams_in_blocks(factory, sample_rate) else None,
        instances="per-item" if info.fresh_instance else "per-thread",
        sample_rate=float(sample_rate),
        # the core's rule (make_estimator's) applied by the box itself: with no estimator given, "auto"
        # stays the probe, even for an effect without differentiable controls (bitcrush, mp3)
        estimator=estimator,
        **dict(estimator_options or {}),
        signal_gradient=info.signal_gradient if signal_gradient is None else signal_gradient,
        workers=workers if workers is not None or runner != "threads" else (1 if info.cheap else None),
        runner=runner,
        name=f"pedalboard:{info.name}",
    )
    return settle_gradient_kind(processor)
