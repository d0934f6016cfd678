"""Fitting automation: smooth curves for chosen controls (``grafx-core fit --automate fader``).

A fit that automates a control gives every node of that control's type a
curve (:mod:`grafx_core.curves`) instead of one value, starting from the
constant it had, and adds a smoothness prior to the loss: ``smoothness``
times the mean squared second difference of every curve, in the control's
latent units (6 dB for decibels, see :mod:`grafx_core.fitting.latent`), so
that a curve bends only where the mix needs it to. The report then holds
each automated node's curves (hidden, initial, fitted) and, when the hidden
one moves, the correlation between the fitted and the hidden curve.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._optional import require
from ..curves import curve_frames, curve_to_samples
from ..description import describe
from ..errors import GrafxError
from ..graph import Graph
from .latent import LatentParameters, is_black_box

__all__ = ["AUTOMATION_GROUPS", "Automation", "select_controls", "to_curves", "SmoothCurves", "automation_report",
           "automation_lines", "plot_curves", "DEFAULT_FIT_HOP", "DEFAULT_SMOOTHNESS"]

AUTOMATION_GROUPS: dict[str, tuple[str, str]] = {
    "fader": ("_fader", "gain_db"),
    "pan": ("_fader", "pan"),
    "sends": ("_send", "gain_db"),
    "thresholds": ("_compressor", "threshold_db"),
    "makeup": ("_compressor", "makeup_db"),
    "width": ("_width", "width"),
}
"""``--automate`` words: the control named, on the nodes whose names end with the suffix (a
built console's ``kick_fader``, ``kick_send``, ``kick_compressor``, ``music_bus_width``)."""

DEFAULT_FIT_HOP = 4096
"""Samples per control frame of fitted curves (93 ms at 44.1 kHz): rides, not tremolo."""

DEFAULT_SMOOTHNESS = 1.0
"""Weight of the smoothness prior (per mean squared second difference in latent units)."""


@dataclass(frozen=True)
class Automation:
    """Which controls a fit automates, at which control rate, and how smooth.

    Attributes:
        controls: ``(node_type, control path)`` pairs; every node of the type gets a curve.
        hop: samples per control frame.
        smoothness: weight of the smoothness prior.
    """

    controls: tuple[tuple[str, tuple[str, ...]], ...]
    hop: int = DEFAULT_FIT_HOP
    smoothness: float = DEFAULT_SMOOTHNESS


def select_controls(graph: Graph, processors: Mapping[str, Any], words: Sequence[str]) -> tuple[
        tuple[str, tuple[str, ...]], ...]:
    """The ``(node_type, path)`` pairs that ``--automate`` words name.

    A word is a key of :data:`AUTOMATION_GROUPS`, or ``NODE_TYPE.CONTROL``
    (``dsp:stereo_gain.pan``) for any node type of the graph.

    Raises:
        GrafxError: a word names nothing in the graph, a control its
            processor does not declare time-varying, or a black box's control.
    """
    chosen: dict[tuple[str, tuple[str, ...]], None] = {}
    for word in words:
        if word in AUTOMATION_GROUPS:
            suffix, control = AUTOMATION_GROUPS[word]
            types = list(dict.fromkeys(n.type for n in graph.nodes
                                       if n.type in processors and (n.name or "").endswith(suffix)))
            if not types:
                raise GrafxError(f"--automate {word}: the graph has no nodes named *{suffix} to automate "
                                 f"(the words are {sorted(AUTOMATION_GROUPS)}, or NODE_TYPE.CONTROL)")
            pairs = [(t, (control,)) for t in types]
        else:
            node_type = next((t for t in sorted(processors, key=len, reverse=True)
                              if word.startswith(t + ".") and t in graph.processor_types()), None)
            if node_type is None:
                raise GrafxError(f"--automate {word!r}: not one of {sorted(AUTOMATION_GROUPS)} and no "
                                 f"NODE_TYPE.CONTROL of this graph (its types are {graph.processor_types()})")
            pairs = [(node_type, tuple(word[len(node_type) + 1:].split(".")))]
        for node_type, path in pairs:
            if is_black_box(processors[node_type]):
                raise GrafxError(f"--automate {word}: {node_type} is a black box; a fit automates analytic "
                                 "controls only for now (render and gradients take black-box curves, the fit's "
                                 "report does not yet)")
            moving = describe(processors[node_type]).time_varying()
            if path not in moving:
                raise GrafxError(f"--automate {word}: {node_type} ({type(processors[node_type]).__name__}) does "
                                 f"not let {'.'.join(path)!r} move; its moving controls are "
                                 f"{['.'.join(p) for p in moving]}")
            chosen[(node_type, path)] = None
    return tuple(chosen)


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _copy(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree
    return {k: _copy(tree[k]) for k in tree.keys()}


def _is_curve(value: torch.Tensor, processor: Any, path: tuple[str, ...]) -> bool:
    return value.dim() == len(describe(processor).control(path).shape) + 2


def to_curves(parameters: Mapping[str, Any], processors: Mapping[str, Any],
              controls: Sequence[tuple[str, tuple[str, ...]]], samples: int, hop: int) -> dict[str, Any]:
    """A copy of ``parameters`` whose chosen controls are curves of ``curve_frames(samples, hop)`` frames:
    a plain value becomes a constant curve, a curve at another rate is resampled."""
    frames = curve_frames(samples, hop)
    result = {t: _copy(p) for t, p in parameters.items()}
    for node_type, path in controls:
        value = _get(result[node_type], path).detach()
        if not _is_curve(value, processors[node_type], path):
            value = value.unsqueeze(-1).expand(*value.shape, frames).clone()
        elif value.shape[-1] != frames:
            value = resample_curve(value, samples, _hop_of(value.shape[-1], samples), hop)
        _set(result[node_type], path, value)
    return result


def _hop_of(frames: int, samples: int) -> int:
    """The hop a curve of ``frames`` frames over ``samples`` samples was made at (the smallest that fits)."""
    for hop in range(1, samples + 1):
        if curve_frames(samples, hop) == frames:
            return hop
    raise GrafxError(f"a curve of {frames} frames fits no control hop over {samples} samples")


def resample_curve(curve: torch.Tensor, samples: int, hop: int, new_hop: int) -> torch.Tensor:
    """A curve at ``hop`` re-read at ``new_hop``: its per-sample values at the new frames' samples
    (a frame past the end takes the last sample's value)."""
    values = curve_to_samples(curve, samples, hop)
    positions = torch.arange(curve_frames(samples, new_hop), device=curve.device) * new_hop
    return values[..., positions.clamp(max=samples - 1)]


class SmoothCurves:
    """A loss plus the smoothness prior on the automated curves (see the module's description).

    Args:
        loss: the fit's loss, ``mix -> scalar``.
        latent: the fit's parameters (their curves are read at each call).
        controls: the automated ``(node_type, path)`` pairs.
        weight: the prior's weight.
    """

    def __init__(self, loss: Callable[[torch.Tensor], torch.Tensor], latent: LatentParameters,
                 controls: Sequence[tuple[str, tuple[str, ...]]], weight: float) -> None:
        self.loss, self.latent, self.controls, self.weight = loss, latent, list(controls), float(weight)

    def prior(self) -> torch.Tensor:
        """The weighted mean squared second difference of every automated curve, in latent units."""
        names = dict(zip(self.latent._types, self.latent.latent))
        terms = []
        for node_type, path in self.controls:
            curve = names[node_type][".".join(path)] if len(path) > 1 else names[node_type][path[0]]
            if curve.shape[-1] >= 3:
                terms.append((curve[..., 2:] - 2 * curve[..., 1:-1] + curve[..., :-2]).square().mean())
        if not terms:
            return torch.zeros(())
        return self.weight * torch.stack(terms).sum()

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        return self.loss(mix) + self.prior().to(mix.device)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    norm = float(a.norm() * b.norm())
    return float((a * b).sum()) / norm if norm > 1e-12 else None


def automation_report(graph: Graph, processors: Mapping[str, Any], automation: Automation,
                      labelled: Mapping[str, Mapping[str, Any]], samples: int, sample_rate: int) -> list[dict[str, Any]]:
    """One JSON-ready record per automated node: its control, frame times and each labelled curve.

    Args:
        labelled: label -> parameters in processor units (``"hidden"``, ``"initial"``, ``"fitted"``);
            plain values and curves at other rates are brought to the fit's frames.

    Returns:
        Records ``{"node", "type", "control", "seconds", <label>: [frame values], "correlation"}``;
        ``"correlation"`` (fitted against hidden, per element) only where the hidden curve moves.
    """
    frames = {label: to_curves(params, processors, automation.controls, samples, automation.hop)
              for label, params in labelled.items()}
    times = (torch.arange(curve_frames(samples, automation.hop)) * automation.hop / sample_rate).tolist()
    records = []
    for node_type, path in automation.controls:
        for row, node in enumerate(graph.nodes_of_type(node_type)):
            record: dict[str, Any] = {"node": graph.nodes[node].name, "type": node_type, "control": ".".join(path),
                                      "hop": automation.hop, "seconds": times}
            curves = {label: _get(p[node_type], path)[row].detach().cpu().to(torch.float64).reshape(-1, len(times))
                      for label, p in frames.items()}
            for label, curve in curves.items():
                record[label] = curve.tolist()
            if "hidden" in curves and "fitted" in curves:
                record["correlation"] = [_correlation(f, h) for f, h in zip(curves["fitted"], curves["hidden"])]
                record["max_error"] = float((curves["fitted"] - curves["hidden"]).abs().max())
            records.append(record)
    return records


def automation_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Summary lines: each automated node's fitted range and, where a hidden curve moves, the correlation."""
    lines = []
    for record in records:
        fitted = record["fitted"][0]
        line = (f"  {record['node']} {record['control']}: {min(fitted):.2f} .. {max(fitted):.2f} "
                f"over {len(fitted)} frames")
        correlation = (record.get("correlation") or [None])[0]
        if correlation is not None:
            line += f", correlation with the hidden curve {correlation:.3f}"
        lines.append(line)
    return lines


def plot_curves(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]], title: str = "automation") -> None:
    """The automated controls' curves (one panel per node, first element) saved to ``path``:
    hidden dashed, initial dotted, fitted solid."""
    require("matplotlib", "plot", "plotting")
    from matplotlib.figure import Figure

    count = max(len(records), 1)
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(3.2 * columns, 2.3 * rows), dpi=110, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    styles = {"hidden": ("--", "#444444"), "initial": (":", "#999999"), "fitted": ("-", "#d62728")}
    for k, record in enumerate(records):
        ax = axes[k // columns][k % columns]
        for label, (style, colour) in styles.items():
            if label in record:
                ax.plot(record["seconds"], record[label][0], style, color=colour, label=label, linewidth=1.2)
        correlation = (record.get("correlation") or [None])[0]
        extra = f", r={correlation:.3f}" if correlation is not None else ""
        ax.set_title(f"{record['node']} {record['control']}{extra}", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    for k in range(len(records), rows * columns):
        axes[k // columns][k % columns].axis("off")
    if records:
        axes[0][0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.savefig(os.fspath(path))
