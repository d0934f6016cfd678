"""Containers: a dry/wet mix around any processor, a serial chain and a parallel mix inside one node.

A container's parameters nest its children's: ``DryWet(Compressor())`` has
``{"mix": (1,), "processor": {"threshold_db": (1,), ...}}`` and
``Chain({"eq": ..., "comp": ...})`` has ``{"eq": {...}, "comp": {...}}``
(children without parameters are left out). Auxiliary values of the
children are passed on, their keys prefixed by the child's name and a dot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from grafx_core import (
    ParameterError,
    Processor,
    ProcessorOutputError,
    describe,
)

from ._base import default_parameters, per_node
from ._stream import child_block
from ._ranges import Range, soft_limit
from .errors import ChannelCountError

__all__ = ["DryWet", "Chain", "ParallelMix"]

MIX = Range(low=0.0, high=1.0, default=1.0, floor=-0.1, ceiling=1.1, time_varying=True)


def _split_output(output: Any, n_outlets: int, who: str) -> tuple[tuple[torch.Tensor, ...], dict]:
    """A processor's return value as (outlet tensors, aux dict)."""
    items = list(output) if isinstance(output, (tuple, list)) else [output]
    aux: dict = {}
    if items and isinstance(items[-1], Mapping):
        aux = dict(items.pop())
    if len(items) != n_outlets:
        raise ProcessorOutputError(f"{who}: expected {n_outlets} outlet tensor(s), got {len(items)}")
    return tuple(items), aux


def _common_gradient_kind(children: Sequence[Any], who: str) -> str:
    kinds = {describe(child).gradient_kind for child in children}
    if len(kinds) > 1:
        raise ValueError(f"{who}: children have different gradient kinds {sorted(kinds)}; "
                         "a container needs them all alike")
    return kinds.pop() if kinds else "autograd"


Call = Callable[[str, Any, tuple[torch.Tensor, ...], Mapping[str, Any]], Any]
"""How a container calls a child: ``(name, child, signals, params) -> result``."""


def _plain(name: str, child: Any, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any]) -> Any:
    return child(*signals, **params)


def _carried(old: Mapping[str, Any], new: dict[str, Any]) -> Call:
    """A call that renders each child from its state in ``old`` and leaves its next state in ``new``."""
    def call(name: str, child: Any, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any]) -> Any:
        result, state = child_block(child, old.get(name), signals, params)
        if state is not None:
            new[name] = state
        return result
    return call


class _Streaming:
    """State across blocks for containers: composed from the children's (by child name).

    A container is memoryless when all its children are, stateful when all
    are stateful or memoryless, and cannot stream otherwise (nor, for a dry/wet
    or parallel mix, when a child is late: its dry path would be misaligned).
    """

    _streams: str | None

    def _set_streaming(self, children: Mapping[str, Any], serial: bool) -> None:
        kinds, late = set(), 0
        for child in children.values():
            described = describe(child)
            kinds.add("stateful" if described.stateful else "memoryless" if described.memoryless else None)
            late += described.latency_samples
        if None in kinds or (late and not serial):
            self._streams = None
        else:
            self._streams = "memoryless" if kinds == {"memoryless"} else "stateful"
        self._latency = late if self._streams else 0

    @property
    def memoryless(self) -> bool:
        return self._streams == "memoryless"

    @property
    def latency_samples(self) -> int:
        return self._latency

    @property
    def initial_state(self) -> Callable[..., dict[str, Any]] | None:
        return self._initial_state if self._streams == "stateful" else None

    @property
    def forward_stateful(self) -> Callable[..., tuple[Any, dict[str, Any]]] | None:
        return self._forward_stateful if self._streams == "stateful" else None

    def _initial_state(self, *signals: torch.Tensor, **params: Any) -> dict[str, Any]:
        return {}  # each child's state starts at its first block (the children see the inputs there)

    def _forward_stateful(self, state: Mapping[str, Any], *signals: torch.Tensor,
                          **params: Any) -> tuple[Any, dict[str, Any]]:
        new: dict[str, Any] = {}
        return self._render(signals, params, _carried(state, new)), new

    def _render(self, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any], call: Call) -> Any:
        raise NotImplementedError  # pragma: no cover - each container renders its own way


def _has_parameters(processor: Any) -> bool:
    return bool(processor.parameter_size()) if hasattr(processor, "parameter_size") else False


