"""Streaming renders: a long input rendered block by block, each processor's state carried.

A stream compiles its graph once and keeps one state per stage call (the
rows of a call do not change from block to block), so the memory a stream
needs is that of one block plus the processors' states, whatever the input's
length. Latency that processors declare (``latency_samples``) is compensated
the way a DAW does: every path into a mix or an ``"out"`` node is delayed to
the latest path's latency, and the stream's output is shifted back by the
total latency (the first samples dropped, the end flushed with silence), so
the blocks joined equal a one-shot render.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .description import describe
from ._paths import TREES
from .errors import StreamingError
from .graph import BUILTIN_TYPES, Graph
from .schedule import render_order
from .curves import _Curves
from .parameters import _check_parameters, check_parameters
from .processor import iter_parameter_shapes, normalized_parameter_size
from .state import detach_state as detach_tree
from .state import require_streamable
from ._span import SPAN, OneShotSpan
from ._block_program import BlockProgram

if TYPE_CHECKING:
    from .plan import RenderPlan

__all__ = ["stream_render", "stream_latency", "SampleDelay"]


class SampleDelay(nn.Module):
    """A whole-sample delay line: what a stream inserts to align paths of unequal latency.

    Args:
        samples: the delay, ``>= 1``.

    Signals: any channel count in, the same out, ``samples`` late; the state
    is the last ``samples`` input samples, ``[rows, channels, samples]``.
    """

    def __init__(self, samples: int) -> None:
        super().__init__()
        self.samples = int(samples)
        self.latency_samples = self.samples  # so that the compensated graph's latencies add up

    def parameter_size(self) -> dict[str, Any]:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (self.samples, 0))[..., : x.shape[-1]]

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], self.samples)

    def forward_stateful(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        line = torch.cat([state, x], dim=-1)
        return line[..., : x.shape[-1]], line[..., x.shape[-1]:]


def _node_latencies(plan: RenderPlan) -> tuple[dict[int, int], dict[int, int]]:
    """Each node's arrival latency (its inputs aligned to the latest) and output latency."""
    graph = plan.graph
    arrive: dict[int, int] = {}
    out: dict[int, int] = {i: 0 for i in graph.nodes_of_type("in")}
    for stage in plan.stages:
        for node in stage.nodes:
            arrive[node] = max((out[src] for src in graph.predecessors(node)), default=0)
            own = 0 if stage.type in BUILTIN_TYPES else describe(plan.processors[stage.type]).latency_samples
            out[node] = arrive[node] + own
    outs = graph.nodes_of_type("out")
    total = max((arrive[i] for i in outs), default=0)
    for i in outs:  # every output aligned to the latest
        arrive[i] = total
    return arrive, out


def stream_latency(plan: RenderPlan) -> int:
    """The samples a stream of ``plan`` lags its input before compensation: the
    largest total of ``latency_samples`` along a path from an ``"in"`` to an ``"out"`` node."""
    arrive, _ = _node_latencies(plan)
    return max((arrive[i] for i in plan.graph.nodes_of_type("out")), default=0)


def _compensated(plan: RenderPlan) -> tuple[RenderPlan, int]:
    """``plan`` itself when nothing declares latency, else a plan of the graph with delay
    nodes on every edge that arrives earlier than its destination's latest input."""
    arrive, out = _node_latencies(plan)
    total = max((arrive[i] for i in plan.graph.nodes_of_type("out")), default=0)
    if not any(arrive[e.dst] > out[e.src] for e in plan.graph.edges):
        return plan, total
    graph, processors = Graph(), dict(plan.processors)
    for node in plan.graph.nodes:  # same ids and order: parameter rows and outputs unchanged
        graph.add(node.type, node.name)
    for edge in plan.graph.edges:
        lag = arrive[edge.dst] - out[edge.src]
        if lag <= 0:
            graph.connect(edge.src, edge.dst, edge.outlet, edge.inlet)
            continue
        kind = f"_stream_delay_{lag}"
        processors.setdefault(kind, SampleDelay(lag))
        delay = graph.add(kind)
        graph.connect(edge.src, delay, edge.outlet, "main")
        graph.connect(delay, edge.dst, "main", edge.inlet)
    # The plan's own class, so this module needs no import of the plan (which imports it, in RenderPlan.stream);
    # the graph is the checked one plus delay nodes, so it only needs scheduling.
    return type(plan)(graph, processors, render_order(graph), tile_bytes=None, control_hop=plan.control_hop), total


def _check_streamable(plan: RenderPlan) -> None:
    for node_type, processor in plan.processors.items():
        if node_type in plan.graph.node_types():
            require_streamable(processor, f"node type {node_type!r}")


