"""Compiled render plans: all indexing work done once, then one call per stage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ._arguments import require_graph
from ._checks import check_source_values, check_stages
from ._concurrent import runs_concurrently, submit
from ._host_transfer import HostCall, needs_host_transfer
from ._gather import EdgeGroup, IndexCache, InletPlan, Produced, Producer, gather, inlet_channels
from .errors import (
    GrafxError,
    GraphConnectionError,
    GraphError,
    InletChannelError,
    ProcessorOutputError,
    SourceShapeError,
)
from .description import describe
from .graph import BUILTIN_TYPES, Graph
from .curves import _Curves, check_control_hop, curve_to_samples
from .parameters import _check_parameters, _require_processors
from ._row_labels import RowLabels, labelled_rows
from .processor import ProcessorLike, node_shares
from .schedule import Stage, render_order, tile_stages
from .state import call_block
from ._span import SPAN, OneShotSpan

__all__ = ["RenderPlan", "compile_render", "NodeAux", "CPU_TILE_BYTES"]

NodeAux = dict[int, dict[str, torch.Tensor]]
"""Aux values by node id, then by name; each value is that node's slice."""

CPU_TILE_BYTES = 8 * 2**20
"""The default ``tile_bytes``: about what stays in a core's caches. For 64
stereo 2 s tracks (bench/render.py, 2 cores), tiles of this size rendered a
grafx-dsp console forward and backward 3.6x faster than whole stages and 2x
faster than one node per call; budgets from 2 to 16 MiB were all within 30%
of the best."""


@dataclass
class _StagePlan:
    index: int
    type: str
    node_ids: np.ndarray
    processor: ProcessorLike | None  # None for the built-in "mix" and "out"
    inlets: list[InletPlan]
    outlets: tuple[str, ...]
    param_rows: np.ndarray
    param_rows_are_all: bool
    parameter_shapes: list[tuple[tuple[str, ...], tuple[int, ...]]]
    accepted: list[tuple[int, ...] | None]  # per inlet, from the processor's inlet_channels
    runs_on_host: bool = False  # a black box: its inputs travel to pinned host memory before the call


