"""A whole ``pedalboard.Pedalboard`` (or any chain of plug-ins) as one node.

The node's controls are the union of its plug-ins' controls, each prefixed
with its plug-in's effect name so that names stay unique:
``compressor_threshold_db``, ``reverb_room_size``; an effect that occurs
more than once is numbered in walk order (``gain1_gain_db``,
``gain2_gain_db``). Nested ``Chain`` and ``Mix`` containers are walked depth
first. Built-in effects get the ranges and flags of
:data:`~grafx_pedalboard.effects.EFFECTS`, starting from the values the given
board holds; external plug-ins get their parameters read from the plug-in
(:mod:`grafx_pedalboard.external`); plug-ins without numeric controls
(``Invert``, the GSM codec) have none.

Each worker thread needs its own copy of the board. pedalboard plug-ins
cannot be pickled or deep-copied, so a board of built-in effects is rebuilt
from a blueprint of its classes, options and values; a board containing an
external plug-in must be given as a function that builds it. A board holding a ``Reverb`` is rebuilt
for every item, because pedalboard carries the reverb's ``dry_level`` over from
one call to the next (see :data:`~grafx_pedalboard.effects.EFFECTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pedalboard

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import ParameterError
from grafx_core.estimators import Estimator

from .effects import EFFECTS, Effect
from .errors import PluginParameterError
from .estimator import make_estimator, settle_gradient_kind
from .external import read_parameters
from .processor import SetAndProcess, SetAndProcessBlock, Target, check_sample_rate, effect_specs, streams_in_blocks

__all__ = ["pedalboard_chain", "BoardFactory", "blueprint", "walk"]

_BY_CLASS: dict[str, Effect] = {e.class_name: e for e in EFFECTS.values()}
_CONTAINERS = ("Pedalboard", "Chain", "Mix")
_NO_CONTROLS = ("Invert",)
"""Built-in plug-ins without numeric controls and without constructor options."""
_NOT_REBUILDABLE = ("Convolution",)
"""Built-ins whose state cannot be read back (a Convolution hides its response's sample rate)."""


def walk(plugin: Any, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Any]]:
    """Yield ``(path, plug-in)`` for every leaf plug-in, depth first."""
    if isinstance(plugin, pedalboard.PluginContainer):
        for index in range(len(plugin)):
            yield from walk(plugin[index], path + (index,))
    else:
        yield path, plugin


def blueprint(plugin: Any) -> tuple[Any, ...]:
    """A picklable description of a board of built-in plug-ins, from which :class:`BoardFactory` rebuilds it.

    Raises:
        PluginParameterError: a plug-in that cannot be rebuilt (an external
            plug-in, an unknown class); give the board as a function instead.
    """
    name = type(plugin).__name__
    if isinstance(plugin, pedalboard.PluginContainer):
        if name not in _CONTAINERS:
            raise PluginParameterError(f"cannot rebuild container {name}; give a function that builds the board")
        return ("container", name, tuple(blueprint(plugin[i]) for i in range(len(plugin))))
    if name in _NO_CONTROLS:
        return ("plugin", name, {})
    effect = _BY_CLASS.get(name)
    if effect is None or name in _NOT_REBUILDABLE:
        raise PluginParameterError(
            f"cannot copy a {name} for every worker thread (pedalboard plug-ins cannot be pickled); "
            "pass a function that builds the board, e.g. pedalboard_chain(lambda: Pedalboard([...]))")
    values = {c.name: float(getattr(plugin, c.name)) for c in effect.controls}
    options = {key: getattr(plugin, key) for key in effect.options}
    return ("plugin", name, {**options, **values})


def _build(description: tuple[Any, ...]) -> Any:
    kind, name, content = description
    if kind == "container":
        return getattr(pedalboard, name)([_build(child) for child in content])
    return getattr(pedalboard, name)(**content)


class BoardFactory:
    """Rebuilds a board from its :func:`blueprint` (one copy per worker thread)."""

    def __init__(self, description: tuple[Any, ...]) -> None:
        self.description = description

    def __call__(self) -> Any:
        return _build(self.description)


