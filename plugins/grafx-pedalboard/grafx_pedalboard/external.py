"""External plug-ins (VST3, and Audio Units on macOS) as black-box processors.

``pedalboard.load_plugin(path)`` hosts a plug-in; :func:`external_processor`
reads its parameters and makes a processor whose controls are those
parameters. Each worker thread loads its own instance of the plug-in.

**Units.** A plug-in's parameters reach the host as normalised values in
``[0, 1]`` (VST3's ``ParamValue``, JUCE's ``getValue``); the natural units a
plug-in displays ("440 Hz", "-12 dB") come from its own text conversion,
which is often rounded and not invertible. So a control of an external
plug-in is the parameter's normalised ``raw_value`` in ``[0, 1]`` (linear
scale), named by pedalboard's Python name for it (``"delay_time_ms"``).
:class:`ExternalParameter` keeps the natural range and unit the plug-in
reported, for display.

**Differentiability.** Continuous float parameters are marked
differentiable; booleans, string choices and discrete (stepped) parameters are
not. Whether a continuous parameter is smooth in practice depends on the
plug-in: measure it with :func:`grafx_pedalboard.probe.probe_controls` and pass
``differentiable={...}`` to correct the flags.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pedalboard

from grafx_core import check_plugin_path
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.estimators import Estimator

from .errors import PluginParameterError
from .estimator import make_estimator, settle_gradient_kind
from .processor import SetAndProcess, SetAndProcessBlock, Target, check_sample_rate

__all__ = ["ExternalParameter", "read_parameters", "ExternalPluginFactory", "external_processor",
           "registered_external_processor", "DISCRETE_STEPS"]

DISCRETE_STEPS = 100
"""A float parameter with fewer distinct values than this is treated as stepped (not differentiable)."""


@dataclass(frozen=True)
class ExternalParameter:
    """One parameter of an external plug-in, as read from the plug-in.

    Attributes:
        name: pedalboard's Python name for it (its key in ``plugin.parameters``).
        kind: ``"float"``, ``"bool"`` or ``"str"``.
        continuous: a float parameter with at least :data:`DISCRETE_STEPS` values
            that the plug-in does not declare discrete.
        raw_value: its normalised value in ``[0, 1]`` when read.
        minimum, maximum: the natural range the plug-in displays (floats only, else ``None``).
        label: the natural unit the plug-in displays (``"Hz"``, ``"dB"``), if any.
    """

    name: str
    kind: str
    continuous: bool
    raw_value: float
    minimum: float | None = None
    maximum: float | None = None
    label: str | None = None

    def spec(self, differentiable: bool | None = None) -> ParameterSpec:
        """The control: normalised ``[0, 1]``, starting at the plug-in's current value."""
        flag = self.continuous if differentiable is None else differentiable
        return ParameterSpec(self.name, 0.0, 1.0, default=min(max(self.raw_value, 0.0), 1.0),
                             differentiable=flag)


def _kind(parameter: Any) -> str:
    kind = getattr(parameter, "type", float)
    return {float: "float", bool: "bool", str: "str"}.get(kind, "str")


def read_parameters(plugin: Any) -> list[ExternalParameter]:
    """The parameters of a loaded plug-in, in the plug-in's order.

    Works on anything with pedalboard's ``ExternalPlugin.parameters`` interface:
    a mapping from Python names to parameter objects with ``type`` (``float``,
    ``bool`` or ``str``), ``raw_value``, ``valid_values``, and optionally
    ``min_value``, ``max_value``, ``label``, ``is_discrete`` and ``is_boolean``.

    Raises:
        PluginParameterError: ``plugin`` has no ``parameters`` mapping, or a
            name is not a Python identifier.
    """
    parameters = getattr(plugin, "parameters", None)
    if not isinstance(parameters, Mapping):
        raise PluginParameterError(f"{type(plugin).__name__} has no 'parameters' mapping; expected a plug-in "
                                   "loaded with pedalboard.load_plugin")
    out = []
    for name, parameter in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginParameterError(f"{type(plugin).__name__}: parameter name {name!r} is not a Python "
                                       "identifier")
        kind = _kind(parameter)
        values = list(getattr(parameter, "valid_values", ()) or ())
        discrete = bool(getattr(parameter, "is_discrete", False)) or bool(getattr(parameter, "is_boolean", False))
        continuous = kind == "float" and not discrete and len(values) >= DISCRETE_STEPS
        minimum = getattr(parameter, "min_value", None) if kind == "float" else None
        maximum = getattr(parameter, "max_value", None) if kind == "float" else None
        label = getattr(parameter, "label", None)
        out.append(ExternalParameter(name, kind, continuous, float(parameter.raw_value),
                                     None if minimum is None else float(minimum),
                                     None if maximum is None else float(maximum),
                                     label if isinstance(label, str) and label else None))
    return out