def _ports(graph: Graph, processors: Mapping[str, ProcessorLike], node_type: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if node_type in BUILTIN_TYPES:
        return BUILTIN_TYPES[node_type]
    description = describe(processors[node_type])
    return description.inlets, description.outlets


def _parameter_shapes(processor: ProcessorLike | None) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    if processor is None:
        return []
    return [(path, control.shape) for path, control in describe(processor).controls.items()]


def _check_edges(graph: Graph, processors: Mapping[str, ProcessorLike]) -> None:
    ports = {t: _ports(graph, processors, t) for t in graph.node_types()}
    for node_type, (inlets, _) in ports.items():
        if not inlets and node_type not in BUILTIN_TYPES:
            raise GraphConnectionError(
                f"processor {type(processors[node_type]).__name__} for type {node_type!r} declares no inlets; "
                "a processor takes at least one input signal (feed a generator from an 'in' node)"
            )
    fed: set[tuple[int, str]] = set()
    for edge in graph.edges:
        src, dst = graph.nodes[edge.src], graph.nodes[edge.dst]
        if edge.outlet not in ports[src.type][1]:
            raise GraphConnectionError(
                f"edge {src.label()} -> {dst.label()}: {src.label()} has no outlet {edge.outlet!r}; "
                f"its processor has outlets {list(ports[src.type][1])}"
            )
        if edge.inlet not in ports[dst.type][0]:
            raise GraphConnectionError(
                f"edge {src.label()} -> {dst.label()}: {dst.label()} has no inlet {edge.inlet!r}; "
                f"its processor has inlets {list(ports[dst.type][0])}"
            )
        fed.add((edge.dst, edge.inlet))
    for node in graph.nodes:
        for inlet in ports[node.type][0]:
            if (node.id, inlet) not in fed:
                raise GraphConnectionError(
                    f"{node.label()}: nothing is connected to inlet {inlet!r}; every inlet needs at least one edge"
                )


class _Program:
    """One render order with every index precomputed: what a render executes."""

    def __init__(self, graph: Graph, processors: Mapping[str, ProcessorLike], stages: list[Stage]) -> None:
        self._index_cache = IndexCache()
        self._labels = [node.label() for node in graph.nodes]
        self._names: dict[Any, tuple[np.ndarray, str, RowLabels]] = {}
        in_nodes = graph.nodes_of_type("in")
        location: dict[int, tuple[int, int]] = {i: (-1, r) for r, i in enumerate(in_nodes)}
        for s, stage in enumerate(stages):
            for r, node in enumerate(stage.nodes):
                location[node] = (s, r)
        rank = _type_ranks(graph)
        type_counts = {t: len(graph.nodes_of_type(t)) for t in graph.node_types()}
        edges_into: dict[tuple[int, str], list[Any]] = {}
        for edge in graph.edges:
            edges_into.setdefault((edge.dst, edge.inlet), []).append(edge)

        self._stages: list[_StagePlan] = []
        last_use: dict[Producer, int] = {(-1, 0): -1}
        for s, stage in enumerate(stages):
            processor = processors.get(stage.type) if stage.type not in BUILTIN_TYPES else None
            inlet_list, outlet_list = _ports(graph, processors, stage.type)
            inlets = []
            for inlet in inlet_list:
                by_producer: dict[Producer, tuple[list[int], list[int]]] = {}
                for row, node in enumerate(stage.nodes):
                    for edge in edges_into[(node, inlet)]:
                        src_stage, src_row = location[edge.src]
                        src_outlets = _ports(graph, processors, graph.nodes[edge.src].type)[1]
                        producer = (src_stage, src_outlets.index(edge.outlet))
                        rows = by_producer.setdefault(producer, ([], []))
                        rows[0].append(src_row)
                        rows[1].append(row)
                        last_use[producer] = s
                groups = [
                    EdgeGroup(p, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64))
                    for p, (src, dst) in by_producer.items()
                ]
                feeds = sum(len(edges_into[(node, inlet)]) for node in stage.nodes)
                inlets.append(
                    InletPlan(inlet, groups, len(stage.nodes), feeds == len(stage.nodes),
                              [self._labels[i] for i in stage.nodes])
                )
            for k in range(len(outlet_list)):
                last_use.setdefault((s, k), s)
            rows = np.array([rank[i] for i in stage.nodes], dtype=np.int64)
            count = type_counts[stage.type]
            self._stages.append(
                _StagePlan(
                    s, stage.type, np.array(stage.nodes, dtype=np.int64), processor, inlets,
                    tuple(outlet_list), rows, bool(len(rows) == count and np.all(rows == np.arange(count))),
                    _parameter_shapes(processor),
                    list(describe(processor).inlet_channels.values()) if processor is not None else [None] * len(inlets),
                    processor is not None and describe(processor).runs_on_host,
                )
            )
        self._release_after: dict[int, list[Producer]] = {}
        for producer, stage_index in last_use.items():
            self._release_after.setdefault(stage_index, []).append(producer)
        self._depends = [sorted({g.producer[0] for inlet in st.inlets for g in inlet.groups if g.producer[0] >= 0})
                         for st in self._stages]
        calls = [st for st in self._stages if st.processor is not None]
        # In the background only where something else can run meanwhile (see grafx_core._concurrent).
        self._background = [st.processor is not None and len(calls) > 1 and runs_concurrently(st.processor)
                            for st in self._stages]

    def _stage_parameters(self, stage: _StagePlan, parameters: Any, per_example: bool,
                          subset: np.ndarray | None, batch: int, curves: _Curves) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if not stage.parameter_shapes:
            return kwargs
        rows = stage.param_rows if subset is None else stage.param_rows[subset]
        all_rows = subset is None and stage.param_rows_are_all
        tree = parameters[stage.type]
        for path, shape in stage.parameter_shapes:
            tensor = tree
            for key in path:
                tensor = tensor[key]
            curve = (stage.type, path) in curves.paths
            if curve:
                shape = (*shape, tensor.shape[-1])
            if not all_rows:
                dim = 1 if per_example else 0
                if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
                    tensor = tensor.narrow(dim, int(rows[0]), len(rows))
                else:
                    tensor = tensor.index_select(dim, self._index_cache.get(rows, tensor.device, subset is None))
            if per_example:
                tensor = tensor.reshape(batch * len(rows), *shape)
            elif batch > 1:
                tensor = tensor.unsqueeze(0).expand(batch, *tensor.shape).reshape(batch * len(rows), *shape)
            if curve:
                tensor = curve_to_samples(tensor, curves.samples, curves.hop)
                if curves.length is not None:
                    tensor = tensor[..., curves.offset:curves.offset + curves.length]
            target = kwargs
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = tensor
        return kwargs

    # -- calling ------------------------------------------------------------
    def _call(self, stage: _StagePlan, inputs: list[torch.Tensor], kwargs: dict[str, Any],
              subset: np.ndarray | None,
              states: dict[Any, Any] | None = None) -> tuple[list[torch.Tensor], Mapping[str, torch.Tensor] | None]:
        batch, rows, _, length = inputs[0].shape
        flat = [x.reshape(batch * rows, x.shape[2], length) for x in inputs]
        node_ids, where, labels = self._call_names(stage, subset, batch)
        for inlet, accepted, x in zip(stage.inlets, stage.accepted, inputs):
            if accepted is not None and x.shape[2] not in accepted:
                raise InletChannelError(
                    f"{', '.join(self._labels[i] for i in node_ids)}: inlet {inlet.name!r} of {where} gets "
                    f"{x.shape[2]} channel(s); it accepts {' or '.join(map(str, accepted))}"
                )
        assert stage.processor is not None  # the built-ins are rendered elsewhere
        try:
            with labelled_rows(labels):
                if states is None:
                    result = stage.processor(*flat, **kwargs)
                else:  # a stream: this stage call's state, carried from the previous block
                    key = (stage.index, None if subset is None else subset.tobytes())
                    span = states.get(SPAN)
                    if span is not None and span.outside():
                        flat = self._within_span(stage, key, node_ids, flat, kwargs, states, batch, span)
                    result, states[key] = call_block(stage.processor, states.get(key), flat, kwargs)
        except GrafxError as exc:
            row = getattr(exc, "row", None)
            if isinstance(row, int) and 0 <= row < batch * rows:
                example = f", batch item {row // rows}" if batch > 1 else ""
                raise type(exc)(f"{self._labels[node_ids[row % rows]]}{example}: {exc}") from exc
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised while rendering {where}")
            raise
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised while rendering {where}")
            raise
        aux = None
        items = list(result) if isinstance(result, (tuple, list)) else [result]
        if items and isinstance(items[-1], Mapping):
            aux = items.pop()
        if len(items) != len(stage.outlets):
            raise ProcessorOutputError(
                f"{where} returned {len(items)} signal(s); expected one per outlet {list(stage.outlets)}"
            )
        outputs = []
        for outlet, y in zip(stage.outlets, items):
            if not isinstance(y, torch.Tensor) or y.ndim != 3 or y.shape[0] != batch * rows or y.shape[2] != length:
                shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ProcessorOutputError(
                    f"{where}, outlet {outlet!r}: returned {shape}; expected "
                    f"[{batch * rows}, channels, {length}] (nodes, channels, samples)"
                )
            outputs.append(y.unsqueeze(0) if batch == 1 else y.reshape(batch, rows, y.shape[1], length))
        if aux is not None:
            aux = dict(aux)
            for name, value in aux.items():
                share = node_shares(value, batch * rows, outputs[0] if outputs else inputs[0])
                if share is not None:
                    aux[name] = value = share
                if not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] != batch * rows:
                    shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                    raise ProcessorOutputError(
                        f"{where}: aux value {name!r} has shape {shape}; expected a tensor whose first "
                        f"dimension is the node count {batch * rows}, or a scalar for the whole call"
                    )
        return outputs, aux

    def _call_names(self, stage: _StagePlan, subset: np.ndarray | None,
                    batch: int) -> tuple[np.ndarray, str, RowLabels]:
        """A stage call's node ids, how messages name it and its rows' labels: made once per call
        (a stream makes the same calls every block)."""
        key = (stage.index, None if subset is None else subset.tobytes(), batch)
        names = self._names.get(key)
        if names is None:
            node_ids = stage.node_ids if subset is None else stage.node_ids[subset]
            ids = node_ids.tolist()
            where = f"processor {type(stage.processor).__name__} for type {stage.type!r} (nodes {ids})"
            names = self._names[key] = (node_ids, where, RowLabels([self._labels[i] for i in ids], batch))
        return names

    @staticmethod
    def _within_span(stage: _StagePlan, key: Any, node_ids: np.ndarray, flat: list[torch.Tensor],
                     kwargs: Mapping[str, Any], states: dict[Any, Any], batch: int,
                     span: OneShotSpan) -> list[torch.Tensor]:
        """A stateful stage call's block silenced outside its rows' one-shot span (:mod:`grafx_core._span`);
        before the first block, a processor that can skip its late start is told how much."""
        if describe(stage.processor).memoryless:
            return flat
        rows = span.rows(key, node_ids.tolist(), batch)
        if key not in states and hasattr(stage.processor, "start_late"):
            states[key] = stage.processor.start_late(stage.processor.initial_state(*flat, **kwargs), rows)
        return span.silence(flat, rows)

    def run(self, parameters: Any, sources: torch.Tensor, per_example: Mapping[str, bool],
            batched: bool, curves: _Curves | None = None,
            states: dict[Any, Any] | None = None,
            stage_kwargs: dict[Any, Any] | None = None,
            layout: dict[Any, Any] | None = None) -> tuple[torch.Tensor, NodeAux]:
        """Render checked inputs; ``sources`` is ``[batch, num_in, channels, samples]``.

        ``states`` (a stream's): each stage call's processor state, read and
        updated in place; ``None`` renders with plain ``forward`` calls.
        ``stage_kwargs`` (a stream's, outside autograd): each stage call's
        parameters, kept from the first block that prepares them, so that
        every block hands a processor the same tensors.
        ``layout`` (a stream's): filled with each stage's calls (``stage index:
        [(rows, channels per inlet)]``) and each output's channel count
        (``(stage index, outlet): (rows, channels)``, ``None`` when in several parts),
        from which :class:`~grafx_core._block_program.BlockProgram` compiles.
        """
        curves = curves or _Curves(frozenset(), sources.shape[-1], 1)
        batch = sources.shape[0]
        produced: dict[Producer, Produced] = {(-1, 0): Produced.single(sources)}
        aux_by_node: NodeAux = {}
        for producer in self._release_after.get(-1, []):
            del produced[producer]
        result: torch.Tensor | None = None
        pending: dict[int, Callable[[], list[Produced]]] = {}

        def settle(index: int) -> None:
            outputs = pending.pop(index)()
            for k, out in enumerate(outputs):
                out.finish(len(self._stages[index].node_ids))
                produced[(index, k)] = out
                if layout is not None:
                    layout[(index, k)] = None if out.part_of is not None else tuple(out.parts[0].shape[1:3])

        for stage in self._stages:
            for index in self._depends[stage.index]:
                if index in pending:
                    settle(index)
            background = self._background[stage.index]
            if background:
                # One processor never runs twice at once: an estimator's random draws follow its call order.
                for index in [i for i in pending if self._stages[i].processor is stage.processor]:
                    settle(index)
            finish = self._run_stage(stage, produced, parameters, per_example.get(stage.type, False),
                                     batch, aux_by_node, batched, background, curves, states, stage_kwargs, layout)
            pending[stage.index] = finish
            if not background:
                settle(stage.index)
                if stage.type == "out":
                    result = produced[(stage.index, 0)].parts[0]
            for producer in self._release_after.get(stage.index, []):
                produced.pop(producer, None)
        for index in sorted(pending):
            pending[index]()  # outputs nothing reads; their errors and aux still count
        assert result is not None  # compile_render guarantees an "out" stage
        return (result if batched else result[0]), aux_by_node

    def _run_stage(self, stage: _StagePlan, produced: dict[Producer, Produced], parameters: Any,
                   per_example: bool, batch: int, aux_by_node: NodeAux, batched: bool,
                   background: bool, curves: _Curves,
                   states: dict[Any, Any] | None = None,
                   stage_kwargs: dict[Any, Any] | None = None,
                   layout: dict[Any, Any] | None = None) -> Callable[[], list[Produced]]:
        """Gather a stage's inputs now; the returned function gives its outputs (waiting for a background call)."""
        channels = [inlet_channels(inlet, produced) for inlet in stage.inlets]
        if stage.type == "out":
            channels = [int(np.max(c)) for c in channels]
        if all(isinstance(c, int) for c in channels):
            groups: list[tuple[np.ndarray | None, list[int]]] = [(None, channels)]  # type: ignore[list-item]
        else:
            table = np.stack([np.broadcast_to(c, (len(stage.node_ids),)) for c in channels], axis=1)
            signatures, which = np.unique(table, axis=0, return_inverse=True)
            which = np.asarray(which).reshape(-1)
            groups = [(np.flatnonzero(which == g), [int(c) for c in sig]) for g, sig in enumerate(signatures)]
            if len(groups) == 1:  # every row takes the same channels after broadcasting: one call of all rows
                groups = [(None, groups[0][1])]
        if layout is not None:
            layout[stage.index] = groups

        prepared = []
        for subset, signature in groups:
            inputs = [
                gather(inlet, produced, subset, c, self._index_cache) for inlet, c in zip(stage.inlets, signature)
            ]
            key = (stage.index, None if subset is None else subset.tobytes())
            kwargs = None if stage_kwargs is None else stage_kwargs.get(key)
            if kwargs is None:
                kwargs = ({} if stage.processor is None
                          else self._stage_parameters(stage, parameters, per_example, subset, batch, curves))
                if stage_kwargs is not None:
                    stage_kwargs[key] = kwargs
            prepared.append((subset, inputs, kwargs))

        if background and stage.runs_on_host:
            prepared = [(subset, HostCall(inputs, kwargs) if needs_host_transfer(True, inputs) else inputs, kwargs)
                        for subset, inputs, kwargs in prepared]

        def call() -> list[tuple[np.ndarray | None, list[torch.Tensor], Mapping[str, torch.Tensor] | None]]:
            called = []
            for subset, inputs, kwargs in prepared:
                if stage.processor is None:
                    called.append((subset, inputs, None))
                elif isinstance(inputs, HostCall):
                    inputs.wait()
                    outputs, aux = self._call(stage, inputs.inputs, inputs.kwargs, subset, states)
                    called.append((subset, inputs.back(outputs), inputs.back(aux)))
                else:
                    called.append((subset, *self._call(stage, inputs, kwargs, subset, states)))
            return called

        if background:
            future = submit(call)
            return lambda: self._assemble(stage, future.result(), batch, aux_by_node, batched)
        return lambda: self._assemble(stage, call(), batch, aux_by_node, batched)

    def _assemble(self, stage: _StagePlan,
                  called: list[tuple[np.ndarray | None, list[torch.Tensor], Mapping[str, torch.Tensor] | None]],
                  batch: int, aux_by_node: NodeAux, batched: bool) -> list[Produced]:
        # The built-in "out" has no outlet but hands its summed input back as the result.
        results = [Produced([], []) for _ in (stage.outlets or ("result",))]
        for subset, outputs, aux in called:
            for k, y in enumerate(outputs):
                results[k].parts.append(y)
                results[k].rows.append(subset)
            if aux:
                node_ids = stage.node_ids if subset is None else stage.node_ids[subset]
                rows = len(node_ids)
                for name, value in aux.items():
                    value = value.reshape(batch, rows, *value.shape[1:])
                    for j, node in enumerate(node_ids.tolist()):
                        aux_by_node.setdefault(node, {})[name] = value[:, j] if batched else value[0, j]
        return results