class DryWet(_Streaming, Processor):
    """``(1 - mix) * dry + mix * processor(...)``, where dry is the first inlet's signal.

    Args:
        processor: any processor with exactly one outlet; its inlets become this container's.

    Parameters:
        mix ``[nodes, 1]``: range [0, 1], default 1 (wet only).
        processor: the wrapped processor's parameters (absent if it has none).

    Signals: those of ``processor``; a mono dry signal is spread over a
    stereo wet one, other channel-count mismatches raise :class:`ChannelCountError`.
    """

    def __init__(self, processor: nn.Module) -> None:
        super().__init__()
        if len(describe(processor).outlets) != 1:
            raise ValueError(f"DryWet: the wrapped processor must have one outlet, "
                             f"{type(processor).__name__} has {describe(processor).outlets}")
        self.processor = processor
        self.inlets = describe(processor).inlets
        self.inlet_channels = dict(describe(processor).inlet_channels)
        self.gradient_kind = _common_gradient_kind([processor], "DryWet")
        self._set_streaming({"processor": processor}, serial=False)

    def parameter_size(self) -> dict[str, Any]:
        size: dict[str, Any] = {"mix": MIX.shape}
        if _has_parameters(self.processor):
            size["processor"] = self.processor.parameter_size()
        return size

    def controls(self) -> dict[str, Any]:
        """``mix`` (it may move: a curve ``[nodes, 1, samples]``) and the wrapped processor's controls."""
        controls: dict[str, Any] = {"mix": MIX.control().replace(time_varying=True,
                                                                 description="dry/wet amount: 0 dry, 1 wet")}
        inner = describe(self.processor).control_tree()
        if inner:
            controls["processor"] = inner
        return controls

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"mix": torch.full((nodes, *MIX.shape), MIX.default, dtype=dtype, device=device)}
        if _has_parameters(self.processor):
            params["processor"] = default_parameters(self.processor, nodes, dtype=dtype, device=device)
        return params

    def forward(self, *signals: torch.Tensor, mix: torch.Tensor,
                processor: Mapping[str, Any] | None = None) -> Any:
        return self._render(signals, {"mix": mix, "processor": processor}, _plain)

    def _render(self, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any], call: Call) -> Any:
        mix = params["mix"]
        (wet,), aux = _split_output(call("processor", self.processor, signals, params.get("processor") or {}), 1,
                                    f"DryWet({type(self.processor).__name__})")
        dry = signals[0]
        if dry.shape[1] not in (1, wet.shape[1]):
            raise ChannelCountError(f"DryWet({type(self.processor).__name__}): dry signal has "
                                    f"{dry.shape[1]} channels, wet has {wet.shape[1]}")
        amount = per_node(soft_limit(mix, MIX), wet)
        out = dry + amount * (wet - dry)
        return (out, {f"processor.{key}": value for key, value in aux.items()}) if aux else out


class Chain(_Streaming, Processor):
    """Processors in series inside one node.

    Args:
        stages: a sequence (named ``"0"``, ``"1"``, ...) or a mapping from
            name to processor. The first stage's inlets are the chain's; every
            later stage must have one inlet, every stage but the last one
            outlet; the last stage's outlets are the chain's.

    Parameters:
        One nested dict per stage that has parameters, under the stage's name.
    """

    def __init__(self, stages: Sequence[nn.Module] | Mapping[str, nn.Module]) -> None:
        super().__init__()
        named = dict(stages) if isinstance(stages, Mapping) else {str(i): s for i, s in enumerate(stages)}
        if not named:
            raise ValueError("Chain: needs at least one stage")
        names = list(named)
        for position, (name, stage) in enumerate(named.items()):
            if position > 0 and len(describe(stage).inlets) != 1:
                raise ValueError(f"Chain: stage {name!r} ({type(stage).__name__}) must have one inlet, "
                                 f"has {describe(stage).inlets}")
            if position < len(named) - 1 and len(describe(stage).outlets) != 1:
                raise ValueError(f"Chain: stage {name!r} ({type(stage).__name__}) must have one outlet, "
                                 f"has {describe(stage).outlets}")
        self.stages = nn.ModuleDict(named)
        self.inlets = describe(named[names[0]]).inlets
        self.inlet_channels = dict(describe(named[names[0]]).inlet_channels)
        self.outlets = describe(named[names[-1]]).outlets
        self.gradient_kind = _common_gradient_kind(list(named.values()), "Chain")
        self._set_streaming(named, serial=True)

    def parameter_size(self) -> dict[str, Any]:
        return {name: stage.parameter_size() for name, stage in self.stages.items() if _has_parameters(stage)}

    def controls(self) -> dict[str, Any]:
        """Each stage's controls under the stage's name, as the stage declares them (moving ones included)."""
        controls = {name: describe(stage).control_tree() for name, stage in self.stages.items()}
        return {name: value for name, value in controls.items() if value}

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, Any]:
        return {name: default_parameters(stage, nodes, dtype=dtype, device=device)
                for name, stage in self.stages.items() if _has_parameters(stage)}

    def forward(self, *signals: torch.Tensor, **params: Mapping[str, Any]) -> Any:
        return self._render(signals, params, _plain)

    def _render(self, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any], call: Call) -> Any:
        unknown = sorted(set(params) - set(self.stages))
        if unknown:
            raise ParameterError(f"Chain: parameters {unknown} name no stage; stages are {list(self.stages)}")
        aux: dict[str, Any] = {}
        last = len(self.stages) - 1
        outputs: tuple[torch.Tensor, ...] = signals
        for position, (name, stage) in enumerate(self.stages.items()):
            n_outlets = len(describe(stage).outlets) if position == last else 1
            outputs, stage_aux = _split_output(call(name, stage, outputs, params.get(name, {})), n_outlets,
                                               f"Chain stage {name!r} ({type(stage).__name__})")
            aux.update({f"{name}.{key}": value for key, value in stage_aux.items()})
        if aux:
            return (*outputs, aux)
        return outputs[0] if len(outputs) == 1 else outputs


