"""Parameter storage: one ``nn.ParameterDict`` per node type, one row per node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .processor import ProcessorLike
from ._arguments import require_graph
from ._checks import check_processors
from ._paths import TREES, leaves, lookup
from ._tree import ParameterModules, ParameterTree
from .curves import curve_frames
from .errors import ParameterError, UnknownNodeTypeError
from .graph import BUILTIN_TYPES, Graph
from .description import ProcessorDescription, describe

__all__ = ["create_empty_parameters", "check_parameters", "concatenate_parameters"]


def _known_types(processors: Mapping[str, ProcessorLike]) -> list[str]:
    return sorted(processors) + sorted(BUILTIN_TYPES)


def _require_processors(graph: Graph, processors: Mapping[str, ProcessorLike]) -> None:
    if not isinstance(processors, Mapping):
        raise TypeError("processors must be a mapping from node type to processor module, such as "
                        f"{{'gain': Gain()}}; got {type(processors).__name__}")
    for node_type in graph.processor_types():
        if node_type not in processors:
            first = graph.nodes[graph.nodes_of_type(node_type)[0]]
            raise UnknownNodeTypeError(
                f"{first.label()}: no processor for type {node_type!r}; known types are "
                f"{_known_types(processors)}"
            )
    check_processors(graph, processors)


def _default_rows(description: ProcessorDescription, path: tuple[str, ...], count: int,
                  dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    shape = description.controls[path].shape
    row = torch.tensor(description.parameter_default(path), dtype=torch.float64).reshape(shape)
    return row.to(dtype=dtype, device=device).expand(count, *shape).clone()


def create_empty_parameters(
    graph: Graph,
    processors: Mapping[str, ProcessorLike],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    std: float = 0.0,
    generator: torch.Generator | None = None,
) -> nn.ModuleDict:
    """Make trainable parameters for every processor node of ``graph``.

    Each type ``t`` gets an ``nn.ParameterDict`` whose tensors have shape
    ``[len(graph.nodes_of_type(t)), *shape]``; row ``k`` belongs to the
    ``k``-th node of that type by id. Values are each control's declared
    default (:func:`~grafx_core.describe`; a GRAFX-style processor's optional
    ``default_parameters()``, else zeros). Nested controls give nested
    ``ParameterDict``s. Types
    whose processor has no parameters get an empty ``ParameterDict``.

    Args:
        graph: the graph.
        processors: processor module for each non-built-in node type.
        dtype, device: of the new tensors.
        std: standard deviation of Gaussian noise added to every value, in
            each parameter's own units (GRAFX's random initialisation); 0
            keeps the defaults exactly.
        generator: seeds that noise (drawn on the CPU, then moved).

    Raises:
        UnknownNodeTypeError: a node type has no processor, or its processor
            is ``None``, a class or not callable.
        TypeError: the first argument is not a :class:`Graph` (GRAFX's
            ``(processors, G)`` order is named as such), or ``processors`` is
            not a mapping.
        ValueError: ``std`` is negative.
    """
    require_graph("create_empty_parameters(graph, processors)", graph, processors)
    if not std >= 0:
        raise ValueError(f"create_empty_parameters: std must be >= 0, got {std!r}")
    _require_processors(graph, processors)
    result = ParameterModules()
    for node_type in graph.processor_types():
        processor = processors[node_type]
        count = len(graph.nodes_of_type(node_type))
        root = ParameterTree()
        description = describe(processor)
        for path in description.controls:
            target = root
            for key in path[:-1]:
                if key not in target:
                    target[key] = ParameterTree()
                target = target[key]
            rows = _default_rows(description, path, count, dtype, device)
            if std > 0:
                rows = rows + std * torch.randn(rows.shape, generator=generator, dtype=dtype).to(rows.device)
            target[path[-1]] = nn.Parameter(rows)
        result[node_type] = root
    return result


def check_parameters(graph: Graph, processors: Mapping[str, ProcessorLike], parameters: Any,
                     batch_size: int | None = None, *, samples: int | None = None,
                     control_hop: int | None = None) -> dict[str, bool]:
    """Check ``parameters`` against every processor node type of ``graph``.

    A parameter of type ``t`` is either shared, ``[nodes_of_type(t), *shape]``,
    or per example, ``[batch_size, nodes_of_type(t), *shape]``. A control its
    processor declares time-varying may also be a curve with a trailing axis
    of :func:`~grafx_core.curve_frames` ``(samples, control_hop)`` frames,
    ``[nodes_of_type(t), *shape, frames]`` or per example
    ``[batch_size, nodes_of_type(t), *shape, frames]``.

    Args:
        samples: the signals' length, which fixes a curve's frame count.
        control_hop: samples per control frame; ``None`` takes no curves.

    Returns:
        For each type, whether its parameters are per example (all of one
        type's parameters must agree).

    Raises:
        ParameterError: ``parameters`` is not a mapping; a type or parameter is
            missing or unexpected (a type the graph does not have included); a
            parameter is not a real floating-point tensor, is on the meta
            device, has the wrong shape, or holds NaN or Inf; a curve is given
            for a control not declared time-varying, with the wrong number of
            frames, or to a plan without a control hop. The message names the
            type, the parameter and, for a value, the node.
    """
    return _check_parameters(graph, processors, parameters, batch_size, samples, control_hop)[0]


def _check_parameters(graph: Graph, processors: Mapping[str, ProcessorLike], parameters: Any, batch_size: int | None,
                      samples: int | None, control_hop: int | None
                      ) -> tuple[dict[str, bool], set[tuple[str, tuple[str, ...]]]]:
    """:func:`check_parameters`, also returning the ``(type, path)`` of every curve."""
    if not isinstance(parameters, TREES):
        raise ParameterError(
            f"parameters must be a mapping from node type to that type's parameters (as from "
            f"create_empty_parameters), got {type(parameters).__name__}"
        )
    types = graph.processor_types()
    stray = sorted(str(t) for t in parameters.keys() if t not in types)
    if stray:
        raise ParameterError(
            f"parameters given for node type(s) {stray} that the graph does not have (its processor "
            f"types are {types}); is this another graph's parameter file?"
        )
    per_example: dict[str, bool] = {}
    curves: set[tuple[str, tuple[str, ...]]] = set()
    found: list[tuple[str, str, torch.Tensor]] = []
    for node_type in types:
        processor = processors[node_type]
        count = len(graph.nodes_of_type(node_type))
        expected = {path: control.shape for path, control in describe(processor).controls.items()}
        given = parameters[node_type] if node_type in parameters else None
        if given is None:
            if expected:
                raise ParameterError(
                    f"no parameters for node type {node_type!r}; expected "
                    f"{ {'.'.join(p): [count, *s] for p, s in expected.items()} }"
                )
            per_example[node_type] = False
            continue
        if not isinstance(given, TREES):
            raise ParameterError(
                f"parameters of node type {node_type!r} must be a mapping from parameter name to tensor, "
                f"got {type(given).__name__}; expected { {'.'.join(p): [count, *s] for p, s in expected.items()} }"
            )
        extra = [path for path, _ in leaves(given) if path not in expected]
        if extra:
            raise ParameterError(
                f"node type {node_type!r} has unexpected parameter(s) {['.'.join(p) for p in extra]}; "
                f"its processor takes {['.'.join(p) for p in expected]}"
            )
        modes = set()
        for path, shape in expected.items():
            name = ".".join(path)
            tensor = lookup(given, path)
            if tensor is None:
                raise ParameterError(
                    f"node type {node_type!r} is missing parameter {name!r} of shape {[count, *shape]}"
                )
            if not isinstance(tensor, torch.Tensor):
                raise ParameterError(f"parameter {node_type}.{name} must be a tensor, got {type(tensor).__name__}")
            if not tensor.is_floating_point() or tensor.is_meta:
                what = "on the meta device (it holds no values)" if tensor.is_meta else f"of dtype {tensor.dtype}"
                raise ParameterError(
                    f"parameter {node_type}.{name} is {what}; expected a real floating-point tensor "
                    "(float32 or float64, say) with values"
                )
            if tuple(tensor.shape) == (count, *shape):
                modes.add(False)
            elif batch_size is not None and tuple(tensor.shape) == (batch_size, count, *shape):
                modes.add(True)
            elif _is_curve_shape(tensor, count, shape, batch_size):
                modes.add(_check_curve(graph, node_type, processor, path, tensor, count, shape, batch_size,
                                       samples, control_hop))
                curves.add((node_type, path))
            else:
                batched = f" or per example {[batch_size, count, *shape]}" if batch_size is not None else ""
                raise ParameterError(
                    f"parameter {node_type}.{name} has shape {list(tensor.shape)}; expected "
                    f"{[count, *shape]} (one row per {node_type!r} node){batched}"
                )
        if len(modes) > 1:
            raise ParameterError(
                f"node type {node_type!r} mixes shared and per-example parameters; give all of its "
                "parameters one way"
            )
        per_example[node_type] = modes.pop() if modes else False
        found += [(node_type, ".".join(path), lookup(given, path)) for path in expected]
    if not _all_finite([tensor for _, _, tensor in found]):
        for node_type, name, tensor in found:
            _require_finite(graph, node_type, name, tensor, per_example[node_type],
                            (node_type, tuple(name.split("."))) in curves)
    return per_example, curves


def _is_curve_shape(tensor: torch.Tensor, count: int, shape: tuple[int, ...], batch_size: int | None) -> bool:
    """Whether ``tensor`` is shaped like a curve of some frame count (shared or per example)."""
    dims = tuple(tensor.shape)
    if len(dims) == len(shape) + 2 and dims[:-1] == (count, *shape):
        return True
    return batch_size is not None and len(dims) == len(shape) + 3 and dims[:-1] == (batch_size, count, *shape)


def _check_curve(graph: Graph, node_type: str, processor: Any, path: tuple[str, ...], tensor: torch.Tensor,
                 count: int, shape: tuple[int, ...], batch_size: int | None, samples: int | None,
                 control_hop: int | None) -> bool:
    """Refuse a curve the render cannot honour; return whether it is per example."""
    name = ".".join(path)
    nodes = graph.nodes_of_type(node_type)
    where = f"{graph.nodes[nodes[0]].label()}" + (f" (and {len(nodes) - 1} more)" if len(nodes) > 1 else "")
    per_example = tensor.ndim == len(shape) + 3
    control = describe(processor).controls.get(path)
    if control is None or not control.time_varying:
        moving = [".".join(p) for p in describe(processor).time_varying()]
        raise ParameterError(
            f"{where}: parameter {node_type}.{name} is a curve {list(tensor.shape)}, but "
            f"{type(processor).__name__} does not declare {name!r} time-varying; give it as "
            f"{[count, *shape]}" + (f" (its moving controls are {moving})" if moving else
                                    " (it has no moving controls)")
        )
    if control_hop is None:
        raise ParameterError(
            f"{where}: parameter {node_type}.{name} is a curve {list(tensor.shape)}, but the plan has no control "
            "rate; compile it with compile_render(..., control_hop=N) (samples per control frame)"
        )
    if samples is not None:
        frames = curve_frames(samples, control_hop)
        if tensor.shape[-1] != frames:
            raise ParameterError(
                f"{where}: parameter {node_type}.{name} is a curve of {tensor.shape[-1]} frame(s); "
                f"{samples} samples at a hop of {control_hop} need {frames} (frame k at sample k*{control_hop}, "
                "the last at or after the last sample)"
            )
    return per_example


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """One device synchronisation per device, not one per parameter (a training step renders often)."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for tensor in tensors:
        by_device.setdefault(tensor.device, []).append(torch.isfinite(tensor.detach()).all())
    return all(bool(torch.stack(flags).all()) for flags in by_device.values())


def _require_finite(graph: Graph, node_type: str, name: str, tensor: torch.Tensor, per_example: bool,
                    curve: bool = False) -> None:
    finite = torch.isfinite(tensor.detach())
    if bool(finite.all()):
        return
    where = (~finite).nonzero()[0].tolist()
    example, row = (where[0], where[1]) if per_example else (None, where[0])
    node = graph.nodes[graph.nodes_of_type(node_type)[row]]
    value = float(tensor.detach()[tuple(where)])
    in_example = f" in batch item {example}" if example is not None else ""
    at_frame = f" at curve frame {where[-1]}" if curve else ""
    raise ParameterError(
        f"{node.label()}: parameter {node_type}.{name} is {value}{in_example}{at_frame}; parameters must be finite"
    )



def concatenate_parameters(parameter_sets: list[Any]) -> nn.ModuleDict:
    """Concatenate parameters of several graphs for their :func:`disjoint_union`.

    Rows are concatenated per type and parameter in the order given, which is
    the row order of the union. The result holds new leaf parameters (a copy):
    to train through the union, optimise the result.
    """
    result = ParameterModules()
    types = list(dict.fromkeys(t for params in parameter_sets for t in params.keys()))
    for node_type in types:
        parts = [params[node_type] for params in parameter_sets if node_type in params]
        paths = [path for path, _ in leaves(parts[0])]
        root = ParameterTree()
        for path in paths:
            target = root
            for key in path[:-1]:
                if key not in target:
                    target[key] = ParameterTree()
                target = target[key]
            tensors = [lookup(p, path) for p in parts]
            target[path[-1]] = nn.Parameter(torch.cat([t.detach() for t in tensors], dim=0))
        result[node_type] = root
    return result
