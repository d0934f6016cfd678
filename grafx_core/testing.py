"""Conformance kit for processor authors: :func:`check_processor`.

As scikit-learn's ``check_estimator`` does for estimators, one call runs every
check a processor must pass to work in a graph, and raises
:class:`~grafx_core.errors.ConformanceError` naming the first check that
failed and why::

    from grafx_core.testing import check_processor

    def test_my_compressor_conforms():
        check_processor(MyCompressor())

**Valid parameters.** Each parameter row is drawn around a centre: the
processor's optional ``default_parameters()`` value, else the middle of its
declared range (``parameter_ranges()``, geometric on a ``"log"`` scale). A
parameter with a declared :class:`~grafx_core.ParameterRange` gets Gaussian
noise of standard deviation ``perturbation`` times the range's width
(``high - low``, or ``log(high / low)`` applied as a factor on a log scale),
folded back into ``[low, high]`` at the ends; one without a range gets noise
of standard deviation ``perturbation`` in its own units around its default,
or a standard normal without a default, the convention for raw,
unconstrained parameters. Input signals are Gaussian noise of standard
deviation 0.5 with, for each inlet, the channel count its ``inlet_channels``
declaration accepts (stereo when it accepts stereo or declares nothing). All
draws are seeded by ``seed``. A ``forward`` that raises is reported with the
values it was given.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ._kit_curves import check_time_varying
from ._kit_inputs import describe_inputs, draw_parameter
from .description import describe
from ._paths import leaves, nest
from .errors import ConformanceError
from .control import Control
from .description import ProcessorDescription
from .processor import node_shares
from .state import render_in_blocks
from .curves import curve_frames, curve_to_samples
from .gradient_report import gradient_report  # noqa: F401  (re-exported: grafx_core.testing.gradient_report)

__all__ = ["check_processor", "CHECKS"]

CHECKS = (
    "protocol",
    "parameter-size",
    "output",
    "finite",
    "batch-consistency",
    "gradient-flow",
    "gradcheck",
    "time-varying",
    "estimator-agreement",
    "streaming",
)
"""The checks :func:`check_processor` runs, in order; all but the first three can be skipped."""

_ESTIMATED_KINDS = ("finite-difference", "spsa")
_PARAMETER_WORDS = ("parameter_size()", "parameter_ranges()", "default_parameters()", "controls()", "Control:",
                    "parameter '")
_DEFAULT_MIN_COSINE = {"finite-difference": 0.99, "spsa": 0.7}

Path = tuple[str, ...]


STREAM_SPLITS: tuple[tuple[int, ...], ...] = ((1, 63), (100, 37))
"""Block sizes the ``streaming`` check renders in (each cycled until the signal ends)."""


class _Checker:
    """The state shared by the checks: the processor and one seeded set of inputs."""

    def __init__(self, processor: Any, *, num_nodes: int, channels: int | Mapping[str, int] | None, num_samples: int,
                 device: torch.device | str | None, dtype: torch.dtype, seed: int, perturbation: float,
                 nondifferentiable: Collection[str], rtol: float, atol: float) -> None:
        self.processor = processor
        self.label = type(processor).__name__
        self.nodes, self.samples = num_nodes, num_samples
        self.dtype, self.rtol, self.atol = dtype, rtol, atol
        buffers = processor.buffers() if isinstance(processor, nn.Module) else iter(())
        self.device = torch.device(device) if device is not None else next(
            (b.device for b in buffers), torch.device("cpu"))
        self.channels = channels
        self.seed, self.perturbation = seed, perturbation
        self.frozen = set(nondifferentiable)

    def fail(self, check: str, message: str) -> None:
        raise ConformanceError(check, f"{self.label}: {message}")

    # -- protocol and parameters ---------------------------------------------------
    def check_protocol(self) -> None:
        p = self.processor
        if not isinstance(p, nn.Module):
            self.fail("protocol", f"expected a torch.nn.Module, got {type(p).__name__}")
        owned = [name for name, _ in p.named_parameters()]
        if owned:
            self.fail("protocol", f"holds nn.Parameters {owned}; processors are stateless and get every "
                                  "parameter as a forward() argument")
        try:
            description = describe(p)
        except (TypeError, ValueError) as exc:
            message = str(exc).removeprefix(f"{self.label}: ")
            self.fail("parameter-size" if any(word in message for word in _PARAMETER_WORDS) else "protocol", message)
        self.description: ProcessorDescription = description
        self.kind = description.gradient_kind
        self.inlets, self.outlets = description.inlets, description.outlets
        for attr, ports in (("inlets", self.inlets), ("outlets", self.outlets)):
            if not all(isinstance(n, str) and n for n in ports) or len(set(ports)) != len(ports):
                self.fail("protocol", f"{attr} {ports!r} must be distinct non-empty strings")
        if not self.outlets:
            self.fail("protocol", "has no outlets; a processor returns at least one signal")
        if not hasattr(p, "parameter_size") and not description.declared:
            self.fail("protocol", "has no parameter_size() method (nor controls())")
        self.accepted = dict(description.inlet_channels)
        # Parameters the processor itself declares non-differentiable (a
        # black box's ParameterSpec(differentiable=False)) are exempt too.
        self.frozen |= {".".join(path) for path in description.nondifferentiable()}

    def check_parameter_size(self) -> None:
        controls = self.description.controls
        self.layout: list[tuple[Path, tuple[int, ...]]] = [(path, c.shape) for path, c in controls.items()]
        self._check_signature({path[0] for path in controls})
        self.ranges: dict[Path, Control] = {path: c for path, c in controls.items()
                                            if c.bounded and not c.unconstrained}
        self.defaults: dict[Path, torch.Tensor] = {
            path: torch.tensor(self.description.parameter_default(path), dtype=torch.float64).reshape(c.shape)
            for path, c in controls.items() if c.default is not None or self.description.declared}

    def _check_signature(self, declared: set[str]) -> None:
        try:
            signature = inspect.signature(self.processor.forward)
        except (TypeError, ValueError):  # a builtin or C forward: rely on the call checks
            return
        params = list(signature.parameters.values())
        kinds = {p.kind for p in params}
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if inspect.Parameter.VAR_POSITIONAL not in kinds and len(positional) < len(self.inlets):
            self.fail("parameter-size", f"forward takes {len(positional)} signal(s) but the processor has "
                                        f"inlets {self.inlets}")
        for slot, inlet in zip(positional, self.inlets):
            if slot.name in declared:
                self.fail("parameter-size", f"forward's argument {slot.name!r} would receive the signal of inlet "
                                            f"{inlet!r}: signals come first, one per inlet of {self.inlets}")
        named = [p for p in params if p.kind == p.KEYWORD_ONLY]
        if inspect.Parameter.VAR_POSITIONAL not in kinds:
            named += positional[len(self.inlets):]
        accepted = {p.name for p in named}
        if inspect.Parameter.VAR_KEYWORD not in kinds and declared - accepted:
            self.fail("parameter-size", f"parameter_size() declares {sorted(declared - accepted)}, which "
                                        f"forward does not accept (it takes {sorted(accepted)})")
        required = {p.name for p in named if p.default is p.empty}
        if required - declared:
            self.fail("parameter-size", f"forward requires {sorted(required - declared)}, which "
                                        f"parameter_size() does not declare ({sorted(declared)})")

    # -- inputs and calls ------------------------------------------------------------
    def inlet_channel_count(self, inlet: str) -> int:
        accepted = self.accepted[inlet]
        given = self.channels.get(inlet) if isinstance(self.channels, Mapping) else self.channels
        if given is None:
            return 2 if accepted is None or 2 in accepted else accepted[0]
        if accepted is not None and given not in accepted:
            raise ValueError(f"check_processor(channels=...) gives inlet {inlet!r} of {self.label} {given} "
                             f"channel(s), but its inlet_channels accepts {' or '.join(map(str, accepted))}; "
                             "leave channels out to feed what it declares")
        return given

    def draw(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        self.signals = []
        for inlet in self.inlets:
            x = 0.5 * torch.randn(self.nodes, self.inlet_channel_count(inlet), self.samples, generator=gen,
                                  dtype=torch.float64)
            self.signals.append(x.to(self.device, self.dtype))
        self.params = []
        for path, shape in self.layout:
            noise = torch.randn(self.nodes, *shape, generator=gen, dtype=torch.float64)
            value = draw_parameter(noise, self.ranges.get(path), self.defaults.get(path), self.perturbation)
            self.params.append(value.to(self.device, self.dtype))

    def describe_inputs(self, signals: list[torch.Tensor], params: list[torch.Tensor]) -> str:
        return describe_inputs(self.inlets, [".".join(path) for path, _ in self.layout], signals, params)

    def call(self, signals: list[torch.Tensor], params: list[torch.Tensor], processor: Any = None,
             check: str = "output") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Outputs and floating aux leaves of one forward call, checked for structure."""
        try:
            result = (processor or self.processor)(*signals, **nest(zip([p for p, _ in self.layout], params)))
        except ConformanceError:
            raise
        except Exception as exc:
            self.fail(check, f"forward raised {type(exc).__name__}: {str(exc) or '(no message)'}, given "
                             f"{self.describe_inputs(signals, params)} (see grafx_core.testing for how "
                             "they are drawn)")
        aux: Any = {}
        if isinstance(result, torch.Tensor):
            outs = [result]
        elif isinstance(result, (tuple, list)):
            outs = list(result)
            if outs and isinstance(outs[-1], Mapping):
                aux = outs.pop()
        else:
            self.fail(check, f"forward returned {type(result).__name__}; expected a tensor or a tuple")
        if len(outs) != len(self.outlets) or not all(isinstance(o, torch.Tensor) for o in outs):
            self.fail(check, f"forward returned {[type(o).__name__ for o in outs]}; expected one tensor per "
                             f"outlet {self.outlets}")
        nodes = signals[0].shape[0] if signals else self.nodes
        aux_tensors = []
        self.shared_aux: set[int] = set()
        for path, value in leaves(aux):
            share = node_shares(value, nodes, outs[0])
            if share is not None:  # a scalar for the whole call, split as the engine does
                value = share
                self.shared_aux.add(len(aux_tensors))
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != nodes:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                self.fail(check, f"aux value {'.'.join(path)!r} is {shape}; expected a tensor [{nodes}, ...] "
                                 "or a scalar")
            if value.is_floating_point():
                aux_tensors.append(value)
        return outs, aux_tensors

    def check_output(self) -> None:
        with torch.no_grad():
            outs, aux = self.call(self.signals, self.params)
        shared = self.shared_aux
        for name, out in zip(self.outlets, outs):
            where = f"outlet {name!r}"
            if out.dim() != 3 or out.shape[0] != self.nodes or (self.signals and out.shape[2] != self.samples):
                self.fail("output", f"{where} has shape {tuple(out.shape)}; expected [{self.nodes}, channels, "
                                    f"{self.samples}] for inputs {[tuple(s.shape) for s in self.signals]}")
            if out.dtype != self.dtype or out.device != self.device:
                self.fail("output", f"{where} is {out.dtype} on {out.device}; expected the inputs' "
                                    f"{self.dtype} on {self.device}")
        self.outputs, self.aux, self.shared = outs, aux, shared

    def check_finite(self) -> None:
        named = [(f"outlet {o!r}", t) for o, t in zip(self.outlets, self.outputs)]
        for name, value in named + [(f"aux value {k}", a) for k, a in enumerate(self.aux)]:
            if not bool(torch.isfinite(value).all()):
                self.fail("finite", f"{name} has NaN or Inf for random valid parameters, given "
                                    f"{self.describe_inputs(self.signals, self.params)} (see grafx_core.testing "
                                    "for how they are drawn)")

    def check_batch_consistency(self) -> None:
        rows = []
        with torch.no_grad():
            for n in range(self.nodes):
                rows.append(self.call([s[n:n + 1] for s in self.signals], [p[n:n + 1] for p in self.params],
                                      check="batch-consistency"))
        for k, batched in enumerate([*self.outputs, *self.aux]):
            if k - len(self.outputs) in self.shared:
                continue  # a scalar for the whole call depends on the batch by design
            single = torch.cat([(o + a)[k] for o, a in rows])
            what = f"outlet {self.outlets[k]!r}" if k < len(self.outlets) else f"aux value {k - len(self.outlets)}"
            self.assert_close("batch-consistency", batched, single,
                              f"{what} of a batch of {self.nodes} nodes differs from the nodes rendered one by one")

    def streams(self) -> bool:
        description = describe(self.processor)
        return description.stateful or description.memoryless

    def check_streaming(self, atol: float) -> None:
        latency = describe(self.processor).latency_samples
        self._check_blocks(atol, self.params, self.outputs, STREAM_SPLITS, latency, "")
        moving = describe(self.processor).time_varying()
        if moving and not latency:  # a late processor's curves would have to be shifted: left to one render
            params = self.moving_params(moving)
            with torch.no_grad():
                outputs, _ = self.call(self.signals, params, check="streaming")
            self._check_blocks(atol, params, outputs, STREAM_SPLITS[-1:], 0,
                               f" with {', '.join('.'.join(p) for p in moving)} moving")

    def moving_params(self, moving: Sequence[Path]) -> list[torch.Tensor]:
        """The drawn parameters with every control of ``moving`` a moving curve ``[nodes, *shape, samples]``:
        control frames drawn around the parameter's value (seeded), expanded as the engine expands them."""
        gen = torch.Generator().manual_seed(self.seed + 3)
        hop = max(1, self.samples // 8)
        frames = curve_frames(self.samples, hop)
        params = list(self.params)
        for i, (path, _) in enumerate(self.layout):
            if path in moving:
                base = params[i].detach().to(torch.float64).cpu()
                noise = torch.randn(*base.shape, frames, generator=gen, dtype=torch.float64)
                control = draw_parameter(noise, self.ranges.get(path), base.unsqueeze(-1), self.perturbation)
                params[i] = curve_to_samples(control.to(params[i].device, params[i].dtype), self.samples, hop)
        return params

    def _check_blocks(self, atol: float, params: list[torch.Tensor], outputs: list[torch.Tensor],
                      splits: Sequence[tuple[int, ...]], latency: int, moving: str) -> None:
        """Render in blocks of each of ``splits`` from ``initial_state`` against one forward's ``outputs``."""
        nested = nest(zip([p for p, _ in self.layout], params))
        # A late processor is flushed with silence, as a stream does at its end.
        signals = [torch.nn.functional.pad(x, (0, latency)) for x in self.signals]
        for sizes in splits:
            try:
                with torch.no_grad():
                    blocked = render_in_blocks(self.processor, signals, nested, sizes)
            except Exception as exc:
                self.fail("streaming", f"rendering in blocks of {list(sizes)}{moving} raised "
                                       f"{type(exc).__name__}: {exc}")
            for name, whole, part in zip(self.outlets, outputs, blocked):
                part = part[..., latency:]
                scale = max(float(whole.abs().max()) if whole.numel() else 0.0, 1.0)
                error = float((whole - part).abs().max()) if whole.numel() else 0.0
                if not error <= atol * scale and not self._as_close_to_float64(name, whole, part, atol * scale,
                                                                                params):
                    self.fail("streaming", f"outlet {name!r} rendered in blocks of {list(sizes)}{moving} from "
                                           f"initial_state differs from one forward by {error:.3g} (allowed "
                                           f"{atol * scale:.3g})")

    def _as_close_to_float64(self, outlet: str, whole: torch.Tensor, part: torch.Tensor, atol: float,
                             params: list[torch.Tensor]) -> bool:
        """Whether the blocks are no farther from a float64 forward than one float32 forward is (plus ``atol``):
        a float32 forward is itself only that close to the exact result (long FFT convolutions, large gains)."""
        if self.dtype == torch.float64:
            return False
        processor = copy.deepcopy(self.processor).to(torch.float64)
        signals = [s.detach().to(torch.float64) for s in self.signals]
        with torch.no_grad():
            reference = self.call(signals, [p.detach().to(torch.float64) for p in params], processor,
                                  check="streaming")[0][list(self.outlets).index(outlet)]
        own = float((whole.to(torch.float64) - reference).abs().max())
        return float((part.to(torch.float64) - reference).abs().max()) <= own + atol

    def assert_close(self, check: str, actual: torch.Tensor, expected: torch.Tensor, message: str) -> None:
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        try:
            torch.testing.assert_close(actual, expected, rtol=self.rtol, atol=self.atol * max(scale, 1.0))
        except AssertionError as exc:
            self.fail(check, f"{message}: {exc}")

    # -- gradients --------------------------------------------------------------------
    def weights(self) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed + 1)
        return [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.device, t.dtype)
                for t in [*self.outputs, *self.aux]]

    @staticmethod
    def node_losses(values: list[torch.Tensor], weights: list[torch.Tensor]) -> torch.Tensor:
        """``[nodes]`` losses: each node's outputs and aux values against fixed random weights."""
        return sum((v * w).reshape(v.shape[0], -1).sum(1, dtype=torch.float64) for v, w in zip(values, weights))

    def trainable(self) -> list[int]:
        return [i for i, (path, _) in enumerate(self.layout) if ".".join(path) not in self.frozen]

    def gradients(self, signals_need_grad: bool) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        signals = [s.detach().requires_grad_(signals_need_grad) for s in self.signals]
        params = [p.detach().requires_grad_(i in self.trainable()) for i, p in enumerate(self.params)]
        leaves = [s for s in signals if s.requires_grad] + [p for p in params if p.requires_grad]
        outs, aux = self.call(signals, params, check="gradient-flow")
        loss = self.node_losses([*outs, *aux], self.weights()).sum()
        if not loss.requires_grad:
            self.fail("gradient-flow", f"no output depends on the inputs through autograd, but gradient_kind "
                                       f"is {self.kind!r}")
        grads = list(torch.autograd.grad(loss, leaves, allow_unused=True))
        signal_grads = [grads.pop(0) for s in signals if s.requires_grad]
        return signal_grads, [grads.pop(0) if p.requires_grad else None for p in params]

    def check_gradient_flow(self) -> None:
        autograd = self.kind == "autograd"
        if not autograd and not self.trainable():
            return  # nothing is meant to get a gradient (every parameter non-differentiable)
        signal_grads, param_grads = self.gradients(signals_need_grad=autograd)
        for inlet, grad in zip(self.inlets, signal_grads):
            if grad is None or not bool(torch.isfinite(grad).all()):
                self.fail("gradient-flow", f"inlet {inlet!r} gets {'no' if grad is None else 'a non-finite'} "
                                           "gradient")
        for i in self.trainable():
            name, grad = ".".join(self.layout[i][0]), param_grads[i]
            if grad is None:
                self.fail("gradient-flow", f"parameter {name!r} gets no gradient (detached, or unused by forward?); "
                                       "list it in nondifferentiable= if that is intended")
            if not bool(torch.isfinite(grad).all()):
                self.fail("gradient-flow", f"parameter {name!r} gets a non-finite gradient")

    def check_gradcheck(self) -> None:
        processor = copy.deepcopy(self.processor).to(torch.float64)
        trainable = self.trainable()
        signals = [s.detach().to(torch.float64).requires_grad_() for s in self.signals]
        params = [p.detach().to(torch.float64).requires_grad_(i in trainable) for i, p in enumerate(self.params)]
        count = len(signals)

        def function(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            outs, aux = self.call(list(inputs[:count]), list(inputs[count:]), processor, check="gradcheck")
            return (*outs, *aux)

        try:
            torch.autograd.gradcheck(function, (*signals, *params), eps=1e-6, atol=1e-5, rtol=1e-3,
                                     fast_mode=True)
        except RuntimeError as exc:  # torch's GradcheckError is a RuntimeError
            self.fail("gradcheck", f"float64 gradcheck failed: {exc}")

    def check_estimator_agreement(self, fd_step: float, min_cosine: float | None, repeats: int | None) -> None:
        trainable = self.trainable()
        if not trainable:
            return
        per_node = sum(self.params[i][0].numel() for i in trainable)
        repeats = repeats or (1 if self.kind == "finite-difference" else max(16, 4 * per_node))
        estimate = torch.zeros(self.nodes, per_node, dtype=torch.float64, device=self.device)
        for _ in range(repeats):
            _, grads = self.gradients(signals_need_grad=False)
            estimate += torch.cat([grads[i].flatten(1).to(torch.float64) for i in trainable], 1) / repeats
        reference = self.finite_differences(trainable, fd_step)
        norm_e, norm_r = float(estimate.norm()), float(reference.norm())
        if norm_r < 1e-12 and norm_e < 1e-12:
            return
        cosine = float((estimate * reference).sum()) / max(norm_e * norm_r, 1e-300)
        floor = _DEFAULT_MIN_COSINE[self.kind] if min_cosine is None else min_cosine
        if cosine < floor:
            self.fail("estimator-agreement", f"the {self.kind} gradient has cosine similarity {cosine:.3f} with a "
                                             f"central finite-difference reference (step {fd_step}, {repeats} "
                                             f"backward pass(es) averaged); expected at least {floor}")
        if self.kind == "finite-difference" and abs(norm_e / norm_r - 1) > 0.1:
            self.fail("estimator-agreement", f"the finite-difference gradient's norm {norm_e:.4g} differs from "
                                             f"the reference's {norm_r:.4g} by more than 10%")

    def finite_differences(self, trainable: list[int], fd_step: float) -> torch.Tensor:
        """``[nodes, trainable elements]`` central differences, one column of every node at once
        (the nodes are independent, as batch consistency checked)."""
        weights = self.weights()
        columns = []
        with torch.no_grad():
            for i in trainable:
                base = self.params[i]
                for j in range(base[0].numel()):
                    diffs = []
                    for sign in (1.0, -1.0):
                        shifted = base.clone().flatten(1)
                        step = fd_step * shifted[:, j].abs().clamp(min=1.0)
                        shifted[:, j] += sign * step
                        params = list(self.params)
                        params[i] = shifted.reshape(base.shape)
                        outs, aux = self.call(self.signals, params, check="estimator-agreement")
                        diffs.append(self.node_losses([*outs, *aux], weights))
                    columns.append((diffs[0] - diffs[1]) / (2 * step.to(torch.float64)))
        return torch.stack(columns, 1)


def check_processor(
    processor: Any,
    *,
    num_nodes: int = 3,
    channels: int | Mapping[str, int] | None = None,
    num_samples: int = 256,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    gradcheck: bool = True,
    seed: int = 0,
    perturbation: float = 0.1,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    nondifferentiable: Collection[str] = (),
    fd_step: float = 1e-3,
    min_cosine: float | None = None,
    estimator_repeats: int | None = None,
    skip: Collection[str] = (),
    stream_atol: float = 1e-6,
) -> list[str]:
    """Check that ``processor`` follows the processor protocol; raise at the first failure.

    The checks, in order (see :data:`CHECKS`):

    - ``protocol``: an ``nn.Module`` without ``nn.Parameter``s; ``gradient_kind``
      is one of ``GRADIENT_KINDS``; distinct inlet and outlet names; a valid
      ``inlet_channels`` declaration.
    - ``parameter-size``: ``parameter_size()`` parses; ``forward`` accepts
      every top-level name it declares (unless it takes ``**params``) and
      requires no other (arguments with a default may stay undeclared);
      ``default_parameters()``, if any, fits those shapes;
      ``parameter_ranges()``, if any, names declared parameters.
    - ``output``: one ``[nodes, channels', samples]`` tensor per outlet in the
      inputs' dtype and on their device; aux values (an optional trailing
      dict) have ``nodes`` as first dimension or are scalars.
    - ``finite``: no NaN or Inf for random valid parameters (module docs).
    - ``batch-consistency``: a batch of nodes equals the nodes rendered one
      by one and stacked (``rtol``; ``atol`` times the output's peak); a
      scalar aux value (the whole call's) is left out.
    - ``gradient-flow`` (not for ``gradient_kind="none"``): a finite gradient
      reaches every parameter (but ``nondifferentiable``), and for autograd
      processors every inlet. A gradient that is zero at these parameters
      passes (a compressor's knee below its threshold); its correctness is
      what ``gradcheck`` and ``estimator-agreement`` check.
    - ``gradcheck`` (autograd only, if ``gradcheck``): ``torch.autograd.gradcheck``
      in float64 (fast mode) on a deep copy converted to float64.
    - ``time-varying`` (processors declaring moving controls, see
      :func:`grafx_core.describe`): each moving control given as a constant
      curve renders the plain value's output to 1e-6 of its peak; with a
      moving curve a batch equals its nodes rendered one by one; for autograd
      processors the gradient with respect to the first, middle and last
      control frame agrees with float64 central differences.
    - ``streaming`` (processors declaring ``initial_state``/``forward_stateful``
      or ``memoryless``): the signals rendered in blocks of several sizes
      (:data:`STREAM_SPLITS`), the state carried from ``initial_state``,
      equal one ``forward`` over the whole signal (``stream_atol`` times the
      output's peak, at least 1; or, where float32 rounding of one forward is
      larger, no farther from a float64 forward than one float32 forward is,
      plus that tolerance; a processor declaring ``latency_samples``
      is flushed with that much silence and its blocked output shifted back).
      A processor with moving controls and no latency is rendered in blocks
      once more with every moving control a curve (control frames drawn
      around its value, expanded per sample), each block handed its part of
      the curves, against one ``forward`` with the whole curves.
    - ``estimator-agreement`` (``"finite-difference"`` and ``"spsa"``): the
      parameters' estimated gradient of a fixed random linear loss, averaged
      over ``estimator_repeats`` backward passes (default 1 for finite
      differences, ``max(16, 4 * parameters per node)`` for SPSA), has cosine
      similarity at least ``min_cosine`` (default 0.99 for finite differences,
      0.7 for SPSA) with central differences of step
      ``fd_step * max(|p|, 1)``; for finite differences its norm is within
      10% of the reference's.

    Args:
        processor: the processor to check (left unchanged).
        num_nodes: rows in the batch (at least 2 for batch consistency to mean anything).
        channels: input channels, for every inlet or per inlet name; by
            default (and for inlets a mapping leaves out) each inlet gets what
            its ``inlet_channels`` declaration accepts, stereo preferred.
        num_samples: samples per signal.
        device: where to create inputs; default: the processor's buffers' device, else CPU.
        dtype: the inputs' floating dtype.
        gradcheck: run the float64 gradcheck for autograd processors.
        seed: seeds every random draw.
        perturbation: standard deviation of the noise added to each
            parameter's centre, as a fraction of its declared range's width
            (in its own units for parameters without a range).
        rtol, atol: batch-consistency tolerances.
        nondifferentiable: dotted parameter names exempt from gradient checks.
        fd_step, min_cosine, estimator_repeats: estimator-agreement settings.
        stream_atol: streaming tolerance (``0.0``: bit for bit, for a
            deterministic black box in one instance).
        skip: names of checks not to run (any but ``protocol``,
            ``parameter-size`` and ``output``).

    Returns:
        The names of the checks that ran.

    Raises:
        ConformanceError: the first failed check; ``.check`` holds its name.
        ValueError: ``skip`` names an unknown check, or ``channels`` gives an
            inlet a count its ``inlet_channels`` declaration does not accept.
    """
    unknown = set(skip) - set(CHECKS[3:])
    if unknown:
        raise ValueError(f"skip names {sorted(unknown)}; only {CHECKS[3:]} can be skipped (the first "
                         "three give the others their inputs)")
    checker = _Checker(processor, num_nodes=num_nodes, channels=channels, num_samples=num_samples, device=device,
                       dtype=dtype, seed=seed, perturbation=perturbation, nondifferentiable=nondifferentiable,
                       rtol=rtol, atol=atol)
    ran = []
    checker.check_protocol()
    ran.append("protocol")
    checker.check_parameter_size()
    ran.append("parameter-size")
    checker.draw()
    checker.check_output()
    ran.append("output")
    plan = [
        ("finite", True, checker.check_finite),
        ("batch-consistency", True, checker.check_batch_consistency),
        ("gradient-flow", checker.kind != "none", checker.check_gradient_flow),
        ("gradcheck", gradcheck and checker.kind == "autograd", checker.check_gradcheck),
        ("time-varying", bool(describe(processor).time_varying()), lambda: check_time_varying(checker)),
        ("estimator-agreement", checker.kind in _ESTIMATED_KINDS,
         lambda: checker.check_estimator_agreement(fd_step, min_cosine, estimator_repeats)),
        ("streaming", checker.streams(), lambda: checker.check_streaming(stream_atol)),
    ]
    for name, applies, run in plan:
        if applies and name not in skip:
            run()
            ran.append(name)
    return ran