def _curve_leaves(plan: RenderPlan, parameters: Any) -> dict[tuple[str, tuple[str, ...]], torch.Tensor]:
    """Every parameter of ``parameters`` with a trailing axis of control frames (a curve)."""
    found: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}
    if not isinstance(parameters, TREES):
        return found
    for node_type in plan.graph.processor_types():
        if node_type not in parameters or node_type not in plan.processors:
            continue
        count = len(plan.graph.nodes_of_type(node_type))
        for path, shape in iter_parameter_shapes(normalized_parameter_size(plan.processors[node_type])):
            value: Any = parameters[node_type]
            for key in path:
                value = value[key] if isinstance(value, TREES) and key in value else None
            if isinstance(value, torch.Tensor) and _is_curve(value, count, tuple(shape)):
                found[(node_type, tuple(path))] = value
    return found


def _is_curve(value: torch.Tensor, count: int, shape: tuple[int, ...]) -> bool:
    plain = value.ndim == len(shape) + 1 and tuple(value.shape[1:]) == shape
    per_example = value.ndim == len(shape) + 2 and value.shape[1] == count and tuple(value.shape[2:]) == shape
    if plain or per_example:
        return False
    return value.ndim >= len(shape) + 2 and tuple(value.shape[-len(shape) - 1:-1]) == shape


def _check_curves(plan: RenderPlan, parameters: Any, batch: int | None,
                  latency: int) -> tuple[Mapping[str, bool], frozenset[Any], int]:
    """Check a stream's parameters once: ``(per_example, curve paths, frames)``.

    Curves are checked as :meth:`RenderPlan.__call__` checks them for a render
    as long as their frames span; a stream may be shorter than that span (the
    later frames are unused) but not longer (its blocks say so when they get there).

    Raises:
        StreamingError: curves given to a plan compiled without ``control_hop``, or
            to a graph that declares latency (the curves would have to be shifted
            per node).
        ParameterError: as :func:`~grafx_core.check_parameters`.
    """
    leaves = _curve_leaves(plan, parameters)
    if not leaves:
        return check_parameters(plan.graph, plan.processors, parameters, batch), frozenset(), 0
    (node_type, path), first = next(iter(leaves.items()))
    where = f"parameter {'.'.join(path)!r} of node type {node_type!r}"
    if plan.control_hop is None:
        raise StreamingError(f"{where} is a curve (trailing axis of control frames), but the plan was compiled "
                             "without control_hop: compile_render(..., control_hop=N) gives the curves' rate")
    if latency:
        raise StreamingError(f"{where} is a curve, but the graph declares {latency} samples of latency: a stream "
                             "of a graph with latency renders constant parameters only; render it in one call")
    frames = first.shape[-1]
    per_example, paths = _check_parameters(plan.graph, plan.processors, parameters, batch,
                                           (frames - 1) * plan.control_hop + 1, plan.control_hop)
    return per_example, frozenset(paths), frames


def _block_parameters(plan: RenderPlan, parameters: Any, start: int, stop: int,
                      curves: frozenset[Any] = frozenset(), frames: int = 0) -> tuple[Any, _Curves | None]:
    """The parameters of the block of samples ``[start, stop)`` and how its curves expand: the one
    place a block's parameters are prepared.

    A curve is cut to the frames around the block (from the frame at or before
    ``start`` to the one at or after ``stop - 1``), which the plan expands by
    the rule of :mod:`grafx_core.curves` and cuts to the block: the same values,
    bit for bit, as a one-shot render gives those samples.

    Raises:
        StreamingError: the stream has run past the samples the curves cover.
    """
    if not curves:
        return parameters, None
    hop = plan.control_hop
    assert hop is not None  # _check_curves refused curves without one
    first, last = start // hop, -(-(stop - 1) // hop)
    if last >= frames:
        node_type, path = sorted(curves)[0]
        raise StreamingError(
            f"parameter {'.'.join(path)!r} of node type {node_type!r} is a curve of {frames} frames at a hop of "
            f"{hop}, covering {(frames - 1) * hop + 1} samples; the stream goes on past them (block of samples "
            f"[{start}, {stop})): give curves with 1 + ceil((samples - 1) / hop) frames for the whole input")
    cut = dict(parameters)
    for node_type, path in curves:
        tree = cut[node_type] = dict(cut[node_type])
        for key in path[:-1]:
            tree[key] = dict(tree[key])
            tree = tree[key]
        tree[path[-1]] = tree[path[-1]][..., first:last + 1]
    moving = _Curves(curves, (last - first) * hop + 1, hop, offset=start - first * hop, length=stop - start)
    return cut, moving