def select_parameters(found: Sequence[ExternalParameter], where: str, include: Sequence[str] | None,
                      exclude: Sequence[str] | None, differentiable: Mapping[str, bool] | None,
                      ) -> list[ParameterSpec]:
    """Specs of the chosen parameters (all but ``exclude``, or exactly ``include``), in the plug-in's order.

    Raises:
        PluginParameterError: a name in ``include``, ``exclude`` or ``differentiable``
            that the plug-in does not have.
    """
    names = [p.name for p in found]
    for label, chosen in (("include", include), ("exclude", exclude), ("differentiable", differentiable)):
        unknown = sorted(set(chosen or ()) - set(names))
        if unknown:
            raise PluginParameterError(f"{where}: {label} names {unknown}, which the plug-in does not have; "
                                       f"its parameters are {names}")
    keep = set(include) if include is not None else set(names) - set(exclude or ())
    flags = dict(differentiable or {})
    return [p.spec(flags.get(p.name)) for p in found if p.name in keep]


class ExternalPluginFactory:
    """Loads one instance of an external plug-in (picklable; one per worker thread)."""

    def __init__(self, path: str, plugin_name: str | None = None,
                 parameter_values: Mapping[str, Any] | None = None,
                 loader: Callable[..., Any] | None = None) -> None:
        self.path, self.plugin_name = str(path), plugin_name
        self.parameter_values = dict(parameter_values or {})
        self.loader = loader

    def __call__(self) -> Any:
        load = self.loader if self.loader is not None else pedalboard.load_plugin
        return load(self.path, parameter_values=self.parameter_values, plugin_name=self.plugin_name)

    def __repr__(self) -> str:
        return f"load_plugin({self.path!r}, plugin_name={self.plugin_name!r})"


def external_processor(
    path: str,
    *,
    plugin_name: str | None = None,
    parameter_values: Mapping[str, Any] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    differentiable: Mapping[str, bool] | None = None,
    sample_rate: float = 44100.0,
    estimator: Estimator | str | None = None,
    estimator_options: Mapping[str, Any] | None = None,
    signal_gradient: str = "auto",
    workers: int | None = None,
    runner: Any = "threads",
    fresh_instance: bool = False,
    loader: Callable[..., Any] | None = None,
) -> BlackBoxProcessor:
    """A processor running an external plug-in, its parameters read from the plug-in.

    The plug-in is loaded once here to read its parameters, then once per
    worker thread. Controls are normalised ``[0, 1]`` values (see the module
    documentation); each starts at the value the plug-in loaded with.

    Args:
        path: a ``.vst3`` file or bundle (or an Audio Unit on macOS).
        plugin_name: which plug-in of a multi-plug-in bundle.
        parameter_values: initial values (natural units, as ``load_plugin`` takes them).
        include: expose exactly these parameters (others keep their values).
        exclude: expose all parameters but these.
        differentiable: per-parameter override of the continuous/stepped flag.
        sample_rate: of the signals, in Hz.
        estimator, estimator_options, signal_gradient, workers, runner: as for
            :func:`~grafx_pedalboard.processor.pedalboard_processor`.
        fresh_instance: load a new instance for every item, for plug-ins whose
            output depends on the previous item's parameters (slow).
        loader: replaces ``pedalboard.load_plugin`` (for tests, or a custom host).

    Raises:
        ImportError: the plug-in cannot be loaded (from ``pedalboard.load_plugin``).
        EffectOptionError: ``sample_rate`` is not a positive number.
        PluginParameterError: bad ``include``/``exclude``/``differentiable`` names.
    """
    where = f"plug-in {path!r}" + (f" ({plugin_name})" if plugin_name else "")
    sample_rate = check_sample_rate(f"pedalboard:external {where}", sample_rate)
    factory = ExternalPluginFactory(path, plugin_name, parameter_values, loader)
    specs = select_parameters(read_parameters(factory()), where, include, exclude, differentiable)
    targets: dict[str, Target] = {s.name: ((), s.name, "raw") for s in specs}
    processor = BlackBoxProcessor(
        None,
        specs,
        effect_factory=factory,
        process=SetAndProcess(targets),
        process_block=SetAndProcessBlock(targets),  # not probed: loading a plug-in again costs (and counts)
        instances="per-item" if fresh_instance else "per-thread",
        sample_rate=float(sample_rate),
        estimator=make_estimator(specs, estimator, estimator_options),
        signal_gradient=signal_gradient,
        workers=workers,
        runner=runner,
        name=f"pedalboard:external {where}",
    )
    return settle_gradient_kind(processor)


def registered_external_processor(path: str, **options: Any) -> BlackBoxProcessor:
    """:func:`external_processor` as the registry's ``pedalboard:external``: the path must lie in a folder the
    user allowed (``--allow-plugins DIR``, :func:`grafx_core.allow_plugin_folders`), since the registry builds
    processors from graph and options files, which must never be enough to run native code.

    Raises:
        NativeCodeError: ``path`` lies in no allowed folder (nothing is loaded).
    """
    check_plugin_path(path, "pedalboard:external")
    return external_processor(path, **options)


# Only __wrapped__: the options-file check reads external_processor's keywords through it.
functools.update_wrapper(registered_external_processor, external_processor, assigned=(), updated=())