class ParallelMix(_Streaming, Processor):
    """Processors side by side in one node, their outputs mixed: ``y = sum_k weight_k * f_k(...)``.

    Args:
        branches: a sequence (named ``"0"``, ``"1"``, ...) or a mapping from
            name to processor; every branch has the same inlets (they become
            the mix's) and one outlet.

    Parameters:
        weights ``[nodes, branches]``: each branch's linear weight, range
        [0, 1], default ``1 / branches`` (an equal mix; soft-limited like
        every grafx-dsp range, to the guard band [-0.1, 1.1]).
        One nested dict per branch that has parameters, under its name.

    Signals: the branches' inlets in; the widest branch output's channels
    out (a mono branch output is spread over a stereo one; other mismatches
    raise :class:`ChannelCountError`). Aux values of the branches are passed
    on, their keys prefixed by the branch's name and a dot.
    """

    def __init__(self, branches: Sequence[nn.Module] | Mapping[str, nn.Module]) -> None:
        super().__init__()
        named = dict(branches) if isinstance(branches, Mapping) else {str(i): b for i, b in enumerate(branches)}
        if not named:
            raise ValueError("ParallelMix: needs at least one branch")
        if "weights" in named:
            raise ValueError("ParallelMix: 'weights' is the mix's own parameter; name the branch otherwise")
        first = next(iter(named.values()))
        for name, branch in named.items():
            if describe(branch).inlets != describe(first).inlets:
                raise ValueError(f"ParallelMix: branch {name!r} ({type(branch).__name__}) has inlets "
                                 f"{describe(branch).inlets}, the first branch {describe(first).inlets}")
            if len(describe(branch).outlets) != 1:
                raise ValueError(f"ParallelMix: branch {name!r} ({type(branch).__name__}) must have one outlet, "
                                 f"has {describe(branch).outlets}")
        self.branches = nn.ModuleDict(named)
        self.inlets = describe(first).inlets
        self.inlet_channels = dict(describe(first).inlet_channels)
        self.gradient_kind = _common_gradient_kind(list(named.values()), "ParallelMix")
        self.weight_range = MIX.replace(default=1.0 / len(named), shape=(len(named),))
        self._set_streaming(named, serial=False)

    def parameter_size(self) -> dict[str, Any]:
        size: dict[str, Any] = {"weights": self.weight_range.shape}
        size.update({name: b.parameter_size() for name, b in self.branches.items() if _has_parameters(b)})
        return size

    def controls(self) -> dict[str, Any]:
        """``weights`` in [0, 1] and each branch's controls under its name."""
        # The weights hold one value per branch and node: they do not move (MIX, their range, does for DryWet).
        controls: dict[str, Any] = {"weights": self.weight_range.control().replace(time_varying=False)}
        controls.update({name: c for name, c in ((n, describe(b).control_tree()) for n, b in self.branches.items())
                         if c})
        return controls

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"weights": torch.full((nodes, *self.weight_range.shape), self.weight_range.default,
                                                        dtype=dtype, device=device)}
        params.update({name: default_parameters(b, nodes, dtype=dtype, device=device)
                       for name, b in self.branches.items() if _has_parameters(b)})
        return params

    def forward(self, *signals: torch.Tensor, weights: torch.Tensor, **params: Mapping[str, Any]) -> Any:
        return self._render(signals, {"weights": weights, **params}, _plain)

    def _render(self, signals: tuple[torch.Tensor, ...], params: Mapping[str, Any], call: Call) -> Any:
        params = dict(params)
        weights = params.pop("weights")
        unknown = sorted(set(params) - set(self.branches))
        if unknown:
            raise ParameterError(f"ParallelMix: parameters {unknown} name no branch; branches are "
                                 f"{list(self.branches)}")
        amounts = soft_limit(weights, self.weight_range)
        outputs, aux = [], {}
        for name, branch in self.branches.items():
            (y,), branch_aux = _split_output(call(name, branch, signals, params.get(name, {})), 1,
                                             f"ParallelMix branch {name!r} ({type(branch).__name__})")
            outputs.append(y)
            aux.update({f"{name}.{key}": value for key, value in branch_aux.items()})
        channels = max(y.shape[1] for y in outputs)
        if any(y.shape[1] not in (1, channels) for y in outputs):
            raise ChannelCountError(f"ParallelMix: branch outputs have {[y.shape[1] for y in outputs]} channels; "
                                    f"expected {channels} or 1 each")
        mixed = sum(amounts[:, k, None, None].to(y.dtype) * y for k, y in enumerate(outputs))
        return (mixed, aux) if aux else mixed
