"""What a console fit writes and prints: parameters in natural units, errors per node type, plots."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .._optional import require
from ..graph import Graph
from ..description import describe
from .latent import is_black_box

__all__ = [
    "natural_parameters",
    "outside_range",
    "node_report",
    "errors_by_type",
    "format_errors",
    "plot_loss",
    "plot_spectrograms",
]


def natural_parameters(processors: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """Every parameter in its natural unit as the processor applies it, float64 on the CPU.

    Black-box controls are mapped from their raw values; a value outside a
    processor's documented range is reported as what the processor applies
    (its ``limit(name, value)``, the soft limit of grafx-dsp processors), not
    as the number the optimiser holds (see :func:`outside_range`).

    Returns:
        ``{node_type: {name: [nodes, *shape]}}``.
    """
    result = {}
    for node_type in parameters.keys():
        processor, params = processors[node_type], parameters[node_type]
        values = {k: params[k].detach() for k in params.keys()}
        if is_black_box(processor):
            values = {k: v.reshape(-1, 1) for k, v in processor.natural_parameters(**values).items()}
        else:
            values = {k: _applied(processor, k, v) for k, v in values.items()}
        result[node_type] = {k: v.to("cpu", torch.float64) for k, v in values.items()}
    return result


def _applied(processor: Any, name: str, value: torch.Tensor) -> torch.Tensor:
    limit = getattr(processor, "limit", None)
    if not callable(limit) or name not in getattr(processor, "ranges", {}) or not isinstance(value, torch.Tensor):
        return value
    with torch.no_grad():
        return limit(name, value.to(torch.float64))


def outside_range(processors: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """The parameters the optimiser holds outside a processor's documented range, as held
    (``{node_type: {name: [nodes, *shape] as lists}}``); :func:`natural_parameters` reports what is applied."""
    result: dict[str, dict[str, list[Any]]] = {}
    for node_type in parameters.keys():
        processor, params = processors[node_type], parameters[node_type]
        if is_black_box(processor):
            continue
        for name in params.keys():
            held = params[name].detach().to("cpu", torch.float64) if isinstance(params[name], torch.Tensor) else None
            if held is None:
                continue
            applied = _applied(processor, name, held)
            if not torch.allclose(applied, held, rtol=1e-6, atol=1e-9):
                result.setdefault(node_type, {})[name] = held.tolist()
    return result


def _log_scaled(processor: Any, name: str) -> bool:
    control = describe(processor).controls.get((name,))
    return control is not None and control.scale == "log"


def _trained(processor: Any, name: str) -> bool:
    control = describe(processor).controls.get((name,))
    return control is None or control.differentiable


def _unit(processor: Any, name: str) -> str:
    control = describe(processor).controls.get((name,))
    return "" if control is None else control.unit


def node_report(graph: Graph, processors: Mapping[str, Any],
                values: Mapping[str, Mapping[str, Mapping[str, torch.Tensor]]]) -> list[dict[str, Any]]:
    """One JSON-ready record per processor node: name, type, gradient kind, and per parameter
    each labelled value set (``{"hidden": ..., "initial": ..., "fitted": ...}``) as lists.

    Args:
        graph: the graph.
        processors: by node type.
        values: label -> :func:`natural_parameters` output.
    """
    nodes = []
    for node in graph.nodes:
        if node.type not in processors:
            continue
        row = graph.nodes_of_type(node.type).index(node.id)
        first = next(iter(values.values()))[node.type]
        nodes.append({
            "id": node.id, "name": node.name, "type": node.type,
            "gradient": describe(processors[node.type]).gradient_kind,
            "parameters": {name: {label: v[node.type][name][row].tolist() for label, v in values.items()}
                           for name in first},
        })
    return nodes


def errors_by_type(processors: Mapping[str, Any], hidden: Mapping[str, Mapping[str, torch.Tensor]],
                   estimate: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Mean parameter error per node type and parameter, against the hidden values.

    Log-scaled parameters (Hz, ms, Q, ratios) get the mean relative error in
    percent, the others the mean absolute error in their unit. Controls a
    fit cannot move (non-differentiable black-box controls) are left out.

    Returns:
        ``{node_type: {name: {"error": float, "unit": str}}}``.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for node_type, params in hidden.items():
        processor = processors[node_type]
        for name, truth in params.items():
            if not _trained(processor, name) or truth.numel() == 0:
                continue
            guess = estimate[node_type][name]
            if _log_scaled(processor, name):
                error, unit = float(((guess - truth).abs() / truth.abs()).mean() * 100), "%"
            else:
                error = float((guess - truth).abs().mean())
                unit = "dB" if _unit(processor, name) == "dB" else ""
            result.setdefault(node_type, {})[name] = {"error": error, "unit": unit}
    return result


def format_errors(initial: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  fitted: Mapping[str, Mapping[str, Mapping[str, Any]]], counts: Mapping[str, int]) -> list[str]:
    """Lines such as ``dsp:stereo_gain (8 nodes)  gain_db 3.1 -> 0.4 dB  pan 0.35 -> 0.08``."""
    lines = []
    width = max((len(t) for t in fitted), default=0)
    for node_type, params in fitted.items():
        parts = [f"{name} {initial[node_type][name]['error']:.3g} -> {e['error']:.3g}{(' ' + e['unit']) if e['unit'] else ''}"
                 for name, e in params.items()]
        lines.append(f"  {node_type:<{width}} ({counts[node_type]} node{'s' if counts[node_type] > 1 else ''})  "
                     + ", ".join(parts))
    return lines


def plot_loss(path: str | os.PathLike[str], losses: Sequence[float], seconds_per_step: float) -> None:
    """A loss curve (log scale) saved to ``path``."""
    require("matplotlib", "plot", "plotting")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=120)
    ax = figure.add_subplot()
    ax.semilogy(range(len(losses)), losses, color="#1f77b4")
    ax.set_xlabel("step")
    ax.set_ylabel("multi-resolution spectral loss")
    ax.set_title(f"fit: loss x{losses[-1] / losses[0]:.3f} in {len(losses) - 1} steps ({seconds_per_step:.2f} s/step)",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.fspath(path))


def plot_spectrograms(path: str | os.PathLike[str], mixes: Mapping[str, torch.Tensor], sample_rate: int) -> None:
    """Spectrograms of each mix (mid channel, dB, log-frequency axis) side by side; below the
    first (the reference) the long-term average spectrum of every mix, below each other its
    difference from the reference; saved to ``path``.

    Args:
        path: the picture.
        mixes: label -> ``[channels, samples]``; the first is the reference.
        sample_rate: in Hz.
    """
    require("matplotlib", "plot", "plotting")
    from matplotlib.figure import Figure

    n_fft = 2048
    window = torch.hann_window(n_fft, dtype=torch.float64)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate)[1:].numpy()  # no 0 Hz row on a log axis

    def power(x: torch.Tensor) -> torch.Tensor:
        mid = x.detach().to("cpu", torch.float64).mean(dim=0)
        return torch.stft(mid, n_fft, hop_length=n_fft // 4, window=window, return_complex=True).abs()[1:] ** 2

    powers = {label: power(x) for label, x in mixes.items()}
    specs = {label: 10 * torch.log10(p + 1e-12) for label, p in powers.items()}
    reference = next(iter(specs.values()))
    top = float(reference.max())
    frames = reference.shape[-1]
    seconds = (torch.arange(frames + 1, dtype=torch.float64) - 0.5) * (n_fft // 4) / sample_rate
    edges = ((torch.arange(len(freqs) + 1, dtype=torch.float64) + 0.5) * sample_rate / n_fft).numpy()

    def log_axis(ax, label: str) -> None:
        ax.set_yscale("log")
        ax.set_ylim(max(20.0, float(freqs[0])), sample_rate / 2)
        ax.set_ylabel("Hz")
        ax.set_title(label, fontsize=9)

    figure = Figure(figsize=(4 * len(specs), 6), dpi=110, layout="constrained")
    axes = figure.subplots(2, len(specs), squeeze=False)
    image = diff = None
    for k, (label, spec) in enumerate(specs.items()):
        image = axes[0][k].pcolormesh(seconds.numpy(), edges, spec.numpy(), cmap="magma", vmin=top - 80,
                                      vmax=top, rasterized=True)
        log_axis(axes[0][k], label)
        if k:
            diff = axes[1][k].pcolormesh(seconds.numpy(), edges, (spec - reference).numpy(), cmap="coolwarm",
                                         vmin=-20, vmax=20, rasterized=True)
            log_axis(axes[1][k], f"{label} - {next(iter(specs))} (dB)")
            axes[1][k].set_xlabel("seconds")
    average = axes[1][0]
    for label, p in powers.items():
        average.semilogx(freqs, 10 * torch.log10(p.mean(dim=-1) + 1e-12).numpy(), label=label, linewidth=1)
    average.set_xlim(max(20.0, float(freqs[0])), sample_rate / 2)
    average.set_xlabel("Hz")
    average.set_ylabel("dB")
    average.set_title("average spectrum", fontsize=9)
    average.legend(fontsize=7)
    average.grid(True, which="both", alpha=0.3)
    figure.colorbar(image, ax=axes[0].tolist(), label="dB", shrink=0.8)
    if diff is not None:
        figure.colorbar(diff, ax=axes[1][1:].tolist(), label="dB", shrink=0.8)
    figure.savefig(os.fspath(path))
