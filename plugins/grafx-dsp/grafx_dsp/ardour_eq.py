"""A twin of Ardour's a-eq (``urn:ardour:a-eq``): low shelf, four bells, high shelf, master gain.

Written from the plug-in's published algorithm (Ardour 7, ``a-eq.c``): each
band is a linear trapezoidal state-variable filter (Cytomic's design) with
``g = tan(pi f0 / fs)``; the shelves have ``q = 1/sqrt(2)``, a bell's ``q``
follows from its bandwidth in octaves, ``q = 2^(bw/2) / (2^bw - 1)``. The
bands run in series, then the master gain. A state-variable filter with
fixed settings is a biquad (the bilinear transform of the analog prototype
that ``g`` prewarps), so the twin filters with those biquads.

The plug-in glides every setting from zero towards its control, a step of
``tau = 1 - exp(-2 pi 64 * 25 / fs)`` of the remaining distance per 64
samples, and stops as soon as it is within 0.1 Hz (frequencies), 0.05 dB
(band gains) or 0.001 octave (bandwidths): the settled filter is slightly
off its controls, by up to 0.05 dB, and the twin reproduces that offset.
The master gain snaps to its control once within 0.1 dB. The twin is the
settled plug-in, which is what a DAW that has been running plays (Ardour
runs its plug-ins on silence while stopped) and what grafx-lv2 renders
after its pre-roll.
"""

from __future__ import annotations

import math

import torch

from ._base import DSPProcessor, per_node
from ._ranges import Range
from ._stream import StatefulConvolution
from .biquad import sos_filter, sos_kernel

__all__ = ["AEq", "a_eq_coefficients", "settled_value", "A_EQ_PORTS"]

_SHELF_Q = 0.7071068
_GLIDE_BLOCK = 64
_GLIDE_HZ = 25.0
_TOLERANCE = {"hz": 0.1, "db": 0.05, "bw": 0.001}

_GAIN = Range(low=-19.9, high=19.9, default=0.0, floor=-20.0, ceiling=20.0)
_BANDWIDTH = Range(low=0.11, high=3.95, default=1.0, floor=0.1, ceiling=4.0, scale="log")
_PEAK_DEFAULTS_HZ = (300.0, 1000.0, 2500.0, 6000.0)

A_EQ_PORTS: dict[str, tuple[int, ...]] = {
    "low_shelf_hz": (0,), "low_shelf_db": (1,),
    "peak_hz": (2, 5, 8, 11), "peak_db": (3, 6, 9, 12), "peak_bw": (4, 7, 10, 13),
    "high_shelf_hz": (14,), "high_shelf_db": (15,), "master_db": (16,),
}
"""Each twin parameter's a-eq control port indices, one per element (the
band toggles, ports 17-22, and enable, 23, stay at their default 1)."""


def _frequency(sample_rate: float, default: float) -> Range:
    ceiling = min(20000.0, 0.49 * sample_rate)
    high = min(19900.0, 0.45 * sample_rate)
    return Range(low=20.5, high=high, default=min(default, high), floor=20.0, ceiling=ceiling, scale="log")


def _glide_ratio(sample_rate: float) -> float:
    tau = 1.0 - math.exp(-2.0 * math.pi * _GLIDE_BLOCK * _GLIDE_HZ / sample_rate)
    return 1.0 - tau


def settled_value(control: torch.Tensor, tolerance: float, sample_rate: float) -> torch.Tensor:
    """Where a-eq's glide from 0 towards ``control`` stops: ``control * (1 - r^n)``
    with ``r = 1 - tau`` and ``n`` the first block within ``tolerance``.

    A control within ``tolerance`` of 0 never starts the glide: the plug-in
    plays 0 there (a band gain of +-0.04 dB is no band at all). The twin
    plays 0 too but passes the gradient through as if the value were the
    control: the true gradient, 0, would pin a fit at its 0 dB start.

    Args:
        control: the control values, any shape.
        tolerance: the glide's stopping distance, in the control's unit.
        sample_rate: in Hz (sets ``tau``).

    Returns:
        The settled values, ``control``'s shape; the gradient is ``1 - r^n``
        (``n`` is piecewise constant), 1 inside the dead zone.
    """
    ratio = _glide_ratio(sample_rate)
    with torch.no_grad():
        magnitude = control.abs().to(torch.float64)
        dead = magnitude < tolerance
        steps = torch.floor(torch.log(tolerance / magnitude.clamp(min=tolerance)) / math.log(ratio)) + 1
        slope = torch.where(dead, torch.ones_like(steps), 1 - torch.pow(ratio, steps)).to(control.dtype)
    return control * slope - torch.where(dead, control, torch.zeros_like(control)).detach()


