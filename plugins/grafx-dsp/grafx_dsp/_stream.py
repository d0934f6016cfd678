"""State across blocks for grafx-dsp processors: what their ``forward_stateful`` methods share.

Every grafx-dsp filter is a causal convolution with an impulse response the
one-shot ``forward`` builds from its parameters; its block-wise form builds
the same response (not cut to the block's length) and carries the overlap
into the next block (:func:`grafx_dsp.fft.convolve_block`), so one-shot and
streaming renders share the code that designs the filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from grafx_core import StreamingError
from grafx_core.state import call_block

from ._derived import derived
from .fft import convolve_block
from .moving_filter import moving_sos_block
from .partitioned import initial_partitioned_state, partition_size, partition_spectra, partitioned_block

__all__ = ["StatefulConvolution", "child_block", "sparse_block", "MAX_HISTORY"]

MAX_HISTORY = 1 << 23
"""The most input samples a sparse delay keeps per row and channel to stream (about 3 minutes at 44.1 kHz)."""


class StatefulConvolution:
    """Mixin: ``forward_stateful`` for processors whose output is ``x`` convolved with
    :meth:`stream_kernel` (``[rows, 1, taps]``, or ``[rows, outlets, 1, taps]`` with
    ``x`` unsqueezed at dimension 1 and one outlet per kernel).

    State: a response no longer than the first block's partition size
    (:func:`grafx_dsp.partitioned.partition_size`) is convolved per block by
    overlap-add, ``{"tail": [rows, (outlets,) channels, taps - 1]}`` holding
    the overhang of the blocks rendered so far; a longer one (a reverb) by
    uniformly partitioned convolution, ``{"size": partition size, "conv":
    the input history and frequency-domain delay line}``
    (:mod:`grafx_dsp.partitioned`), so a block costs FFTs of its own size, not
    of the response's. Where no gradient is asked for, the state also keeps
    the kernel (and its transforms) and the parameters it was designed from,
    and the next block reuses them if the parameters are equal (designing a
    long response every block cost more than convolving with it).

    A processor whose controls move (curves) and that declares
    ``moving_design(x, **params) -> (design, controls, block)`` streams its
    moving filter instead, ``{"moving": ...}`` carrying the recursion's
    memories and its place on the coefficient grid
    (:func:`grafx_dsp.moving_filter.moving_sos_block`): the same filter as
    its one-call moving render, not a convolution.
    """

    def stream_kernel(self, x: torch.Tensor, **params: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def initial_state(self, *signals: torch.Tensor, **params: Any) -> dict[str, torch.Tensor]:
        """An empty state: the overhang starts at zero (made by the first block)."""
        return {}

    def forward_stateful(self, state: Mapping[str, Any], x: torch.Tensor,
                         **params: Any) -> tuple[Any, dict[str, Any]]:
        """One block, carrying the convolution's state (see the class docstring)."""
        check = getattr(self, "check_channels", None)
        if check is not None:
            check(x)
        if self._moving_controls(params) or "moving" in state:
            return self._moving_block(state, x, params)
        leaves = _leaves(params)
        kernel, token = _cached_kernel(state, leaves)
        cached = kernel is not None
        if kernel is None:  # the first block (or parameters that changed): what the cached one passed
            kernel = self.stream_kernel(x, **params)
        kept = _kernel_cache(kernel, leaves, state if cached else None, token)
        signal = x.unsqueeze(1) if kernel.dim() == 4 else x
        if "conv" in state or (not state and kernel.shape[-1] > partition_size(x.shape[-1])):
            y, new = _partitioned(state, signal, kernel, cached, kept)
        else:
            spectra = dict(state.get("spectra", {})) if cached else None
            cache = None if spectra is None else {int(k): v for k, v in spectra.items()}
            y, tail = convolve_block(signal, kernel, state.get("tail"), cache)
            if kept:
                kept["spectra"] = {} if cache is None else {str(k): v for k, v in cache.items()}
            new = {"tail": tail, **kept}
        return (tuple(y.unbind(dim=1)) if kernel.dim() == 4 else y), new


    def _moving_controls(self, params: Mapping[str, Any]) -> list[str]:
        shapes = {name: bounds.shape for name, bounds in getattr(self, "ranges", {}).items()}
        return sorted(name for name, value in params.items() if isinstance(value, torch.Tensor)
                      and name in shapes and value.dim() == len(shapes[name]) + 2)

    def _moving_block(self, state: Mapping[str, Any], x: torch.Tensor,
                      params: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """A block with moving controls: the exact recursion of the one-call render, its memories and its
        place on the coefficient grid carried (:func:`grafx_dsp.moving_filter.moving_sos_block`)."""
        name, moving = type(self).__name__, self._moving_controls(params)
        design_of = getattr(self, "moving_design", None)
        if design_of is None:
            raise StreamingError(f"{name}: the moving controls {moving} (curves) do not stream: this processor "
                                 "has no moving_design; render a graph with them in one call")
        if not moving or (state and "moving" not in state):
            raise StreamingError(f"{name}: its controls {'stopped' if not moving else 'began'} moving in the middle "
                                 "of a stream; give every block curves, or none")
        design, controls, block = design_of(x, **params)
        y, new = moving_sos_block(state.get("moving", {}), x, design, controls, block)
        return y, {"moving": new}


def _partitioned(state: Mapping[str, Any], signal: torch.Tensor, kernel: torch.Tensor, cached: bool,
                 kept: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """A block of a long response by uniformly partitioned convolution (:mod:`grafx_dsp.partitioned`)."""
    size = int(state.get("size", partition_size(signal.shape[-1])))
    if cached and "parts" in state:
        spectra, head = state["parts"], state["head"]
    else:
        spectra = partition_spectra(kernel, size)
        head = torch.nn.functional.pad(kernel, (0, max(0, size - kernel.shape[-1])))[..., :size]
    conv = state.get("conv") or initial_partitioned_state(signal, spectra.shape[-2], size)
    y, conv = partitioned_block(signal, spectra, head, conv)
    if kept:
        kept.update(parts=spectra, head=head)
    return y, {"size": size, "conv": conv, **kept}


def _leaves(params: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{key}."))
        elif isinstance(value, torch.Tensor):
            out[prefix + key] = value
    return out


def _same_tensors(leaves: Mapping[str, torch.Tensor]) -> object:
    """A token that stays the same object while ``leaves`` are the same tensors, unchanged (outside autograd)."""
    return derived("stream_kernel.parameters", lambda *values: object(), *leaves.values(), key=tuple(leaves))


def _cached_kernel(state: Mapping[str, Any],
                   leaves: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor | None, object | None]:
    """The state's kernel if it was designed from these parameters, and the parameters' token
    (:func:`_same_tensors`; ``None`` where autograd records them)."""
    if any(t.requires_grad for t in leaves.values()) and torch.is_grad_enabled():
        return None, None
    token = _same_tensors(leaves)
    kernel, designed = state.get("kernel"), state.get("designed_from")
    if kernel is None or designed is None:
        return None, token
    if state.get("designed_token") is token:  # the very tensors it was designed from
        return kernel, token
    same = designed.keys() == leaves.keys() and all(
        designed[k].shape == v.shape and bool(torch.equal(designed[k], v)) for k, v in leaves.items())
    return (kernel if same else None), token


def _kernel_cache(kernel: torch.Tensor, leaves: Mapping[str, torch.Tensor], reused: Mapping[str, Any] | None,
                  token: object | None) -> dict[str, Any]:
    """What the state keeps to reuse ``kernel``: it, the parameters' values it was designed from (copied
    only when designed: ``reused`` is the state it came from otherwise) and their ``token``."""
    if token is None or kernel.requires_grad:
        return {}
    designed = (reused["designed_from"] if reused is not None
                else {k: v.detach().clone() for k, v in leaves.items()})
    return {"kernel": kernel, "designed_from": designed, "designed_token": token}


def child_block(child: Any, state: Any, signals: tuple[torch.Tensor, ...],
                params: Mapping[str, Any]) -> tuple[Any, Any]:
    """A container's child rendered for one block from its state (``None`` before the first)."""
    return call_block(child, state, signals, params)


def sparse_block(x: torch.Tensor, history: torch.Tensor | None, index: torch.Tensor,
                 weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One block of ``y[n] = sum_k weight[k] x[n - index[k]]`` with the input's past carried.

    Args:
        x: the block ``[rows, channels, samples]``.
        history: the last ``max(index)`` input samples before the block,
            ``[rows, channels, span]`` (``None``: silence).
        index: whole-sample delays ``[rows, taps]`` (``>= 0``).
        weight: each tap's gain ``[rows, taps]``.

    Returns:
        ``(y, history)``: the block's output and the input's last ``span`` samples.
    """
    rows, channels, samples = x.shape
    span = max(int(index.max()), 1) if index.numel() else 1
    if history is None:
        history = x.new_zeros(rows, channels, span)
    line = torch.cat([history, x], dim=-1)  # [rows, channels, span + samples]
    y: torch.Tensor | None = None
    step = max(1, (1 << 20) // max(samples * channels, 1))  # taps per gather: about a million values at a time
    n = torch.arange(samples, device=x.device)
    for start in range(0, index.shape[1], step):
        where = span - index[:, start:start + step, None] + n  # [rows, k, samples]
        picked = line.gather(2, where.reshape(rows, 1, -1).expand(rows, channels, -1))
        picked = picked.reshape(rows, channels, -1, samples)
        part = (picked * weight[:, None, start:start + step, None].to(x.dtype)).sum(dim=2)
        y = part if y is None else y + part
    assert y is not None
    return y, line[..., line.shape[-1] - span:]
