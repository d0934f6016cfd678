"""A processor made from a numpy function or an effect object, run on a thread pool.

The effect processes one item ``[channels, samples]`` as float32 numpy on the
CPU. A call of the processor renders every node of its stage (and, in the
backward pass, every perturbed render an estimator asks for) as one batch of
items on the thread pool, and returns the result on the input's device and
dtype.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._row_labels import current_row_labels
from ..control import Control
from ..errors import BlackBoxError, ParameterError, StreamingError
from ..estimators._warnings import NonDifferentiableParameterWarning, warn_once
from ..estimators.auto import scaled_signals, settle_signal_gradient
from ..estimators.base import Estimator
from ..estimators.default import default_estimator
from .isolated import DEFAULT_ITEM_TIMEOUT, IsolatedRunner
from .lifecycle import Instances
from .parameters import ParameterSpec
from .target import BlackBoxTarget, _row_name, _unit
from .ray_runner import RayRunner
from .runner import ThreadPoolRunner

__all__ = ["BlackBoxProcessor", "BlackBoxTarget"]

ItemFunction = Callable[..., np.ndarray]


def _set_and_call(effect: Any, audio: np.ndarray, sample_rate: float, attributes: Mapping[str, str],
                  block: int, **natural: Any) -> np.ndarray:
    moving = {name: value for name, value in natural.items() if isinstance(value, np.ndarray)}
    for name, value in natural.items():
        if name not in moving:
            setattr(effect, attributes[name], value)
    if not moving:
        return effect(audio, sample_rate)
    # Automated: consecutive blocks through the one effect, each after its control changes.
    chunks = []
    for b, start in enumerate(range(0, audio.shape[-1], block)):
        for name, values in moving.items():
            setattr(effect, attributes[name], float(values[b]))
        chunks.append(np.asarray(effect(audio[..., start:start + block], sample_rate)))
    return np.concatenate(chunks, axis=-1)


def _make_runner(runner: Any, workers: int | None, timeout: float | None) -> Any:
    """The runner asked for: ``"threads"``, ``"ray"`` or a runner object (ValueError otherwise)."""
    if runner == "threads":
        return ThreadPoolRunner(workers, timeout)
    if runner == "ray":
        return RayRunner(workers, timeout=timeout)  # ray itself is imported at the first call
    if runner == "isolated":
        return IsolatedRunner(workers, DEFAULT_ITEM_TIMEOUT if timeout is None else timeout)
    if isinstance(runner, str) or not callable(getattr(runner, "run_items", None)):
        raise ValueError(f"runner must be 'threads', 'isolated', 'ray' or a runner object, got {runner!r}")
    if workers is not None or timeout is not None:
        raise ValueError(f"give workers and timeout to the runner object itself, not with runner={runner!r}")
    return runner


class BlackBoxProcessor(nn.Module):
    """A processor whose effect torch cannot see into.

    Give either ``function(audio, sample_rate, **natural) -> audio`` or an
    ``effect_factory() -> effect``; effect instances follow ``instances`` (see
    :mod:`grafx_core.blackbox.lifecycle`), and each item sets the effect's
    attributes to the natural parameter values and calls
    ``effect(audio, sample_rate)`` (or ``process(effect, audio, sample_rate,
    **natural)`` when given). ``audio`` is
    a read-only float32 array ``[channels, samples]``; the result must be
    ``[output_channels, samples]`` (or ``[samples]`` for one channel) and finite.

    Parameters are unconstrained reals, one ``[nodes, 1]`` tensor per
    :class:`ParameterSpec`, mapped through a sigmoid into the spec's range (see
    :mod:`grafx_core.blackbox.parameters`). The estimator works on the
    normalised values.

    Args:
        function: the per-item effect function.
        parameters: one spec per control, in the order estimators see them.
        effect_factory: alternative to ``function``: makes one effect object.
        process: how an effect object processes an item (default: set attributes
            and call it).
        sample_rate: passed to the effect, in Hz.
        estimator: an estimator or a registered name (default: the measured
            rule of :mod:`grafx_core.estimators.default`, made with
            ``estimator_options``: straight-through without differentiable
            controls, finite differences up to 12, SPSA beyond).
        signal_gradient: ``"auto"`` or one of
            :data:`~grafx_core.estimators.SIGNAL_GRADIENTS` (see
            :mod:`grafx_core.estimators.base`); ``"auto"`` is settled at the first
            call whose input wants a gradient and kept in ``signal_gradient``.
        workers: threads (default: ``min(items, os.cpu_count())``; use 1 for
            effects costing well under a millisecond per item), or Ray workers
            with ``runner="ray"``.
        runner: where items run: ``"threads"`` (a
            :class:`~grafx_core.blackbox.ThreadPoolRunner`), ``"isolated"`` (an
            :class:`~grafx_core.blackbox.IsolatedRunner`: worker processes under a
            watchdog, so a crashing or hanging effect is an error, not the end of
            this process; ``timeout`` defaults to
            :data:`~grafx_core.blackbox.isolated.DEFAULT_ITEM_TIMEOUT` there), ``"ray"`` (a
            :class:`~grafx_core.blackbox.RayRunner` on the cluster ``RAY_ADDRESS``
            names, or on a local one; needs ``pip install grafx-core[ray]``) or a
            runner object (``RayRunner(address=...)``); results are the same.
        output_channels: channels the effect returns (default: as many as it gets).
        name: used in error messages (default: the function's name).
        timeout: seconds one item may take before the call raises
            :class:`~grafx_core.BlackBoxTimeoutError` naming the node (``None``:
            wait for ever). The stuck call is abandoned in its thread; with
            ``runner="ray"`` a worker's chunk of n items gets n times this, and
            the error names the worker's items and node instead.
        instances: ``"per-thread"`` (one effect per worker thread, reused) or
            ``"per-item"`` (a fresh effect for every item, closed after it).
        serialise_instantiation: make every ``effect_factory()`` call hold one
            process-wide lock (for libraries that crash when instantiated concurrently).
        check_determinism: at the first forward call, render the first item
            twice the way ``instances`` would and raise
            :class:`~grafx_core.errors.NondeterministicEffectError` unless the
            outputs are bit-identical.
        control_block: samples per block of an automated control (a
            :class:`ParameterSpec` with ``time_varying=True`` given as a curve):
            the effect receives one value per block (see
            :mod:`grafx_core.blackbox.moving`).
        knots: knots per automated control for its gradient: the estimator
            perturbs the curve by ``knots`` hat functions, not per frame.
        estimator_options: options for the estimator when given by name.
        process_block: makes the black box stream (``initial_state`` and
            ``forward_stateful``): how an effect object renders one block of a
            long input *keeping* its state, ``process_block(effect, audio,
            sample_rate, **natural) -> audio`` (pedalboard:
            ``effect.process(audio, sample_rate, reset=False)``). A stream
            makes one fresh instance per node and keeps it for the whole
            stream; blocks carry no gradient. A stateful numpy function is
            written as an effect class whose instance holds its state.

    Attributes:
        signal_gradient: the input signal's gradient (``"auto"`` until settled).
        signal_probe: the :class:`~grafx_core.estimators.auto.SignalProbe` that
            settled ``"auto"`` (``None`` before).
        node_labels: optional labels of the rows of the next calls, used in error
            messages instead of ``"node row i"`` outside a render (inside one, the
            engine's graph-node labels are used, captured at forward time).
    """

    inlets: tuple[str, ...] = ("main",)
    outlets: tuple[str, ...] = ("main",)
    concurrent_calls = True  # the engine may run this stage while independent stages run
    runs_on_host = True  # effects compute on the CPU: the engine brings GPU inputs over in pinned memory

    def __init__(
        self,
        function: ItemFunction | None = None,
        parameters: Sequence[ParameterSpec] = (),
        *,
        effect_factory: Callable[[], Any] | None = None,
        process: Callable[..., np.ndarray] | None = None,
        sample_rate: float = 44100,
        estimator: Estimator | str | None = None,
        signal_gradient: str = "auto",
        workers: int | None = None,
        runner: Any = "threads",
        output_channels: int | None = None,
        name: str | None = None,
        timeout: float | None = None,
        instances: str = "per-thread",
        serialise_instantiation: bool = False,
        check_determinism: bool = True,
        control_block: int = 512,
        knots: int = 8,
        process_block: Callable[..., np.ndarray] | None = None,
        **estimator_options: Any,
    ) -> None:
        super().__init__()
        for option, value in (("control_block", control_block), ("knots", knots)):
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if option == "control_block" else 2):
                raise BlackBoxError(f"BlackBoxProcessor: {option} must be an int >= "
                                    f"{1 if option == 'control_block' else 2}, got {value!r}")
        self.control_block, self.knots = control_block, knots
        if (function is None) == (effect_factory is None):
            raise BlackBoxError("BlackBoxProcessor: give exactly one of function or effect_factory")
        if function is not None and not callable(function):
            raise BlackBoxError(f"BlackBoxProcessor: function must be callable, got {function!r}")
        if process is not None and effect_factory is None:
            raise BlackBoxError("BlackBoxProcessor: process= goes with effect_factory=")
        if process_block is not None and (effect_factory is None or not callable(process_block)):
            raise BlackBoxError("BlackBoxProcessor: process_block= is a callable and goes with effect_factory=")
        specs = tuple(parameters)
        for spec in specs:
            if not isinstance(spec, ParameterSpec):
                raise ParameterError(f"BlackBoxProcessor: parameters must be ParameterSpec records, got {spec!r}")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ParameterError(f"BlackBoxProcessor: duplicate parameter names in {names}")
        if output_channels is not None and (not isinstance(output_channels, int) or output_channels < 1):
            raise BlackBoxError(f"BlackBoxProcessor: output_channels must be a positive int, got {output_channels!r}")
        self.function, self.effect_factory, self.process = function, effect_factory, process
        self.process_block = process_block
        self.specs = specs
        self.sample_rate = sample_rate
        self.output_channels = output_channels
        origin = function if function is not None else effect_factory
        self.name = name or getattr(origin, "__name__", type(origin).__name__)
        self.estimator = default_estimator(specs, estimator, estimator_options)
        # With the default estimator, "auto" is the probe whatever the rule chose: a box without controls gets
        # straight-through for its (absent) parameters, not an identity signal gradient it never measured.
        self.signal_gradient = ("auto" if estimator is None and signal_gradient == "auto"
                                else self.estimator.resolve_signal_gradient(signal_gradient))
        self.signal_probe: Any = None
        self.gradient_kind = self.estimator.kind
        try:
            self.runner = _make_runner(runner, workers, timeout)
        except ValueError as error:
            raise BlackBoxError(f"black box {self.name!r}: {error}") from None
        self._effects = (Instances(effect_factory, instances, serialise_instantiation, self.name)
                         if effect_factory is not None else None)
        if function is not None and (instances != "per-thread" or serialise_instantiation):
            raise BlackBoxError(f"black box {self.name!r}: instances= and serialise_instantiation= go with "
                                "effect_factory=")
        self.instances, self.serialise_instantiation = instances, serialise_instantiation
        self.check_determinism = bool(check_determinism)
        self._determinism_checked = False
        self._attributes = {s.name: s.attribute or s.name for s in specs}
        self.node_labels: Sequence[str] | None = None
        self._warned: set[Any] = set()

    # -- protocol -----------------------------------------------------------
    def controls(self) -> dict[str, Control]:
        """One :class:`~grafx_core.Control` per spec; the parameter tensors hold unconstrained values, and an
        automated control (``time_varying``) may be a curve ``[nodes, 1, samples]`` of them."""
        return {s.name: s.control() for s in self.specs}

    def parameter_size(self) -> dict[str, int]:
        """One scalar per control: ``{name: 1}``."""
        return {s.name: 1 for s in self.specs}

    def default_parameters(self) -> dict[str, float]:
        """The raw value of each control's default."""
        return {s.name: s.default_raw() for s in self.specs}

    def forward(self, x: torch.Tensor, /, **params: torch.Tensor) -> torch.Tensor:
        """Render every node's item (``x`` is positional-only, so a control may be named ``x``).

        Args:
            x: ``[nodes, channels, samples]`` input.
            params: raw values, ``[nodes, 1]`` (or ``[nodes]``) per control.

        Returns:
            ``[nodes, output_channels, samples]`` on ``x``'s device and dtype.

        Raises:
            ParameterError: a control is missing, unexpected or misshapen.
            BlackBoxError: the effect raised or returned a wrong shape or NaN/Inf.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise BlackBoxError(f"black box {self.name!r}: input must be [nodes, channels, samples], got {shape}")
        if any(s.time_varying and isinstance(params.get(s.name), torch.Tensor) and params[s.name].dim() == 3
               for s in self.specs):
            from .moving import moving_forward  # moving's target builds on BlackBoxTarget, below

            return moving_forward(self, x, params)
        normalised = _unit(self._raw_columns(params, x.shape[0]).to(x.device))
        self._warn(normalised)
        target = BlackBoxTarget(self, current_row_labels() or self.node_labels)
        choice = settle_signal_gradient(self, target, (x,), normalised, f"black box {self.name!r}")
        return self.estimator.apply(target, scaled_signals(self, (x,)), normalised, signal_gradient=choice)

    # -- streaming ----------------------------------------------------------
    @property
    def initial_state(self) -> Callable[..., list[Any]] | None:
        """One fresh effect instance per node, for a stream (``None`` without ``process_block``)."""
        return self._initial_state if self.process_block is not None else None

    @property
    def forward_stateful(self) -> Callable[..., tuple[torch.Tensor, list[Any]]] | None:
        """One block through each node's own instance (``None`` without ``process_block``)."""
        return self._forward_stateful if self.process_block is not None else None

    def _initial_state(self, x: torch.Tensor, /, **params: torch.Tensor) -> BlockStreamState:
        refusal = self.stream_refusal()
        if refusal is not None:
            raise StreamingError(refusal)
        assert self._effects is not None
        return BlockStreamState([self._effects.make() for _ in range(x.shape[0])])

    def start_late(self, state: BlockStreamState, samples: Sequence[int]) -> BlockStreamState:
        """Skip each node's first ``samples[r]`` input samples in a stream (what upstream
        latency put before the one-shot render's time 0): the plug-in then hears its input from the
        same point and runs on the same block boundaries as in a one-shot render, and the node
        outputs silence for them (:mod:`grafx_core._span`)."""
        state.late = [int(n) for n in samples]
        return state

    def stream_refusal(self) -> str | None:
        """Why this black box cannot stream as configured (``None``: it can).

        A stream keeps one effect instance per node alive in this process from
        block to block; a runner that renders items in other processes
        (``runner="isolated"``, ``"ray"``) keeps no instance between calls, so
        its plug-ins cannot carry their state through a stream.
        """
        if self.process_block is None:
            return f"black box {self.name!r} has no process_block: it cannot render block by block"
        if isinstance(self.runner, ThreadPoolRunner):
            return None
        return (f"black box {self.name!r} renders in worker processes ({self.runner.describe()}, e.g. --isolate), "
                "which render whole items and keep no effect instance between calls; a stream needs each node's "
                "instance alive from block to block in this process. Stream it in-process (without --isolate / "
                "runner='isolated'), or render in one call to keep the isolation")

    def _forward_stateful(self, state: BlockStreamState, x: torch.Tensor, /,
                          **params: torch.Tensor) -> tuple[torch.Tensor, BlockStreamState]:
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params.values())):
            raise StreamingError(f"black box {self.name!r} renders block by block without a gradient: "
                                 "stream it under torch.no_grad() (or detach its inputs)")
        moving = [s.name for s in self.specs
                  if s.time_varying and isinstance(params.get(s.name), torch.Tensor) and params[s.name].dim() == 3]
        target = BlackBoxTarget(self, current_row_labels() or self.node_labels)
        audio = x.detach().to("cpu", torch.float32).contiguous().numpy()
        audio.flags.writeable = False
        channels = self.output_channels or x.shape[1]
        out = np.empty((x.shape[0], channels, x.shape[2]), dtype=np.float32)
        start = state.position
        for a, b in _control_pieces(start, start + x.shape[2], self.control_block if moving else None):
            natural = (self._block_natural(target, state, params, moving, a - start, a) if moving
                       else self._static_natural(target, state, params))
            piece = audio[..., a - start:b - start]
            for r, effect in enumerate(state.effects):
                skip = min(max(state.late[r] - a, 0), b - a) if state.late else 0
                out[r, :, a - start:a - start + skip] = 0.0
                if skip < b - a:
                    out[r, :, a - start + skip:b - start] = self._process_row(target, effect, piece[r, :, skip:],
                                                                              natural[r], r, channels)
        state.position = start + x.shape[2]
        return torch.from_numpy(out).to(x.device, x.dtype), state

    def _static_natural(self, target: BlackBoxTarget, state: BlockStreamState,
                        params: Mapping[str, torch.Tensor]) -> list[dict[str, float]]:
        """:meth:`_block_natural` of constant controls, kept in ``state`` while the parameters are the
        same tensors, unchanged (a stream hands every block the same ones: mapping them to natural
        values cost more per block than the plug-in's work on a small block)."""
        try:
            key = [(name, value, value._version) for name, value in params.items()]
        except RuntimeError:  # an inference tensor keeps no version counter
            return self._block_natural(target, state, params, [], 0, 0)
        kept = state.natural
        if kept is not None and len(kept[0]) == len(key) and all(
                n == m and v is w and a == b for (n, v, a), (m, w, b) in zip(kept[0], key)):
            return kept[1]
        values = self._block_natural(target, state, params, [], 0, 0)
        state.natural = (key, values)
        return values

    def _block_natural(self, target: BlackBoxTarget, state: BlockStreamState, params: Mapping[str, torch.Tensor],
                       moving: list[str], offset: int, position: int) -> list[dict[str, float]]:
        """Each row's natural control values for the piece starting at ``offset`` of the block.

        A curve takes its value at the start of the control block the piece lies in (the
        moving one-shot render's rule, :mod:`grafx_core.blackbox.moving`): read from the block
        where that start falls inside it, else held from the block that had it.
        """
        rows = next(iter(params.values())).shape[0] if params else len(state.effects)
        static = {k: v for k, v in params.items() if k not in moving}
        dtype = next(iter(params.values())).dtype if params else torch.float32
        fixed = {name: torch.zeros(rows, 1, dtype=dtype) for name in moving}
        natural = target._natural(_unit(self._raw_columns({**static, **fixed}, rows).detach())).cpu().numpy()
        values = [{n: float(v) for n, v in zip(target.columns, natural[r])} for r in range(rows)]
        for spec in (s for s in self.specs if s.name in moving):
            if position % self.control_block == 0 or spec.name not in state.held:
                raw = params[spec.name][:, 0, offset].detach().cpu()
                # The map the one-shot render takes: _unit in the signal's dtype, natural in float32.
                normalised = _unit(raw).to(torch.float64)
                state.held[spec.name] = spec.to_natural(normalised).numpy().astype(np.float32)
            for r in range(rows):
                values[r][spec.name] = float(state.held[spec.name][r])
        return values

    def _process_row(self, target: BlackBoxTarget, effect: Any, audio: np.ndarray, values: dict[str, float],
                     row: int, channels: int) -> np.ndarray:
        assert self.process_block is not None
        samples = audio.shape[-1]
        try:
            y = self.process_block(effect, audio, self.sample_rate, **values)
        except Exception as exc:
            raise BlackBoxError(f"black box {self.name!r}, {_row_name(target, row)}: process_block raised "
                                f"{type(exc).__name__}: {exc}") from exc
        y = np.asarray(y, dtype=np.float32).reshape(-1, samples) if np.ndim(y) == 1 else np.asarray(y)
        if y.shape != (channels, samples) or not np.isfinite(y).all():
            raise BlackBoxError(f"black box {self.name!r}, {_row_name(target, row)}: process_block returned "
                                f"shape {tuple(y.shape)} (finite: {bool(np.isfinite(y).all())}); expected "
                                f"finite [{channels}, {samples}]")
        return y

    # -- parameters ---------------------------------------------------------
    def _raw_columns(self, params: Mapping[str, torch.Tensor], nodes: int) -> torch.Tensor:
        extra = sorted(set(params) - {s.name for s in self.specs})
        if extra:
            raise ParameterError(
                f"black box {self.name!r}: unexpected parameters {extra}; expected {[s.name for s in self.specs]}"
            )
        columns = []
        for spec in self.specs:
            if spec.name not in params:
                raise ParameterError(f"black box {self.name!r}: missing parameter {spec.name!r} ([{nodes}, 1])")
            value = params[spec.name]
            if not isinstance(value, torch.Tensor) or value.shape not in ((nodes,), (nodes, 1)):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ParameterError(
                    f"black box {self.name!r}: parameter {spec.name!r} has shape {shape}; expected [{nodes}, 1]"
                )
            if not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value.reshape(nodes))).nonzero()[0, 0])
                raise ParameterError(
                    f"black box {self.name!r}: parameter {spec.name!r} is {float(value.reshape(nodes)[bad])} "
                    f"at node row {bad}; raw values must be finite"
                )
            columns.append(value.reshape(nodes))
        if not columns:
            return torch.zeros(nodes, 0)
        return torch.stack(columns, dim=1)

    def natural_parameters(self, **params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Natural values ``[nodes]`` per control from raw parameters (differentiable)."""
        nodes = next(iter(params.values())).shape[0] if params else 0
        normalised = _unit(self._raw_columns(params, nodes))
        return self.render_target().keyword_parameters(normalised)

    def received_parameters(self, **params: torch.Tensor) -> list[dict[str, float]]:
        """What each node's effect receives for these raw parameters: the values a forward call passes.

        Args:
            params: raw values, ``[nodes, 1]`` (or ``[nodes]``) per control, as for ``forward``.

        Returns:
            One ``{name: value}`` per node row, each value the float32 number the effect is given.

        Raises:
            ParameterError: a control is missing, unexpected, misshapen or not finite.
        """
        nodes = next(iter(params.values())).shape[0] if params else 0
        normalised = _unit(self._raw_columns({k: v.detach() for k, v in params.items()}, nodes))
        natural = BlackBoxTarget(self)._natural(normalised)
        columns = [s.name for s in self.specs]
        return [{n: float(v) for n, v in zip(columns, row)} for row in natural.tolist()]

    def raw_parameters(self, **natural: float | torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw ``[nodes, 1]`` tensors giving these natural values (``[nodes]`` or scalars).

        Raises:
            ParameterError: an unknown control name.
        """
        by_name = {s.name: s for s in self.specs}
        out = {}
        for key, value in natural.items():
            if key not in by_name:
                raise ParameterError(f"black box {self.name!r}: unknown parameter {key!r}; it has {list(by_name)}")
            v = torch.as_tensor(value, dtype=torch.float64).reshape(-1, 1)
            out[key] = by_name[key].to_raw(v).float()
        return out

    def _warn(self, normalised: torch.Tensor) -> None:
        if normalised.requires_grad:
            for spec in self.specs:
                if not spec.differentiable:
                    warn_once(self._warned, spec.name,
                              f"black box {self.name!r}: parameter {spec.name!r} is not differentiable; "
                              "its gradient is zero", NonDifferentiableParameterWarning, stacklevel=5)

    @property
    def nondifferentiable_parameters(self) -> tuple[str, ...]:
        """Names of the controls whose gradient is zero by declaration."""
        return tuple(spec.name for spec in self.specs if not spec.differentiable)

    # -- estimators ---------------------------------------------------------
    def render_target(self, dtype: torch.dtype | None = None) -> BlackBoxTarget:
        """This processor as a render target for estimators and :func:`train_proxy`."""
        return BlackBoxTarget(self, self.node_labels)

    def with_estimator(self, estimator: Estimator | str, *, signal_gradient: str = "auto",
                       **estimator_options: Any) -> BlackBoxProcessor:
        """A copy of this processor using another estimator (same effect, parameters, workers and runner)."""
        return BlackBoxProcessor(self.function, self.specs, effect_factory=self.effect_factory, process=self.process,
                                 sample_rate=self.sample_rate, estimator=estimator, signal_gradient=signal_gradient,
                                 runner=self.runner.fresh(), output_channels=self.output_channels, name=self.name,
                                 instances=self.instances, serialise_instantiation=self.serialise_instantiation,
                                 check_determinism=self.check_determinism, control_block=self.control_block,
                                 knots=self.knots, **estimator_options)

    # -- items --------------------------------------------------------------
    def for_workers(self) -> BlackBoxProcessor:
        """A shallow copy that renders items as this one does, without the estimator.

        What a runner ships to worker processes: they only call
        :meth:`process_item`, and an estimator may hold tensors they must not
        load (a neural proxy on a GPU would make every worker open a CUDA context).
        """
        clone = copy.copy(self)
        clone.estimator = None
        return clone

    def process_item(self, audio: np.ndarray, natural: Mapping[str, Any]) -> np.ndarray:
        """Run the effect on one ``[channels, samples]`` float32 item (in the calling thread).

        An automated control's natural value is a float32 array, one value per
        block of :attr:`control_block` samples; a ``function`` or ``process``
        receives it as such, the default for effect objects sets it before each block.
        """
        if self.function is not None:
            return self.function(audio, self.sample_rate, **natural)
        assert self._effects is not None
        with self._effects.acquire() as effect:
            if self.process is not None:
                return self.process(effect, audio, self.sample_rate, **natural)
            return _set_and_call(effect, audio, self.sample_rate, self._attributes, self.control_block, **natural)

    def extra_repr(self) -> str:
        specs = ", ".join(s.describe() for s in self.specs)
        return (f"name={self.name!r}, parameters=[{specs}], estimator={self.estimator!r}, "
                f"signal_gradient={self.signal_gradient!r}, {self.runner.describe()}, "
                f"instances={self.instances!r}")


@dataclass
class BlockStreamState:
    """A black box's state in a stream: one effect instance per node, kept for the whole stream, the
    samples rendered so far (where the control blocks of its curves fall) and the value each moving
    control holds since its current control block began."""

    effects: list[Any]
    position: int = 0
    held: dict[str, np.ndarray] = field(default_factory=dict)
    late: list[int] = field(default_factory=list)
    """Each node's input samples skipped at the stream's start (:meth:`BlackBoxProcessor.start_late`)."""
    natural: tuple[list[Any], list[dict[str, float]]] | None = None
    """The constant controls' natural values and the parameter tensors they came from."""

    def __getitem__(self, row: int) -> Any:
        """Node ``row``'s effect instance."""
        return self.effects[row]

    def __len__(self) -> int:
        return len(self.effects)


def _control_pieces(start: int, stop: int, block: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` cut where control blocks of ``block`` samples begin (``None``: not cut)."""
    if block is None:
        return [(start, stop)]
    cuts = [start, *range((start // block + 1) * block, stop, block), stop]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]
