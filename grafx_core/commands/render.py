"""Render a graph saved as JSON with WAV sources; write each output as a WAV file.

Processors come from the plugin registry by the node types in the graph file
(e.g. "dsp:parametric_eq"); each factory that takes a sample_rate gets the sources' rate.
Give one --source per "in" node, in node-id order, and one -o per "out" node.
Parameters come from a parameter file (--params, as written by
grafx_core.save_parameters or the demo), else each processor's defaults.

  grafx-core render mix.graph.json --source drums.wav --source bass.wav \\
      --params fitted.params.json -o mix.wav
"""

from __future__ import annotations

import argparse
import math
import os

import torch

from ..errors import SourceShapeError
from ..graph import Graph
from ..parameter_file import load_parameters
from ..parameters import create_empty_parameters
from ..render import render
from ..schedule import SCHEDULING_METHODS
from ..wavfile import WAV_FORMATS, read_sources, write_wav
from ._processors import build_processors, read_options

__all__ = ["add_arguments", "run", "render_files"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the graph, sources, parameters, options and outputs."""
    parser.add_argument("graph", metavar="GRAPH.json", help="graph file (grafx_core.Graph.save)")
    parser.add_argument("--source", "-s", action="append", default=[], metavar="WAV", required=True,
                        help="a source WAV, once per 'in' node in node-id order")
    parser.add_argument("--output", "-o", action="append", default=[], metavar="WAV", required=True,
                        help="an output WAV, once per 'out' node in node-id order")
    parser.add_argument("--params", "-p", metavar="PARAMS.json", help="parameter file (default: processor defaults)")
    parser.add_argument("--options", metavar="OPTIONS.json",
                        help='factory options per node type, e.g. {"dsp:reverb": {"ir_seconds": 1.0}}')
    parser.add_argument("--format", choices=WAV_FORMATS, default="float32",
                        help="output sample format (default float32, lossless)")
    parser.add_argument("--pad", action="store_true", help="zero-pad shorter sources to the longest")
    parser.add_argument("--method", choices=SCHEDULING_METHODS, default="beam", help="scheduling method")


def render_files(graph_path: str | os.PathLike[str], sources: list[str], outputs: list[str],
                 params_path: str | None = None, options_path: str | None = None,
                 format: str = "float32", pad: bool = False, method: str = "beam") -> torch.Tensor:
    """Render a graph file with WAV sources and write the outputs; what ``grafx-core render`` does.

    Returns:
        The rendered outputs, ``[num_out, channels, samples]`` float32.

    Raises:
        GraphError: the graph file is invalid.
        SourceShapeError: the number of sources or outputs does not match
            the graph's ``"in"`` or ``"out"`` nodes.
        AudioFileError: a WAV cannot be read or written, or the sources
            disagree in sample rate, channels or length.
        ParameterError: the parameter file is invalid or does not fit the graph.
        UnknownNodeTypeError: a node type names no registered processor.
    """
    graph = Graph.load(graph_path)
    ins, outs = graph.nodes_of_type("in"), graph.nodes_of_type("out")
    if len(sources) != len(ins):
        raise SourceShapeError(
            f"{len(sources)} source file(s) given, but {os.fspath(graph_path)!r} has {len(ins)} 'in' node(s) "
            f"({', '.join(graph.nodes[i].label() for i in ins)}); give one --source per 'in' node in that order"
        )
    if len(outputs) != len(outs):
        raise SourceShapeError(
            f"{len(outputs)} output file(s) given, but {os.fspath(graph_path)!r} has {len(outs)} 'out' node(s) "
            f"({', '.join(graph.nodes[i].label() for i in outs)}); give one -o per 'out' node in that order"
        )
    audio, sample_rate = read_sources(sources, pad=pad)
    processors = build_processors(graph, read_options(options_path), sample_rate)
    if params_path is None:
        parameters = create_empty_parameters(graph, processors)
    else:
        parameters = load_parameters(params_path)
    with torch.no_grad():
        y, _ = render(graph, processors, parameters, audio, method=method)  # type: ignore[arg-type]
    for path, signal in zip(outputs, y):
        write_wav(path, signal, sample_rate, format=format)  # type: ignore[arg-type]
    return y


def run(args: argparse.Namespace) -> int:
    """Render and report what was written."""
    y = render_files(args.graph, args.source, args.output, args.params, args.options, args.format, args.pad,
                     args.method)
    for path, signal in zip(args.output, y):
        peak = float(signal.abs().max())
        level = f"{20 * math.log10(peak):+.1f} dBFS" if peak > 0 else "silence"
        clipped = " (clipped to 16 bits)" if args.format == "int16" and peak > 1 else ""
        print(f"wrote {path}: {signal.shape[0]} channel(s), {signal.shape[1]} samples, peak {level}{clipped}")
    return 0
