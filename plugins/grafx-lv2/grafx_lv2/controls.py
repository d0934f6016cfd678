"""From a plug-in's input control ports to black-box parameter specs and a full control vector.

Each input control port is either exposed as a node parameter (a
:class:`~grafx_core.blackbox.ParameterSpec` named by the port's symbol) or held
at a value: its default, a value the user fixed, or what its designation
requires (``lv2:enabled`` is held at 1, the plug-in running; ``lv2:freeWheeling``
at 1, rendering offline). Every item writes the whole vector, held and exposed
values alike.

Mapping of a port's metadata:

* ``lv2:sampleRate`` ranges are multiplied by the sample rate;
* ``lv2:toggled`` ports take their minimum and maximum, ``lv2:enumeration`` ports
  the values of their scale points, ``lv2:integer`` ports every integer of their
  range: all discrete, never differentiable, exactly those values reach the
  plug-in (the default snapped to the nearest one);
* ``pprops:logarithmic`` ports get a log scale (a shifted one where the range
  starts at 0, see :mod:`grafx_core.blackbox.parameters`), others a linear one;
* a port without a finite range, or whose minimum is not below its maximum, is
  held at its default (and listed in :attr:`Controls.unmapped`);
* a default outside the range is clamped into it; a missing one is the minimum.

A parameter is named by its port's symbol, with ``_`` appended for ``self``
(which torch's module call takes) and ``x`` (DPF glBars has a port ``x``,
named ``x_`` since the first release, so that saved parameter files stay
valid); options (``fixed``, ``exclude``, ...) and
:func:`~grafx_lv2.processor.port_values` use symbols.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from grafx_core.blackbox import ParameterSpec

from .errors import LV2PortError
from .world import LV2, Port

__all__ = ["Controls", "map_controls", "port_range", "parameter_name"]

_TAKEN = frozenset({"x", "self"})

_HELD_DESIGNATIONS = {LV2 + "enabled": "maximum", LV2 + "freeWheeling": "maximum"}


@dataclass(frozen=True)
class Controls:
    """The input controls of one plug-in as a black box sees them.

    Attributes:
        specs: the exposed controls, one spec per port, named by symbol.
        indices: the port index of each spec.
        held: port index → the value every item writes for a control that is not exposed.
        unmapped: symbols of the ports held at their default because their range is unusable.
    """

    specs: tuple[ParameterSpec, ...]
    indices: tuple[int, ...]
    held: Mapping[int, float] = field(default_factory=dict)
    unmapped: tuple[str, ...] = ()

    def vector(self, size: int, natural: Mapping[str, float]) -> np.ndarray:
        """The full control vector ``[size]`` float32 for the exposed controls' ``natural`` values."""
        values = np.zeros(size, dtype=np.float32)
        for index, value in self.held.items():
            values[index] = value
        for spec, index in zip(self.specs, self.indices):
            values[index] = natural[spec.name]
        return values


def parameter_name(symbol: str) -> str:
    """The parameter name of a port symbol: the symbol, or ``symbol_`` where it would clash (see the module)."""
    return f"{symbol}_" if symbol in _TAKEN else symbol


def port_range(port: Port, sample_rate: float) -> tuple[float, float, float, tuple[float, ...] | None]:
    """``(minimum, maximum, default, values)`` of an input control port (``values``: discrete ones or ``None``)."""
    lo, hi, default = port.minimum, port.maximum, port.default
    if "sample_rate" in port.properties:
        lo, hi, default = lo * sample_rate, hi * sample_rate, default * sample_rate
    if not math.isfinite(default):
        default = lo if math.isfinite(lo) else 0.0
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return lo, hi, default, None
    default = min(max(default, lo), hi)
    values: tuple[float, ...] | None = None
    if "toggled" in port.properties:
        values = (lo, hi)
    elif "enumeration" in port.properties and port.scale_points:
        values = tuple(sorted({v for v, _ in port.scale_points if lo <= v <= hi}))
    elif "integer" in port.properties or "enumeration" in port.properties:
        values = tuple(float(v) for v in range(math.ceil(lo), math.floor(hi) + 1))
    if values is not None:
        if len(values) < 2:
            return lo, hi, default, None
        default = min(values, key=lambda v: abs(v - default))
        lo, hi = values[0], values[-1]
    return lo, hi, default, values


