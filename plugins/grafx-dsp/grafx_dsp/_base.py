"""The base class of grafx-dsp processors and small shared helpers."""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any, Union

import torch
from grafx_core import Control, ParameterError, Processor, describe

from ._derived import derived
from ._ranges import Range, soft_limit
from .errors import ChannelCountError

__all__ = ["DSPProcessor", "default_parameters", "per_node", "require_channels", "require_count", "unit_of",
           "MIN_SAMPLE_RATE"]

MIN_SAMPLE_RATE = 1000.0
"""The lowest sample rate a processor accepts, in Hz: below it the documented
frequency ranges (20 Hz up to 0.45 fs) are empty and a near-zero rate renders NaN."""

Number = Union[float, int, torch.Tensor]

class _LimitMemo:
    """The soft-limited values of the last parameter tensors a processor limited.

    A stream renders block after block with the same parameter tensors
    (``grafx_core.stream`` hands every block the same objects), and limiting
    a handful of small tensors per block cost as much as a compressor's own
    arithmetic on a block of 4,096 samples. A value is reused only for the very
    same tensor object, unchanged since (its version counter), outside
    autograd, and never for a curve or a large tensor.
    """

    SIZE = 256
    LARGEST = 4096

    def __init__(self) -> None:
        self._memo: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], tuple[torch.Tensor, int, torch.Tensor]]]
        self._memo = weakref.WeakKeyDictionary()

    @classmethod
    def _version(cls, value: torch.Tensor) -> int | None:
        if value.dim() >= 3 or value.numel() > cls.LARGEST or (value.requires_grad and torch.is_grad_enabled()):
            return None
        try:
            return int(value._version)
        except RuntimeError:  # an inference tensor keeps no version counter
            return None

    def get(self, processor: Any, name: str, value: torch.Tensor) -> torch.Tensor | None:
        entry = self._memo.get(processor, {}).get((name, id(value)))
        if entry is None or entry[0] is not value or entry[1] != self._version(value):
            return None
        return entry[2]

    def put(self, processor: Any, name: str, value: torch.Tensor, limited: torch.Tensor) -> None:
        version = self._version(value)
        if version is None or limited.requires_grad:
            return
        memo = self._memo.setdefault(processor, {})
        if len(memo) >= self.SIZE:
            del memo[next(iter(memo))]
        memo[(name, id(value))] = (value, version, limited)


_LIMITS = _LimitMemo()

_UNITS = (("_db", "dB"), ("_hz", "Hz"), ("_ms", "ms"), ("_s", "s"))


def unit_of(name: str) -> str:
    """The unit a grafx-dsp parameter name carries in its suffix (``""``: dimensionless)."""
    return next((unit for suffix, unit in _UNITS if name.endswith(suffix)), "")


