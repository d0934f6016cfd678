"""Moving a host processor's call off the GPU's critical path (engine-internal).

A processor that runs on the host (``runs_on_host = True``: a black box whose
effect is C code on CPU threads) fed by signals on a GPU would otherwise copy
its inputs to the host inside its own call, on a stage thread. On CUDA's
default stream that copy waits for every kernel the render thread queued in
the meantime, so the black box could not start until the independent
analytic stages had finished: no overlap.

Instead the render thread queues the device-to-host copies itself, into
pinned memory, right after the stage's inputs are gathered, and records an
event; the stage thread waits only for that event, runs the processor on the
host copies and hands its outputs back through pinned memory with
non-blocking copies. The copies are ordinary differentiable ``Tensor.to``
calls, so gradients flow back to the device as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["HostCall", "needs_host_transfer"]


def needs_host_transfer(runs_on_host: bool, inputs: list[torch.Tensor]) -> bool:
    """Whether a host processor's inputs live on an accelerator and must travel."""
    return runs_on_host and bool(inputs) and inputs[0].device.type == "cuda"


def _map(tree: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(tree, torch.Tensor):
        return function(tree)
    if isinstance(tree, Mapping):
        return {key: _map(value, function) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(value, function) for value in tree)
    return tree


class HostCall:
    """The host side of one stage call: inputs queued to pinned host memory on the render thread.

    Args:
        inputs: the stage's gathered signals, each ``[batch, rows, channels, samples]`` on the device.
        kwargs: the stage's parameter tree, on the device.

    Attributes:
        inputs, kwargs: host copies (pinned), valid once :meth:`wait` returns.
        device: where the outputs go back to.
    """

    def __init__(self, inputs: list[torch.Tensor], kwargs: Mapping[str, Any]) -> None:
        self.device = inputs[0].device
        self.inputs = [x.to("cpu", non_blocking=True) for x in inputs]
        self.kwargs = _map(kwargs, lambda t: t.to("cpu", non_blocking=True) if t.device.type == "cuda" else t)
        self._ready = torch.cuda.Event()
        self._ready.record()

    def wait(self) -> None:
        """Block the calling (stage) thread until the host copies are complete."""
        self._ready.synchronize()

    def back(self, tree: Any) -> Any:
        """Outputs (tensors, lists or mappings of them) from the host back onto the device, non-blocking."""
        device = self.device

        def move(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.device.type != "cpu":
                return tensor
            return tensor.pin_memory().to(device, non_blocking=True)

        return _map(tree, move)
