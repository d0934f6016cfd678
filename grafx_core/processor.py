"""The processor protocol.

A processor is a stateless :class:`torch.nn.Module`. Its ``forward(*signals,
**parameters)`` receives one tensor per inlet, each ``[nodes, channels,
samples]``, and one tensor per parameter whose first dimension is ``nodes``.
It returns one tensor per outlet (a tuple when it has several, each
``[nodes, channels', samples]``), optionally followed by a dict of auxiliary
values whose first dimension is ``nodes`` (regularisers, for instance). A
scalar aux value (a number or a one-element tensor, as GRAFX's
``GainStagingRegularization`` returns) is the whole call's: each of the
call's nodes gets an equal share (see :func:`node_shares`).

``parameter_size()`` gives each parameter's shape without the node dimension,
as a (possibly nested) dict of ints or tuples. Inlets and outlets are named by
the class attributes ``inlets`` and ``outlets``; both default to
``("main",)``. The optional attribute ``gradient_kind`` says how the
processor's gradient is obtained (``"autograd"`` when absent). The optional
method ``default_parameters()`` returns a (nested) dict of per-node starting
values, each of its parameter's shape without the node dimension;
:func:`~grafx_core.create_empty_parameters` and the conformance kit use it,
and zeros stand in for any value it leaves out.

A processor may also declare, for the engine, the conformance kit and tools
that read processors (a parameter predictor, a GUI):

- ``inlet_channels``: the channel counts each inlet accepts, as a mapping
  from inlet name to an int (``1`` mono only, ``2`` stereo only), a tuple of
  ints (``(1, 2)``) or ``None`` (any count, the default); a single value
  applies to every inlet. The engine raises
  :class:`~grafx_core.errors.InletChannelError` before calling a processor
  with a signal it does not accept; read it with :func:`accepted_channels`.
- ``parameter_ranges()``: a (nested) mapping from parameter name to
  :class:`ParameterRange`, the range of values ``forward`` takes for it;
  parameters it leaves out are unbounded. Read it with
  :func:`parameter_ranges`.
- ``nondifferentiable_parameters``: the dotted names of parameters that get
  no useful gradient (a switch, a whole-sample delay).
- ``concurrent_calls = True``: a call may run on another thread while other
  stages render (work that releases the GIL, such as a black box's thread
  pool); the engine then starts the stage and renders the stages that do not
  depend on it meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, Union

import torch
from torch import nn

from ._paths import leaves

__all__ = [
    "Processor",
    "ProcessorLike",
    "ParameterRange",
    "PARAMETER_SCALES",
    "parameter_ranges",
    "accepted_channels",
    "nondifferentiable_parameters",
    "node_shares",
    "ParameterSize",
    "GRADIENT_KINDS",
    "inlet_names",
    "outlet_names",
    "gradient_kind",
    "normalized_parameter_size",
    "iter_parameter_shapes",
]

ParameterSize = Mapping[str, Union[int, tuple[int, ...], "ParameterSize"]]
"""A (nested) mapping from parameter name to its shape without the node dimension."""

GRADIENT_KINDS = (
    "autograd",
    "finite-difference",
    "spsa",
    "straight-through",
    "neural-proxy",
    "none",
)
"""The ways a processor's gradient can be obtained."""

SIGNAL_GRADIENTS = ("spectral-ratio", "fft-ratio", "smooth-gain", "diagonal", "gain-tangent", "tangent-ratio", "band-tangent",
                    "fine-band-tangent", "wide-band-tangent", "straight-through", "spsa", "proxy", "none")
"""How the gradient with respect to an input signal is obtained (or ``"auto"``): what a processor's
optional ``signal_gradient`` declares and an estimator's ``signal_gradient=`` option takes."""

DEFAULT_PORTS = ("main",)

PARAMETER_SCALES = ("linear", "log")
"""How a :class:`ParameterRange` is best sampled and displayed."""