class DSPProcessor(Processor):
    """A stateless processor whose parameters are described by :class:`Range` records.

    Subclasses fill ``self.ranges`` (parameter name to :class:`Range`) in
    their constructor; :meth:`controls`, :meth:`parameter_size` and
    :meth:`default_parameters` follow from it, and :meth:`limit` applies the
    documented soft limits. They declare the channel counts their inlets
    accept in ``inlet_channels`` (grafx-core's protocol), which
    :meth:`check_channels` enforces.

    Args:
        sample_rate: sampling rate of the signals in Hz.
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__()
        if not isinstance(sample_rate, (int, float)) or isinstance(sample_rate, bool) or not (
                MIN_SAMPLE_RATE <= sample_rate < math.inf):
            raise ValueError(f"{type(self).__name__}: sample_rate must be a finite number of Hz >= "
                             f"{MIN_SAMPLE_RATE:g}, got {sample_rate!r}")
        self.sample_rate = float(sample_rate)
        self.ranges: dict[str, Range] = {}

    def parameter_size(self) -> dict[str, Any]:
        """Each parameter's shape without the node dimension."""
        return {name: bounds.shape for name, bounds in self.ranges.items()}

    def controls(self) -> dict[str, Control]:
        """Each parameter as a :class:`~grafx_core.Control`: its range, unit, scale, default
        (row 0 of :meth:`default_parameters`) and whether it may move (``Range.time_varying``)."""
        defaults = self.default_parameters(1, dtype=torch.float64)
        return {name: _control(name, bounds, tuple(defaults[name][0].flatten().tolist()))
                for name, bounds in self.ranges.items()}

    def check_channels(self, *signals: torch.Tensor) -> None:
        """Raise :class:`ChannelCountError` unless every signal, one per inlet, is
        ``[nodes, c, samples]`` with ``c`` one of its inlet's declared counts."""
        who = type(self).__name__
        for (inlet, allowed), x in zip(describe(self).inlet_channels.items(), signals):
            if allowed is None:
                continue
            require_channels(x, allowed, who, inlet)

    def default_parameters(
        self,
        nodes: int = 1,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Every parameter at its documented default, as ``[nodes, *shape]`` tensors."""
        return {
            name: torch.full((nodes, *bounds.shape), bounds.default, dtype=dtype, device=device)
            for name, bounds in self.ranges.items()
        }

    def limit(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """``value`` of parameter ``name`` bent into its guard band (see :func:`soft_limit`).

        Raises:
            grafx_core.ParameterError: ``value`` holds NaN or Inf (the soft
                limit of an infinity is undefined); the message names the
                processor, the parameter and the node row.
        """
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        remembered = _LIMITS.get(self, name, value)
        if remembered is not None:
            return remembered
        limited = self._limit(name, value)
        _LIMITS.put(self, name, value, limited)
        return limited

    def _limit(self, name: str, value: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(value.detach())
        if not bool(finite.all()):
            bad = (~finite).nonzero()[0].tolist()
            raise ParameterError(
                f"{type(self).__name__}: parameter {name!r} is {float(value.detach()[tuple(bad)])} at node row "
                f"{bad[0] if bad else 0}; expected a finite value (documented range "
                f"[{self.ranges[name].low:g}, {self.ranges[name].high:g}])"
            )
        bounds = self.ranges[name]
        if value.dim() == 3 and _inside(value.detach(), bounds):
            # A curve inside its range: the soft limit is the identity there (value and gradient), and
            # its sigmoids over every sample cost more than the processor's own arithmetic.
            return value
        return soft_limit(value, bounds)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate:g}"


def _control(name: str, bounds: Range, default: tuple[float, ...]) -> Control:
    try:
        return Control(shape=bounds.shape, low=bounds.low, high=bounds.high, unit=unit_of(name), scale=bounds.scale,
                       default=default, time_varying=bounds.time_varying)
    except ValueError:
        # A default beyond the range (a long multitap delay's last taps): the default is what a node
        # starts from, the range only advice, as the legacy description reads it.
        return Control(shape=bounds.shape, unit=unit_of(name), default=default, time_varying=bounds.time_varying)


def _inside(value: torch.Tensor, bounds: Range) -> bool:
    low, high = value.aminmax()
    return bool((low >= bounds.low) & (high <= bounds.high))


def default_parameters(
    processor: Any,
    nodes: int = 1,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Default parameters of any processor: its own ``default_parameters`` when
    it has one, zeros of ``parameter_size()`` otherwise (nested dicts kept)."""
    method = getattr(processor, "default_parameters", None)
    if method is not None:
        return method(nodes, dtype=dtype, device=device)

    def zeros(size: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, shape in size.items():
            if isinstance(shape, Mapping):
                out[name] = zeros(shape)
            else:
                shape = (shape,) if isinstance(shape, int) else tuple(shape)
                out[name] = torch.zeros((nodes, *shape), dtype=dtype, device=device)
        return out

    return zeros(processor.parameter_size())


def per_node(value: Number, like: torch.Tensor, trailing: int = 2) -> torch.Tensor:
    """``value`` as a tensor ``[nodes or 1, 1, ..., 1]`` that broadcasts against ``like``.

    A moving scalar control, ``[nodes, 1, samples]`` (a curve the engine
    expanded), becomes ``[nodes, 1, ..., 1, samples]``: its last axis lines up
    with ``like``'s samples.

    Args:
        value: a float, a 0-d tensor, a tensor ``[nodes]`` or ``[nodes, 1]``,
            or a curve ``[nodes, 1, samples]``.
        like: tensor whose dtype and device the result takes.
        trailing: number of singleton dimensions after the node dimension.
    """
    if isinstance(value, torch.Tensor):  # the same tensor every block of a stream: the same result
        return derived("per_node", lambda v: _per_node(v, like, trailing), value,
                       key=(like.dtype, like.device, trailing))
    return _per_node(value, like, trailing)


def _per_node(value: Number, like: torch.Tensor, trailing: int) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.dim() == 3:
        return tensor.reshape(tensor.shape[0], *([1] * (trailing - 1)), tensor.shape[-1])
    return tensor.reshape(-1, *([1] * trailing))


def require_count(who: str, name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or a ``ValueError`` naming ``who`` and ``name``.

    A constructor option such as ``n_peaks`` must be a whole number: ``2.5`` or
    ``True`` is refused rather than truncated, and a huge one rather than allocated.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{who}: {name} must be an int in [{low}, {high}], got {value!r}")
    return value


def require_channels(x: torch.Tensor, allowed: tuple[int, ...], who: str, inlet: str = "main") -> None:
    """Raise :class:`ChannelCountError` unless ``x`` is ``[nodes, c, samples]`` with ``c`` in ``allowed``."""
    if x.dim() != 3 or x.shape[1] not in allowed:
        expected = " or ".join(str(c) for c in allowed)
        raise ChannelCountError(
            f"{who}: inlet {inlet!r} expects a [nodes, channels, samples] signal with "
            f"{expected} channel(s), got shape {tuple(x.shape)}"
        )