def map_controls(where: str, ports: Sequence[Port], sample_rate: float, *,
                 fixed: Mapping[str, float] | None = None, exclude: Sequence[str] = (),
                 include: Sequence[str] | None = None,
                 differentiable: Mapping[str, bool] | None = None) -> Controls:
    """The exposed and held input controls of a plug-in.

    Args:
        where: the plug-in's name and URI, for error messages.
        ports: all its ports.
        sample_rate: in Hz (for ``lv2:sampleRate`` ranges).
        fixed: symbol → a value held instead of exposed (natural units, within the port's range).
        exclude: symbols held at their defaults.
        include: when given, only these symbols are exposed; the others are held at their defaults.
        differentiable: symbol → whether a continuous control gets gradient estimates.

    Raises:
        LV2PortError: an unknown symbol in any option, a fixed value outside its
            port's range or not one of a discrete port's values, an included port
            that cannot be exposed, or ``differentiable=True`` for a discrete port.
    """
    fixed, differentiable = dict(fixed or {}), dict(differentiable or {})
    controls = [p for p in ports if p.kind == "control" and p.direction == "input"]
    symbols = [p.symbol for p in controls]
    for option, names in (("fixed", fixed), ("exclude", exclude), ("include", include or ()),
                          ("differentiable", differentiable)):
        unknown = sorted(set(names) - set(symbols))
        if unknown:
            raise LV2PortError(f"{where}: {option} names {unknown}, which are not input control ports; "
                               f"its input controls are {symbols}")
    specs, indices, held, unmapped = [], [], {}, []
    for port in controls:
        lo, hi, default, values = port_range(port, sample_rate)
        if port.designation in _HELD_DESIGNATIONS:
            held[port.index] = hi if math.isfinite(hi) else 1.0
            continue
        usable = math.isfinite(lo) and math.isfinite(hi) and lo < hi
        if port.symbol in fixed:
            held[port.index] = _check_fixed(where, port, float(fixed[port.symbol]), lo, hi, values, usable)
            continue
        exposed = usable and port.symbol not in exclude and (include is None or port.symbol in include)
        if include is not None and port.symbol in include and not usable:
            raise LV2PortError(f"{where}: port {port.symbol!r} has no usable range ({port.minimum:g} to "
                               f"{port.maximum:g}), so it cannot be a parameter")
        if not exposed:
            held[port.index] = default
            if not usable:
                unmapped.append(port.symbol)
            continue
        flag = differentiable.get(port.symbol)
        if values is not None and flag:
            raise LV2PortError(f"{where}: port {port.symbol!r} is discrete ({_describe(values)}), so it cannot be "
                               "differentiable")
        log = "logarithmic" in port.properties and values is None and hi > 0
        # A host may change any continuous control between two runs, as a DAW automates it.
        specs.append(ParameterSpec(parameter_name(port.symbol), lo, hi, default, "log" if log else "linear",
                                   differentiable=flag, values=values, time_varying=values is None, unit=port.unit))
        indices.append(port.index)
    return Controls(tuple(specs), tuple(indices), held, tuple(unmapped))


def _check_fixed(where: str, port: Port, value: float, lo: float, hi: float, values: tuple[float, ...] | None,
                 usable: bool) -> float:
    if not math.isfinite(value):
        raise LV2PortError(f"{where}: fixed {port.symbol}={value} must be finite")
    if values is not None and value not in values:
        raise LV2PortError(f"{where}: fixed {port.symbol}={value:g} is not one of its values {_describe(values)}")
    if usable and not lo <= value <= hi:
        raise LV2PortError(f"{where}: fixed {port.symbol}={value:g} is outside its range [{lo:g}, {hi:g}]")
    return value


def _describe(values: tuple[float, ...]) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:8])
    return "{" + shown + (", ..." if len(values) > 8 else "") + "}"