def stream_render(plan: RenderPlan, parameters: Any, blocks: Iterable[torch.Tensor], *,
                  detach_state: bool = True) -> Iterator[torch.Tensor]:
    """Render ``blocks`` of a long input through ``plan``, carrying every processor's state.

    Stateful processors are called through ``forward_stateful`` with their
    state from the previous block; memoryless ones through ``forward``. The
    output blocks joined equal ``plan(parameters, whole_input)[0]`` (to
    rounding), latency compensated (see the module docstring): the first
    yielded blocks are shorter by the graph's total latency and a last block
    carries the flushed end; empty blocks are not yielded.

    Args:
        plan: a compiled :class:`~grafx_core.RenderPlan`.
        parameters: as for :meth:`RenderPlan.__call__`; a time-varying control
            may be a curve over the whole input (``control_hop`` of the plan),
            each block receiving the part of it that covers the block.
        blocks: source blocks ``[num_in, channels, samples]`` or
            ``[batch, num_in, channels, samples]``; every block has the first
            block's shape but for its length.
        detach_state: detach the states between blocks, so that memory stays
            bounded under autograd (gradients then flow within a block only).

    Yields:
        Output blocks ``[num_out, channels, samples]`` (batched like the input).

    Raises:
        StreamingError: a processor of the graph can be rendered neither
            statefully nor memorylessly (before anything is rendered), a
            block's shape differs from the first's, a curve is given to a
            plan without ``control_hop`` or to a graph with latency, or the
            stream runs past the samples the curves cover.
        SourceShapeError, ParameterError: as :meth:`RenderPlan.__call__`.
    """
    _check_streamable(plan)
    return _stream(plan, parameters, blocks, detach_state)


def _stream(plan: RenderPlan, parameters: Any, blocks: Iterable[torch.Tensor],
            detach_state: bool) -> Iterator[torch.Tensor]:
    run_plan, latency = _compensated(plan)
    program = run_plan._programs[run_plan._largest_stage]
    states: dict[Any, Any] = {}
    if latency:
        states[SPAN] = span = OneShotSpan(_node_latencies(run_plan)[0])
    kept: dict[Any, Any] = {}  # the stage calls' parameters, the same tensors every block without autograd
    first: torch.Tensor | None = None
    per_example: Mapping[str, bool] = {}
    curves: frozenset[Any] = frozenset()
    frames = 0
    position, to_drop = 0, latency
    layout: dict[Any, Any] = {}
    compiled: BlockProgram | None = None
    compiled_for: bool | None = None  # whether it takes the kept parameters (None: not tried yet)
    for index, block in enumerate(blocks):
        sources, batched = run_plan._prepare_sources(block)
        length = sources.shape[-1]
        if first is None:
            first = sources
            per_example, curves, frames = _check_curves(run_plan, parameters,
                                                        sources.shape[0] if batched else None, latency)
        elif sources.shape[:-1] != first.shape[:-1]:
            raise StreamingError(f"block {index} has shape {list(block.shape)}; every block must have the first "
                                 f"block's shape {list(first.shape[1 - int(batched):-1])} but for its length")
        block_parameters, moving = _block_parameters(run_plan, parameters, position, position + length, curves,
                                                     frames)
        keep = None if torch.is_grad_enabled() or curves else kept
        if compiled is not None and compiled_for == (keep is not None):
            y = compiled.run(block_parameters, sources, per_example, batched, moving, states)
        else:  # the first block (or grad mode changed): the general render, which records its layout
            layout.clear()
            y, _ = program.run(block_parameters, sources, per_example, batched, moving, states=states,
                               stage_kwargs=keep, layout=layout if compiled_for != (keep is not None) else None)
            if compiled_for != (keep is not None):
                compiled, compiled_for = BlockProgram.compile(program, layout, sources, keep), keep is not None
        if detach_state and torch.is_grad_enabled():  # a block rendered without autograd made no graph
            for key in states:
                states[key] = detach_tree(states[key])
        position += length
        if latency:
            span.advance(length)
        drop = min(to_drop, length)
        to_drop -= drop
        if drop < length:
            yield y[..., drop:]
    if first is not None and latency:
        # Of the flushed samples, the first to_drop are still lag; the rest end the input's span.
        silence = first.new_zeros(*first.shape[:-1], latency)
        span.ended()
        y, _ = program.run(parameters, silence, per_example, True, states=states)
        if to_drop < latency:
            yield (y if batched else y[0])[..., to_drop:]