class ParameterRange(NamedTuple):
    """The range of values a processor's ``forward`` takes for one parameter.

    Attributes:
        low: smallest meaningful value, in ``unit``.
        high: largest meaningful value (``high > low``).
        unit: the value's unit (``"dB"``, ``"Hz"``, ``"ms"``; ``""`` when
            dimensionless).
        scale: ``"linear"``, or ``"log"`` when equal ratios matter more than
            equal differences (frequencies, times; needs ``low > 0``).
    """

    low: float
    high: float
    unit: str = ""
    scale: str = "linear"

    def centre(self) -> float:
        """The middle of the range: arithmetic for ``"linear"``, geometric for ``"log"``."""
        if self.scale == "log":
            return math.sqrt(self.low * self.high)
        return 0.5 * (self.low + self.high)


class ProcessorLike(Protocol):
    """The static type of a processor: anything called as ``processor(*signals, **parameters)``.

    Every declaration (``controls()``, ``parameter_size()``, ``inlets``, ...) is
    optional and read by :func:`~grafx_core.describe`; a ``torch.nn.Module``
    with a ``forward`` is one.
    """

    def __call__(self, *signals: Any, **parameters: Any) -> Any: ...


class Processor(nn.Module):
    """Optional base class for processors; documents and defaults the protocol.

    Subclasses override :meth:`forward` and :meth:`parameter_size`, and may set
    ``inlets``, ``outlets`` and ``gradient_kind``. Nothing requires a processor
    to inherit from it: any module with ``forward`` and ``parameter_size``
    works.
    """

    inlets: tuple[str, ...] = DEFAULT_PORTS
    outlets: tuple[str, ...] = DEFAULT_PORTS
    gradient_kind: str = "autograd"
    inlet_channels: Any = None

    def parameter_size(self) -> ParameterSize:
        """Each parameter's shape without the node dimension (empty by default)."""
        return {}


def inlet_names(processor: Any) -> tuple[str, ...]:
    """The processor's inlet names, in the order ``forward`` takes its signals."""
    return tuple(getattr(processor, "inlets", DEFAULT_PORTS))


def outlet_names(processor: Any) -> tuple[str, ...]:
    """The processor's outlet names, in the order ``forward`` returns them."""
    return tuple(getattr(processor, "outlets", DEFAULT_PORTS))


def accepted_channels(processor: Any) -> dict[str, tuple[int, ...] | None]:
    """The channel counts each inlet accepts, from the processor's ``inlet_channels``.

    Returns:
        Inlet name to a tuple of accepted counts, or ``None`` for any count;
        inlets the declaration leaves out accept any count.

    Raises:
        TypeError: ``inlet_channels`` is not ``None``, a positive int, a
            sequence of them, or a mapping from inlet names to those.
        ValueError: it names an inlet the processor does not have.
    """
    declared = getattr(processor, "inlet_channels", None)
    inlets = inlet_names(processor)
    who = type(processor).__name__
    if isinstance(declared, Mapping):
        unknown = sorted(set(declared) - set(inlets))
        if unknown:
            raise ValueError(f"{who}: inlet_channels names {unknown}, which are not inlets (inlets: {list(inlets)})")
        return {inlet: _channel_counts(declared.get(inlet), who, inlet) for inlet in inlets}
    return {inlet: _channel_counts(declared, who, inlet) for inlet in inlets}


def _channel_counts(value: Any, who: str, inlet: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    counts = (value,) if isinstance(value, int) else tuple(value) if isinstance(value, Sequence) else ()
    if not counts or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts):
        raise TypeError(f"{who}: inlet_channels of inlet {inlet!r} must be None (any), a positive int or a "
                        f"sequence of them, got {value!r}")
    return counts


