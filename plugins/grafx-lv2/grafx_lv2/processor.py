"""An installed LV2 plug-in as a black-box grafx-core processor.

:func:`lv2_processor` reads the plug-in's ports through lilv, tries it once in a
separate process (:mod:`grafx_lv2.probe`), and returns a
:class:`~grafx_core.blackbox.BlackBoxProcessor` that renders every item on
fresh instances (LV2 plug-ins keep state no reset clears), made one at a time
under the process-wide instantiation lock (concurrent instantiation crashed
some plug-ins), with every control written on every item.

The host options that shape a render (sample rate, block size, pre-roll, tail
policy, fixed, excluded and included ports) are in ``processor.process.options``;
written into an options file under the node type, they make ``grafx-core
render`` rebuild the same processor and repeat a render bit for bit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from grafx_core.blackbox import BlackBoxProcessor
from grafx_core.estimators import Estimator
from grafx_core.estimators.default import FD_MAX_PARAMETERS, default_estimator

from .controls import map_controls
from .errors import LV2Error, LV2PluginNotFoundError, LV2PortError, LV2UnsupportedPluginError
from .host import TAIL_POLICIES, PluginFactory, RenderBlock, RenderItem
from .instance import SUPPORTED_FEATURES
from .names import plugin_names
from .probe import probe
from .world import world

__all__ = ["lv2_processor", "port_values", "resolve_plugin", "PRE_ROLL", "STEPWISE", "DEFAULT_BLOCK_SIZE",
           "FD_MAX_PARAMETERS"]

DEFAULT_BLOCK_SIZE = 1024
"""Samples per ``run`` call unless told otherwise (some plug-ins' output depends on it: it is recorded)."""

PRE_ROLL = {
    "http://gareus.org/oss/lv2/fil4#": 49152,
    "http://gareus.org/oss/lv2/dpl#": 8192,
    "http://calf.sourceforge.net/plugins/": 1024,
    "http://distrho.sf.net/plugins/MVerb": 4096,
}
"""Samples of silence a fresh instance needs to glide from its defaults to its settings, by URI
prefix; 0 for other plug-ins. Measured with :func:`grafx_lv2.preroll.measure_pre_roll` (the
smallest pre-roll whose output equals that of a 262,144-sample one) at 44.1 kHz, 1024-sample
blocks: x42 fil4 49,152, x42 dpl 8,192, DPF MVerb 4,096, Calf Reverb and Saturator 1,024; LSP
Compressor and DPF 3-Band EQ 0."""

STEPWISE = {
    "http://calf.sourceforge.net/plugins/Reverb": ("predelay",),
}
"""Continuous ports whose output moves in steps (a delay in whole samples), by plug-in URI: their
controls are declared non-differentiable unless ``differentiable=`` says otherwise. Found with
:func:`grafx_core.gradient_report` (verdict ``stepwise``): a finite difference across a step is
noise, not a gradient."""


def resolve_plugin(plugin: str) -> tuple[str, str]:
    """``(uri, name)`` of an installed plug-in given by URI or by registered name.

    Raises:
        LV2PluginNotFoundError: nothing installed matches; the message lists near names.
        LilvUnavailableError: liblilv is missing.
    """
    if not isinstance(plugin, str):
        raise LV2PluginNotFoundError(f"an LV2 plug-in is named by a string (a registered name or a URI), "
                                     f"got {plugin!r:.80}")
    uris = world().uris()
    names = plugin_names(uris)
    if plugin in names:
        return names[plugin], plugin
    if plugin in uris:
        return plugin, next(n for n, u in names.items() if u == plugin)
    import difflib

    near = difflib.get_close_matches(plugin, list(names), n=5, cutoff=0.5)
    raise LV2PluginNotFoundError(f"no installed LV2 plug-in is named or has the URI {plugin!r}"
                                 + (f"; did you mean {near}?" if near else "")
                                 + " (grafx-core plugins lists them)")


def _check_options(where: str, sample_rate: Any, block_size: Any, pre_roll: Any, tail: Any) -> None:
    if not (isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
            and math.isfinite(sample_rate) and sample_rate > 0):
        raise LV2Error(f"{where}: sample_rate must be a positive number of Hz, got {sample_rate!r}")
    for key, value, least in (("block_size", block_size, 1), ("pre_roll", pre_roll, 0)):
        if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least):
            raise LV2Error(f"{where}: {key} must be an int >= {least} (samples), got {value!r}")
    if not isinstance(tail, str) or tail not in TAIL_POLICIES:
        raise LV2Error(f"{where}: tail={tail!r} is not one of {TAIL_POLICIES}")


