"""A stream's blocks rendered by a program compiled once: every per-stage decision taken on its first block.

:meth:`grafx_core.plan._Program.run` decides, for every stage of every render,
which rows take which inputs (split by channel count where they differ), how
each inlet is gathered (used whole, sliced, selected, summed), whether a call
runs in the background and how its outputs are kept. A stream makes the same
decisions for every block: its blocks have one shape but for their length.
On blocks of a few thousand samples those decisions (a few dozen Python
calls and small numpy operations per stage) cost as much as the processors'
own work, so a stream takes them once, on the first block ``run`` renders
(its ``layout``), and renders the following blocks as a flat list of
prebound steps: gather each inlet, call the processor with its state, keep
its outputs, release what nothing reads any more.

The steps call the processors through ``_Program._call``, the one place a
processor call is made, checked and named in errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from ._concurrent import submit
from ._gather import Gathered, Produced, Producer, gather_step
from ._host_transfer import HostCall, needs_host_transfer
from .curves import _Curves

if TYPE_CHECKING:
    from .plan import _Program, _StagePlan

__all__ = ["BlockProgram"]


class BlockProgram:
    """The stages of a :class:`~grafx_core.plan._Program` as prebound steps for a stream's blocks.

    Build it with :meth:`compile` from the ``layout`` that ``run`` filled for
    a block of the same stream; render with :meth:`run`.
    """

    def __init__(self, program: _Program, steps: list[tuple[_StagePlan, list[Gathered], list[Producer]]],
                 kwargs: Mapping[int, dict[str, Any]] | None) -> None:
        # Each step: the stage, how its inlets are gathered, the outputs it is the last to read.
        self._program = program
        self._steps = steps
        self._kwargs = kwargs

    @classmethod
    def compile(cls, program: _Program, layout: Mapping[Any, Any], sources: torch.Tensor,
                stage_kwargs: Mapping[Any, Any] | None) -> BlockProgram | None:
        """A block program for blocks shaped like ``sources`` (``[batch, num_in, channels, samples]``).

        Args:
            layout: what ``program.run(..., layout=layout)`` recorded for such a block.
            stage_kwargs: the stage calls' parameters the stream keeps (``None``: prepared every block).

        Returns:
            ``None`` where the program is not one call per stage (rows split by
            channel count): those renders stay with ``run``.
        """
        outlets: dict[Producer, Any] = {(-1, 0): tuple(sources.shape[1:3])}
        outlets.update((key, value) for key, value in layout.items() if isinstance(key, tuple))
        steps = []
        for stage in program._stages:
            calls = layout.get(stage.index)
            if calls is None or len(calls) != 1 or calls[0][0] is not None:
                return None
            gathers = [gather_step(inlet, outlets, channels, sources.device, program._index_cache)
                       for inlet, channels in zip(stage.inlets, calls[0][1])]
            if any(g is None for g in gathers):
                return None
            steps.append((stage, [g for g in gathers if g is not None], program._release_after.get(stage.index, [])))
        kept = None
        if stage_kwargs is not None:
            kept = {stage.index: stage_kwargs[(stage.index, None)] for stage in program._stages
                    if stage.processor is not None and (stage.index, None) in stage_kwargs}
            if len(kept) != sum(stage.processor is not None for stage in program._stages):
                kept = None
        return cls(program, steps, kept)

    def run(self, parameters: Any, sources: torch.Tensor, per_example: Mapping[str, bool], batched: bool,
            curves: _Curves | None, states: dict[Any, Any]) -> torch.Tensor:
        """Render one block ``[batch, num_in, channels, samples]`` with ``states`` carried, as
        ``program.run(...)[0]`` does (aux values are checked and dropped: a stream yields signals only)."""
        program, kept = self._program, self._kwargs
        curves = curves or _Curves(frozenset(), sources.shape[-1], 1)
        batch = sources.shape[0]
        produced: dict[Producer, Produced] = {(-1, 0): Produced.single(sources)}
        for producer in program._release_after.get(-1, []):
            del produced[producer]
        result: torch.Tensor | None = None
        pending: dict[int, Callable[[], list[torch.Tensor]]] = {}  # background calls under way (as in run)

        def settle(index: int) -> None:
            for k, y in enumerate(pending.pop(index)()):
                produced[(index, k)] = Produced.single(y)

        for stage, gathers, release in self._steps:
            for index in program._depends[stage.index]:
                if index in pending:
                    settle(index)
            background = program._background[stage.index]
            if background:  # one processor never runs twice at once (run's rule)
                for index in [i for i in pending if program._stages[i].processor is stage.processor]:
                    settle(index)
            inputs = [gather(produced) for gather in gathers]
            if stage.processor is None:  # a mix or the outputs: the gathered sum is the signal
                outputs = inputs
                if stage.type == "out":
                    result = inputs[0]
            else:
                kwargs = kept[stage.index] if kept is not None else program._stage_parameters(
                    stage, parameters, per_example.get(stage.type, False), None, batch, curves)
                if background:
                    pending[stage.index] = submit(_call_of(program, stage, inputs, kwargs, states)).result
                    outputs = []
                else:
                    outputs, _ = program._call(stage, inputs, kwargs, None, states)
            for k, y in enumerate(outputs):
                produced[(stage.index, k)] = Produced.single(y)
            for producer in release:
                produced.pop(producer, None)
        for index in sorted(pending):
            pending[index]()  # outputs nothing reads; their errors still count
        assert result is not None  # compile_render guarantees an "out" stage
        return result if batched else result[0]


def _call_of(program: _Program, stage: _StagePlan, inputs: list[torch.Tensor], kwargs: dict[str, Any],
             states: dict[Any, Any]) -> Callable[[], list[torch.Tensor]]:
    """A background stage's call (its inputs moved to pinned host memory first where it runs on the host)."""
    if stage.runs_on_host and needs_host_transfer(True, inputs):
        host = HostCall(inputs, kwargs)

        def on_host() -> list[torch.Tensor]:
            host.wait()
            outputs, _ = program._call(stage, host.inputs, host.kwargs, None, states)
            return list(host.back(outputs))

        return on_host
    return lambda: program._call(stage, inputs, kwargs, None, states)[0]
