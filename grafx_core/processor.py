"""The processor protocol.

A processor is a stateless :class:`torch.nn.Module`. Its ``forward(*signals,
**parameters)`` receives one tensor per inlet, each ``[nodes, channels,
samples]``, and one tensor per parameter whose first dimension is ``nodes``.
It returns one tensor per outlet (a tuple when it has several, each
``[nodes, channels', samples]``), optionally followed by a dict of auxiliary
values whose first dimension is ``nodes`` (regularisers, for instance).

``parameter_size()`` gives each parameter's shape without the node dimension,
as a (possibly nested) dict of ints or tuples. Inlets and outlets are named by
the class attributes ``inlets`` and ``outlets``; both default to
``("main",)``. The optional attribute ``gradient_kind`` says how the
processor's gradient is obtained (``"autograd"`` when absent). The optional
method ``default_parameters()`` returns a (nested) dict of per-node starting
values, each of its parameter's shape without the node dimension;
:func:`~grafx_core.create_empty_parameters` and the conformance kit use it,
and zeros stand in for any value it leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch
from torch import nn

__all__ = [
    "Processor",
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

DEFAULT_PORTS = ("main",)


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

    def parameter_size(self) -> ParameterSize:
        """Each parameter's shape without the node dimension (empty by default)."""
        return {}


def inlet_names(processor: Any) -> tuple[str, ...]:
    """The processor's inlet names, in the order ``forward`` takes its signals."""
    return tuple(getattr(processor, "inlets", DEFAULT_PORTS))


def outlet_names(processor: Any) -> tuple[str, ...]:
    """The processor's outlet names, in the order ``forward`` returns them."""
    return tuple(getattr(processor, "outlets", DEFAULT_PORTS))


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
    for name, value in size.items():
        if isinstance(value, Mapping):
            yield from iter_parameter_shapes(value, prefix + (name,))
        else:
            yield prefix + (name,), value