class RenderPlan:
    """A graph compiled against its processors; call it to render.

    Compiling checks the graph, schedules it (:func:`render_order`) and
    precomputes every index a render needs. Calling the plan only checks the
    inputs' shapes, gathers each stage's inputs and calls its processor.

    On the CPU, stages whose signals would exceed ``tile_bytes`` are split
    into tiles of fewer nodes rendered depth first (:func:`tile_stages`), so
    that long signals stay in cache from one processor to the next (see
    :data:`CPU_TILE_BYTES`); the tiled orders are compiled once per tile size
    and cached. On other devices every stage is one call.

    Attributes:
        graph: the compiled graph.
        stages: the render order; all ``"out"`` nodes form the last stage.
        tile_bytes: the CPU working-set budget per call (``None``: never tile).
        control_hop: samples per control frame of the curves the plan takes
            (``None``: it takes none; see :mod:`grafx_core.curves`).
    """

    def __init__(self, graph: Graph, processors: Mapping[str, ProcessorLike], stages: list[Stage],
                 tile_bytes: int | None = CPU_TILE_BYTES, control_hop: int | None = None) -> None:
        self.control_hop = check_control_hop(control_hop)
        self.graph = graph
        self.processors = dict(processors)
        self.stages = stages
        self.tile_bytes = tile_bytes
        self._in_nodes = graph.nodes_of_type("in")
        self._largest_stage = max((len(s.nodes) for s in stages if s.type != "out"), default=1)
        self._programs: dict[int, _Program] = {self._largest_stage: _Program(graph, self.processors, stages)}

    def __repr__(self) -> str:
        return f"RenderPlan({len(self.graph)} nodes in {len(self.stages)} stages)"

    # -- inputs -----------------------------------------------------------
    def _prepare_sources(self, sources: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if not isinstance(sources, torch.Tensor):
            raise SourceShapeError(f"sources must be a tensor, got {type(sources).__name__}")
        count = len(self._in_nodes)
        if sources.ndim == 3:
            batched, sources = False, sources.unsqueeze(0)
        elif sources.ndim == 4:
            batched = True
        else:
            raise SourceShapeError(
                f"sources must be [num_in, channels, samples] or [batch, num_in, channels, samples] "
                f"with num_in = {count} (the graph's 'in' nodes); got shape {list(sources.shape)}"
            )
        if sources.shape[1] != count:
            raise SourceShapeError(
                f"sources have {sources.shape[1]} signal(s) along the 'in' dimension but the graph has "
                f"{count} 'in' node(s) (ids {self._in_nodes}); got shape {list(sources.shape)}"
            )
        check_source_values(sources, self.graph, self._in_nodes)
        return sources, batched

    def nodes_per_call(self, sources: torch.Tensor) -> int:
        """The most nodes one processor call takes for ``sources`` (4-D), tiling applied."""
        if self.tile_bytes is None or sources.device.type != "cpu":
            return self._largest_stage
        batch, _, channels, samples = sources.shape
        per_node = max(1, batch * channels * samples * sources.element_size())
        return max(1, min(self._largest_stage, self.tile_bytes // per_node))

    def _program(self, nodes_per_call: int) -> _Program:
        program = self._programs.get(nodes_per_call)
        if program is None:
            whole = {t for t, p in self.processors.items() if describe(p).gradient_kind != "autograd"}
            stages = tile_stages(self.graph, self.stages, nodes_per_call, keep_whole=whole)
            program = self._programs[nodes_per_call] = _Program(self.graph, self.processors, stages)
        return program

    def __call__(self, parameters: Any, sources: torch.Tensor) -> tuple[torch.Tensor, NodeAux]:
        """Render the graph.

        Args:
            parameters: for each processor type, a (nested) mapping of tensors,
                shared ``[nodes_of_type, *shape]`` or per example
                ``[batch, nodes_of_type, *shape]`` (as from
                :func:`create_empty_parameters`, or predicted by a network);
                a time-varying control may be a curve with a trailing axis of
                control frames (``[nodes_of_type, *shape, frames]``, see
                :func:`~grafx_core.curve_frames`), which its processor receives
                as ``[rows, *shape, samples]``.
            sources: ``[num_in, channels, samples]``, one row per ``"in"`` node
                in id order, or ``[batch, num_in, channels, samples]``.

        Returns:
            ``(y, aux)``: ``y`` is ``[num_out, channels, samples]`` (with a
            leading batch dimension when ``sources`` has one), one row per
            ``"out"`` node in id order, mono outputs broadcast to the widest
            output; ``aux`` maps node id to that node's aux values (with a
            leading batch dimension when batched).

        Raises:
            SourceShapeError: sources of the wrong shape, not float32/float64
                (integer, bool, half or complex), on the meta device, empty
                (no batch items, channels or samples), or holding NaN/Inf (the
                message names the ``"in"`` node).
            ParameterError: see :func:`~grafx_core.check_parameters` (NaN/Inf
                values are named by node).
            ProcessorOutputError, GraphConnectionError, InletChannelError: see
                their messages.
        """
        sources, batched = self._prepare_sources(sources)
        samples = sources.shape[-1]
        per_example, curves = _check_parameters(self.graph, self.processors, parameters,
                                                sources.shape[0] if batched else None, samples, self.control_hop)
        program = self._program(self.nodes_per_call(sources))
        moving = _Curves(frozenset(curves), samples, self.control_hop or 1) if curves else None
        return program.run(parameters, sources, per_example, batched, moving)

    def stream(self, parameters: Any, blocks: Iterable[torch.Tensor], *,
               detach_state: bool = True) -> Iterator[torch.Tensor]:
        """Render a long input block by block, each processor's state carried across blocks.

        See :func:`grafx_core.stream.stream_render` (arguments, compensation
        of ``latency_samples``, errors).
        """
        from .stream import stream_render  # the stream compiles plans itself

        return stream_render(self, parameters, blocks, detach_state=detach_state)


def _type_ranks(graph: Graph) -> list[int]:
    """Each node's row in its type's parameters: its rank among nodes of its type by id."""
    counters: dict[str, int] = {}
    ranks = []
    for node in graph.nodes:
        ranks.append(counters.get(node.type, 0))
        counters[node.type] = ranks[-1] + 1
    return ranks


def compile_render(
    graph: Graph,
    processors: Mapping[str, ProcessorLike],
    method: Literal["beam", "greedy", "one-by-one"] = "beam",
    stages: list[Stage] | None = None,
    tile_bytes: int | None = CPU_TILE_BYTES,
    control_hop: int | None = None,
) -> RenderPlan:
    """Check ``graph`` against ``processors``, schedule it and precompute a render plan.

    Args:
        graph: the graph.
        processors: processor module for each non-built-in node type.
        method: scheduling method for :func:`render_order`.
        stages: a render order to use instead of scheduling (as returned by
            :func:`render_order`).
        tile_bytes: CPU working-set budget per processor call; larger stages
            are tiled (see :class:`RenderPlan`, :data:`CPU_TILE_BYTES`).
            ``None`` never tiles.
        control_hop: samples per control frame of automation curves (see
            :mod:`grafx_core.curves`); ``None`` takes no curves.

    Raises:
        UnknownNodeTypeError: a node type has no processor (known types
            listed), or its processor is ``None``, a class or not callable.
        GraphConnectionError: an edge names a missing inlet/outlet, or an inlet
            has no edge.
        GraphCycleError: the graph has a cycle.
        ValueError: ``method`` is unknown, or ``tile_bytes`` or ``control_hop``
            not a positive int.
        GraphError: the graph has no ``"out"`` node, or ``stages`` is not a
            valid render order of it (a node missing, repeated, in a stage of
            another type or before its inputs; ``"out"`` not the last stage).
        TypeError: the first argument is not a :class:`Graph` (GRAFX's
            ``(processors, ...)`` order is named as such), or ``processors``
            is not a mapping.
    """
    require_graph("compile_render(graph, processors, method)", graph, processors)
    if tile_bytes is not None and (not isinstance(tile_bytes, int) or isinstance(tile_bytes, bool) or tile_bytes < 1):
        raise ValueError(f"compile_render: tile_bytes must be a positive int or None, got {tile_bytes!r}")
    _require_processors(graph, processors)
    if not graph.nodes_of_type("out"):
        raise GraphError("the graph has no 'out' node, so rendering would produce nothing")
    _check_edges(graph, processors)
    if stages is None:
        stages = render_order(graph, method)
    else:
        check_stages(graph, stages)
        stages = list(stages)
    return RenderPlan(graph, processors, stages, tile_bytes, check_control_hop(control_hop))