def _leaf_specs(plugin: Any, path: tuple[int, ...], sample_rate: float,
                where: str) -> tuple[str, list[ParameterSpec], str, bool]:
    """``(prefix, specs, how, fresh)`` of one leaf; specs start at the plug-in's values.

    A built-in's range is widened to hold the board's value (pedalboard's own
    NoiseGate default of -100 dB lies below the usual range), so that the node
    starts out sounding like the board.

    Raises:
        PluginParameterError: a value beyond the control's limits (where
            pedalboard raises or blows up), or not positive on a log scale.
    """
    name = type(plugin).__name__
    effect = _BY_CLASS.get(name)
    if effect is not None:
        specs = []
        for control, spec in zip(effect.controls, effect_specs(effect, sample_rate)):
            value = float(getattr(plugin, spec.name))
            low_limit, high_limit = control.limit_range(sample_rate)
            if not low_limit <= value <= high_limit or (spec.scale == "log" and value <= 0):
                raise PluginParameterError(
                    f"{where}: {name} at {path} has {spec.name}={value:g}; a node allows {low_limit:g} to "
                    f"{high_limit:g} at {sample_rate:g} Hz{' (above 0: log scale)' if spec.scale == 'log' else ''}"
                    "; set it within that range on the board")
            specs.append(ParameterSpec(spec.name, min(spec.minimum, value), max(spec.maximum, value), value,
                                       spec.scale, spec.differentiable))
        return effect.name, specs, "attribute", effect.fresh_instance
    if isinstance(plugin, pedalboard.ExternalPlugin):
        found = read_parameters(plugin)
        label = "".join(c if c.isalnum() else "_" for c in str(getattr(plugin, "name", "plugin")).lower())
        return label.strip("_") or "plugin", [p.spec() for p in found], "raw", False
    return name.lower(), [], "attribute", False


def pedalboard_chain(
    board: Any,
    *,
    sample_rate: float = 44100.0,
    estimator: Estimator | str | None = None,
    estimator_options: Mapping[str, Any] | None = None,
    signal_gradient: str = "auto",
    workers: int | None = None,
    runner: Any = "threads",
    differentiable: Mapping[str, bool] | None = None,
    name: str = "pedalboard:chain",
) -> BlackBoxProcessor:
    """A processor running a whole chain of plug-ins per node.

    Args:
        board: a ``pedalboard.Pedalboard`` (or ``Chain``/``Mix``/single plug-in)
            of built-in effects, or a function returning a fresh board (needed
            when it holds external plug-ins).
        sample_rate: of the signals, in Hz.
        estimator, estimator_options, signal_gradient, workers, runner: as for
            :func:`~grafx_pedalboard.processor.pedalboard_processor`; the
            default estimator follows the number of differentiable controls of
            the whole chain.
        differentiable: per-control override, by prefixed name.
        name: used in error messages.

    Returns:
        A :class:`~grafx_core.blackbox.BlackBoxProcessor` whose controls are
        the prefixed union of the plug-ins' controls (see the module documentation).

    Raises:
        EffectOptionError: ``sample_rate`` is not a positive number.
        PluginParameterError: ``board`` is neither a plug-in nor a function
            returning one, a plug-in cannot be copied for the worker threads, or
            a board value lies beyond a control's limits.
        ParameterError: a ``differentiable`` name the chain does not have.
    """
    sample_rate = check_sample_rate(name, sample_rate)
    if isinstance(board, pedalboard.Plugin):
        factory: Callable[[], Any] = BoardFactory(blueprint(board))
        template = board
    elif callable(board):
        factory, template = board, board()
        if not isinstance(template, pedalboard.Plugin):
            raise PluginParameterError(f"{name}: the board function returned {type(template).__name__}, "
                                       "not a pedalboard plug-in")
    else:
        raise PluginParameterError(f"{name}: expected a pedalboard.Pedalboard or a function returning one, "
                                   f"got {type(board).__name__}")
    leaves = [(path, *_leaf_specs(plugin, path, sample_rate, name)) for path, plugin in walk(template)]
    counts: dict[str, int] = {}
    for _, prefix, specs, _, _ in leaves:
        counts[prefix] = counts.get(prefix, 0) + 1
    seen: dict[str, int] = {}
    all_specs: list[ParameterSpec] = []
    targets: dict[str, Target] = {}
    flags = dict(differentiable or {})
    for path, prefix, specs, how, _ in leaves:
        seen[prefix] = seen.get(prefix, 0) + 1
        label = prefix if counts[prefix] == 1 else f"{prefix}{seen[prefix]}"
        for spec in specs:
            full = f"{label}_{spec.name}"
            flag = flags.pop(full, spec.differentiable)
            all_specs.append(ParameterSpec(full, spec.minimum, spec.maximum, spec.default, spec.scale, flag))
            targets[full] = (path, spec.name, how)
    if flags:
        raise ParameterError(f"{name}: differentiable names {sorted(flags)}, which the chain does not have; "
                             f"its controls are {[s.name for s in all_specs]}")
    fresh = any(leaf[4] for leaf in leaves)
    processor = BlackBoxProcessor(
        None,
        all_specs,
        effect_factory=factory,
        process=SetAndProcess(targets),
        process_block=SetAndProcessBlock(targets) if streams_in_blocks(factory, float(sample_rate)) else None,
        instances="per-item" if fresh else "per-thread",
        sample_rate=float(sample_rate),
        estimator=make_estimator(all_specs, estimator, estimator_options),
        signal_gradient=signal_gradient,
        workers=workers,
        runner=runner,
        name=name,
    )
    return settle_gradient_kind(processor)