def _check_ports_options(where: str, fixed: Any, exclude: Any, include: Any, differentiable: Any) -> None:
    def number(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    for key, value, kind, ok in (("fixed", fixed, "{symbol: number}", number),
                                 ("differentiable", differentiable, "{symbol: True or False}",
                                  lambda v: isinstance(v, bool))):
        if value is not None and not (isinstance(value, Mapping) and all(isinstance(k, str) and ok(v)
                                                                         for k, v in value.items())):
            raise LV2PortError(f"{where}: {key} must be a mapping {kind}, got {value!r:.80}")
    for key, value in (("exclude", exclude), ("include", include)):
        if value is not None and (isinstance(value, (str, bytes)) or not isinstance(value, Sequence)
                                  or not all(isinstance(v, str) for v in value)):
            raise LV2PortError(f"{where}: {key} must be a list of port symbols, got {value!r:.80}")


def lv2_processor(
    plugin: str,
    *,
    sample_rate: float = 44100.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    pre_roll: int | None = None,
    tail: str = "cut",
    fixed: Mapping[str, float] | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] | None = None,
    differentiable: Mapping[str, bool] | None = None,
    estimator: Estimator | str | None = None,
    estimator_options: Mapping[str, Any] | None = None,
    signal_gradient: str = "auto",
    workers: int | None = None,
    runner: Any = "threads",
    check: bool = True,
    check_determinism: bool = True,
) -> BlackBoxProcessor:
    """A processor running an installed LV2 plug-in on every node of a stage.

    Each exposed control is a ``[nodes, 1]`` unconstrained parameter named by its
    port symbol (see :mod:`grafx_lv2.controls` for how ports become specs).

    Args:
        plugin: a registered name (``"lsp_compressor_stereo"``) or the plug-in's URI.
        sample_rate: of the signals, in Hz; the plug-in is instantiated at it.
        block_size: samples per ``run`` call.
        pre_roll: samples of silence before each item (default: :data:`PRE_ROLL`'s entry, else 0).
        tail: ``"cut"`` or ``"warn"`` (see :mod:`grafx_lv2.host`).
        fixed: port symbol → value held instead of exposed (natural units).
        exclude: port symbols held at their defaults.
        include: expose only these port symbols.
        differentiable: port symbol → whether a continuous control gets gradient estimates.
        estimator: ``None`` for central finite differences up to
            :data:`FD_MAX_PARAMETERS` differentiable controls, SPSA beyond; or a
            registered name or an instance.
        estimator_options: options of the estimator.
        signal_gradient: how the input signal's gradient is obtained.
        workers: threads (default: one per core), or Ray workers with ``runner="ray"``.
        runner: ``"threads"``, ``"ray"`` or a runner object, as for
            :class:`~grafx_core.blackbox.BlackBoxProcessor` (every Ray node needs
            liblilv and the plug-in installed).
        check: try the plug-in in a separate process first (a crash there is an
            :class:`~grafx_lv2.errors.LV2PluginCrashError` here instead of ending this process).
        check_determinism: refuse, at the first render, a plug-in whose two
            fresh instances give different outputs (noise generators, LFOs
            with a random phase); ``False`` accepts it.

    Returns:
        A :class:`~grafx_core.blackbox.BlackBoxProcessor` named ``"lv2:<name>"``,
        whose ``process`` is a :class:`~grafx_lv2.host.RenderItem` with the host
        ``options`` and the plug-in's ``uri``.

    Raises:
        LV2PluginNotFoundError: no such plug-in is installed.
        LV2UnsupportedPluginError: it needs an LV2 feature this host lacks, or has no audio input or output.
        LV2PluginCrashError, LV2InstantiationError: it crashed, hung or failed when tried.
        NondeterministicEffectError: (at the first render) two fresh instances disagree.
        LV2PortError: a bad ``fixed``/``exclude``/``include``/``differentiable`` entry or type.
        LV2Error: a bad host option.
        LilvUnavailableError: liblilv is missing.
    """
    uri, name = resolve_plugin(plugin)
    where = f"lv2:{name} ({uri})"
    pre_roll = next((n for prefix, n in PRE_ROLL.items() if uri.startswith(prefix)), 0) if pre_roll is None else pre_roll
    _check_options(where, sample_rate, block_size, pre_roll, tail)
    _check_ports_options(where, fixed, exclude, include, differentiable)
    w = world()
    missing = sorted(set(w.required_features(uri)) - SUPPORTED_FEATURES)
    if "http://lv2plug.in/ns/ext/buf-size#powerOf2BlockLength" in w.required_features(uri) \
            and block_size & (block_size - 1):
        missing.append(f"powerOf2BlockLength (block_size {block_size} is not a power of two)")
    if missing:
        raise LV2UnsupportedPluginError(f"{where}: needs LV2 features this host does not offer: {missing}")
    ports = w.ports(uri)
    options = {"sample_rate": float(sample_rate), "block_size": int(block_size), "pre_roll": int(pre_roll),
               "tail": tail, "fixed": {k: float(v) for k, v in (fixed or {}).items()}, "exclude": list(exclude),
               "include": None if include is None else list(include), "differentiable": dict(differentiable or {})}
    symbols = {p.symbol for p in ports}
    declared = {symbol: False for symbol in STEPWISE.get(uri, ()) if symbol in symbols}
    controls = map_controls(where, ports, float(sample_rate), fixed=fixed, exclude=exclude, include=include,
                            differentiable={**declared, **dict(differentiable or {})})
    render = RenderItem(where, uri, ports, controls, int(pre_roll), tail, w.latency_port(uri), options)
    if render.inputs < 1 or render.outputs < 1:
        raise LV2UnsupportedPluginError(f"{where}: has {render.inputs} main audio input(s) and {render.outputs} "
                                        "output(s); a processor needs at least one of each")
    if check:
        probe(uri, where, float(sample_rate), int(block_size))
    specs = controls.specs
    factory = PluginFactory(uri, where, float(sample_rate), int(block_size))
    blocks = RenderBlock(render, _reported_latency(factory, render, specs, float(sample_rate), int(block_size)))
    processor = BlackBoxProcessor(
        None,
        specs,
        effect_factory=factory,
        process=render,
        process_block=blocks,
        sample_rate=float(sample_rate),
        estimator=default_estimator(specs, estimator, estimator_options),
        signal_gradient=signal_gradient,
        workers=workers,
        runner=runner,
        output_channels=None if render.inputs == render.outputs else render.outputs,
        name=f"lv2:{name}",
        instances="per-item",
        serialise_instantiation=True,
        check_determinism=check_determinism,
        control_block=int(block_size),
    )
    processor.latency_samples = blocks.lateness(int(block_size))  # how late a stream's blocks come out
    return processor