def parameter_ranges(processor: Any) -> dict[str, Any]:
    """The processor's declared ``parameter_ranges()``, checked against ``parameter_size()``.

    Returns:
        A nested dict shaped like (part of) :func:`normalized_parameter_size`,
        with a :class:`ParameterRange` at each declared leaf; empty when the
        processor declares none.

    Raises:
        ValueError: a range names a parameter ``parameter_size()`` does not
            declare, has ``low >= high``, an unknown scale, or a ``"log"``
            scale with ``low <= 0``.
        TypeError: a leaf is not a :class:`ParameterRange` (or a
            ``(low, high[, unit[, scale]])`` tuple).
    """
    method = getattr(processor, "parameter_ranges", None)
    if method is None:
        return {}
    who = type(processor).__name__
    size = normalized_parameter_size(processor)

    def walk(ranges: Mapping[str, Any], size: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in ranges.items():
            path = f"{prefix}{name}"
            if name not in size:
                raise ValueError(f"{who}: parameter_ranges() has {path!r}, which parameter_size() does not "
                                 f"declare (it declares {sorted(size)})")
            if isinstance(value, Mapping) and isinstance(size[name], Mapping):
                out[name] = walk(value, size[name], path + ".")
            elif isinstance(size[name], Mapping):
                raise TypeError(f"{who}: parameter_ranges() entry {path!r} must be a mapping like its "
                                f"parameter_size() entry, got {value!r}")
            else:
                out[name] = _checked_range(value, who, path)
        return out

    return walk(method() or {}, size, "")


def _checked_range(value: Any, who: str, path: str) -> ParameterRange:
    if not isinstance(value, tuple) or not 2 <= len(value) <= 4:
        raise TypeError(f"{who}: parameter_ranges() entry {path!r} must be a ParameterRange, got {value!r}")
    bounds = ParameterRange(*value)
    if not float(bounds.low) < float(bounds.high):
        raise ValueError(f"{who}: range of {path!r} needs low < high, got {bounds}")
    if bounds.scale not in PARAMETER_SCALES:
        raise ValueError(f"{who}: range of {path!r} has scale {bounds.scale!r}; expected one of {PARAMETER_SCALES}")
    if bounds.scale == "log" and not bounds.low > 0:
        raise ValueError(f"{who}: range of {path!r} is on a log scale, so it needs low > 0, got {bounds}")
    return ParameterRange(float(bounds.low), float(bounds.high), str(bounds.unit), bounds.scale)


def nondifferentiable_parameters(processor: Any) -> tuple[str, ...]:
    """The dotted names the processor declares in ``nondifferentiable_parameters`` (empty if none)."""
    return tuple(getattr(processor, "nondifferentiable_parameters", ()))


def node_shares(value: Any, nodes: int, like: torch.Tensor) -> torch.Tensor | None:
    """A scalar aux value split into ``[nodes]`` equal shares that sum to it.

    Args:
        value: an aux value as a processor returned it.
        nodes: the rows of the call (batch items times nodes).
        like: a tensor whose device (and, for a plain number, dtype) the shares take.

    Returns:
        ``value / nodes`` repeated ``nodes`` times, or ``None`` when ``value``
        is not a number or a one-element tensor without a node dimension (an
        aux value ``[nodes, ...]`` is kept as it is).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        return None
    if isinstance(value, torch.Tensor) and (value.numel() != 1 or (value.ndim > 0 and nodes == 1)):
        return None
    tensor = torch.as_tensor(value, device=like.device,
                             dtype=None if isinstance(value, torch.Tensor) else like.dtype)
    return (tensor.reshape(()) / nodes).expand(nodes)


def gradient_kind(processor: Any) -> str:
    """How the processor's gradient is obtained (one of :data:`GRADIENT_KINDS`)."""
    return str(getattr(processor, "gradient_kind", "autograd"))


def _as_shape(size: Any, path: str) -> tuple[int, ...]:
    if isinstance(size, int):
        return (size,)
    if isinstance(size, torch.Size) or (
        isinstance(size, (tuple, list)) and all(isinstance(s, int) for s in size)
    ):
        return tuple(int(s) for s in size)
    raise TypeError(
        f"parameter_size() entry {path!r} must be an int, a tuple of ints or a dict, "
        f"got {size!r}"
    )


def normalized_parameter_size(processor: Any) -> dict[str, Any]:
    """``processor.parameter_size()`` with every leaf turned into a tuple shape.

    Returns an empty dict for processors without ``parameter_size``.
    """

    def walk(size: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in size.items():
            path = f"{prefix}{name}"
            if isinstance(value, Mapping):
                out[name] = walk(value, path + ".")
            else:
                out[name] = _as_shape(value, path)
        return out

    method = getattr(processor, "parameter_size", None)
    if method is None:
        return {}
    return walk(method() or {}, "")


def iter_parameter_shapes(size: Mapping[str, Any], prefix: tuple[str, ...] = ()):
    """Yield ``(path, shape)`` for every leaf of a normalised parameter size.

    ``path`` is the tuple of keys from the top level down to the leaf.
    """
    yield from leaves(size, prefix)