def a_eq_coefficients(frequency_hz: torch.Tensor, gain_db: torch.Tensor, q: torch.Tensor, kinds: tuple[str, ...],
                      sample_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Biquads equal to a-eq's state-variable bands.

    Args:
        frequency_hz, gain_db, q: ``[nodes, bands]`` settled settings.
        kinds: one of ``"low_shelf"``, ``"peak"``, ``"high_shelf"`` per band.
        sample_rate: in Hz.

    Returns:
        ``(b, a)``, each ``[nodes, bands, 3]`` float64, ``a[..., 0] == 1``.
    """
    f0, gdb, q = (t.to(torch.float64) for t in (frequency_hz, gain_db, q))
    g = torch.tan(math.pi * f0 / sample_rate)
    amp = torch.pow(10.0, gdb / 40.0)
    rows = []
    for band, kind in enumerate(kinds):
        gb, ab, qb = g[:, band], amp[:, band], q[:, band]
        if kind == "peak":
            k = 1.0 / (qb * ab)
            m = (torch.ones_like(gb), k * (ab * ab - 1.0), torch.zeros_like(gb))
        elif kind == "low_shelf":
            k = 1.0 / qb
            m = (torch.ones_like(gb), k * (ab - 1.0), ab * ab - 1.0)
        else:
            k = 1.0 / qb
            m = (ab * ab, k * (1.0 - ab) * ab, 1.0 - ab * ab)
        # Bilinear transforms of the prototype's outputs: input, band-pass v1 and low-pass v2.
        den = torch.stack([1 + gb * (gb + k), 2 * (gb * gb - 1), 1 - gb * k + gb * gb], dim=-1)
        band_pass = torch.stack([gb, torch.zeros_like(gb), -gb], dim=-1)
        low_pass = torch.stack([gb * gb, 2 * gb * gb, gb * gb], dim=-1)
        num = m[0].unsqueeze(-1) * den + m[1].unsqueeze(-1) * band_pass + m[2].unsqueeze(-1) * low_pass
        rows.append((num / den[..., :1], den / den[..., :1]))
    return torch.stack([r[0] for r in rows], dim=1), torch.stack([r[1] for r in rows], dim=1)


class AEq(StatefulConvolution, DSPProcessor):
    """Ardour's a-eq as settled after its glide (see the module docstring).

    Parameters (units in the names):
        low_shelf_hz ``[nodes, 1]``: [20.5, 19900] Hz (plug-in 20-20000), default 160.
        low_shelf_db ``[nodes, 1]``: [-19.9, 19.9] dB (plug-in +-20), default 0.
        peak_hz ``[nodes, 4]``: as above, defaults 300, 1000, 2500, 6000.
        peak_db ``[nodes, 4]``: as the shelf gains, default 0.
        peak_bw ``[nodes, 4]``: bandwidth in octaves, [0.11, 3.95] (plug-in 0.1-4), default 1.
        high_shelf_hz ``[nodes, 1]``: default 9000.
        high_shelf_db ``[nodes, 1]``: default 0.
        master_db ``[nodes, 1]``: output gain, default 0.

    The guard bands end at the plug-in's limits, so that every value the
    twin uses is one the plug-in accepts. :data:`A_EQ_PORTS` maps each
    parameter to the plug-in's ports. Signals: any channel count (a DAW
    runs one instance per channel, with the same settings). Streams block by
    block (the filters' overhang carried as state).
    """

    def __init__(self, sample_rate: float = 44100.0) -> None:
        super().__init__(sample_rate)
        self.ranges = {
            "low_shelf_hz": _frequency(sample_rate, 160.0),
            "low_shelf_db": _GAIN,
            "peak_hz": _frequency(sample_rate, 1000.0).replace(shape=(4,)),
            "peak_db": _GAIN.replace(shape=(4,)),
            "peak_bw": _BANDWIDTH.replace(shape=(4,)),
            "high_shelf_hz": _frequency(sample_rate, 9000.0),
            "high_shelf_db": _GAIN,
            "master_db": _GAIN,
        }

    def default_parameters(self, nodes: int = 1, *, dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """The plug-in's defaults (the four bells at 300, 1000, 2500 and 6000 Hz)."""
        params = super().default_parameters(nodes, dtype=dtype, device=device)
        peaks = torch.tensor(_PEAK_DEFAULTS_HZ, dtype=params["peak_hz"].dtype, device=params["peak_hz"].device)
        params["peak_hz"] = torch.minimum(peaks, torch.tensor(self.ranges["peak_hz"].high)).expand(nodes, 4).clone()
        return params

    def forward(self, x: torch.Tensor, low_shelf_hz: torch.Tensor, low_shelf_db: torch.Tensor,
                peak_hz: torch.Tensor, peak_db: torch.Tensor, peak_bw: torch.Tensor, high_shelf_hz: torch.Tensor,
                high_shelf_db: torch.Tensor, master_db: torch.Tensor) -> torch.Tensor:
        b, a, master = self._design(x, low_shelf_hz, low_shelf_db, peak_hz, peak_db, peak_bw, high_shelf_hz,
                                    high_shelf_db, master_db)
        return sos_filter(x, b, a) * torch.pow(10.0, per_node(master, x) / 20.0).to(x.dtype)

    def stream_kernel(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        """The bands' impulse response times the master gain, ``[nodes, 1, taps]``, for block-wise renders."""
        b, a, master = self._design(x, **params)
        return sos_kernel(b, a, x) * torch.pow(10.0, per_node(master, x) / 20.0).to(x.dtype)

    def _design(self, x: torch.Tensor, low_shelf_hz: torch.Tensor, low_shelf_db: torch.Tensor,
                peak_hz: torch.Tensor, peak_db: torch.Tensor, peak_bw: torch.Tensor, high_shelf_hz: torch.Tensor,
                high_shelf_db: torch.Tensor, master_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The settled bands' biquads ``(b, a)`` and the master gain in dB."""
        nodes = x.shape[0]

        def settled(name: str, value: torch.Tensor, unit: str) -> torch.Tensor:
            limited = self.limit(name, value).reshape(value.shape[0], -1).expand(nodes, -1)
            return settled_value(limited, _TOLERANCE[unit], self.sample_rate)

        freqs = torch.cat([settled("low_shelf_hz", low_shelf_hz, "hz"), settled("peak_hz", peak_hz, "hz"),
                           settled("high_shelf_hz", high_shelf_hz, "hz")], dim=1)
        gains = torch.cat([settled("low_shelf_db", low_shelf_db, "db"), settled("peak_db", peak_db, "db"),
                           settled("high_shelf_db", high_shelf_db, "db")], dim=1)
        bw = settled("peak_bw", peak_bw, "bw").to(torch.float64)
        peak_q = torch.pow(2.0, 0.5 * bw) / (torch.pow(2.0, bw) - 1.0)
        shelf_q = torch.full((nodes, 1), _SHELF_Q, dtype=torch.float64, device=x.device)
        q = torch.cat([shelf_q, peak_q, shelf_q], dim=1)
        b, a = a_eq_coefficients(freqs, gains, q, ("low_shelf", "peak", "peak", "peak", "peak", "high_shelf"),
                                 self.sample_rate)
        return b, a, self.limit("master_db", master_db)  # the master snaps to its control: no glide offset