def _reported_latency(factory: PluginFactory, render: RenderItem, specs: Sequence[Any], sample_rate: float,
                      block_size: int) -> int:
    """The latency the plug-in reports at its default controls (0 without a latency port)."""
    if render.latency_port is None:
        return 0
    effect = factory()
    try:
        natural = {s.name: float(s.default) for s in specs if s.default is not None}
        render(effect, np.zeros((render.inputs, block_size), dtype=np.float32), sample_rate, **natural)
    finally:
        effect.close()
    return int(render.last_latency)


def port_values(processor: BlackBoxProcessor, **params: torch.Tensor) -> list[dict[str, float]]:
    """What each node's plug-in receives: every input control port's value, held ones included.

    Args:
        processor: made by :func:`lv2_processor`.
        params: raw values, ``[nodes, 1]`` per exposed control (as for ``forward``).

    Returns:
        One ``{symbol: value}`` per node, the values as the float32 the plug-in reads.

    Raises:
        LV2Error: ``processor`` is not an LV2 processor.
        ParameterError: ``params`` do not fit its controls.
    """
    render = processor.process
    if not isinstance(render, RenderItem):
        raise LV2Error(f"{getattr(processor, 'name', processor)!r} is not an LV2 processor (lv2_processor)")
    received = processor.received_parameters(**params) if processor.specs else [{}]
    return [render.port_values(natural) for natural in received]
