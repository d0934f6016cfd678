"""Render a graph saved as JSON with audio-file sources (WAV, FLAC, ...); write each output as a WAV file.

Processors come from the plugin registry by the node types in the graph file
(e.g. "dsp:parametric_eq"); each factory that takes a sample_rate gets the sources' rate.
Give one --source per "in" node, in node-id order, and one -o per "out" node.
Parameters come from a parameter file (--params, as written by
grafx_core.save_parameters, the demo or fit), else each processor's defaults.
A parameter file may hold automation curves; their rate (samples per control
frame) is the file's "control_hop", or --control-hop.
Outputs are WAV files; an existing file is replaced only with --force, and
never one of the inputs.

  grafx-core render mix.graph.json --source drums.wav --source bass.wav \\
      --params fitted.params.json -o mix.wav
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import torch

from .._threads import torch_threads
from ..errors import AudioFileError, ParameterError, ProcessorOutputError, SourceShapeError
from ..graph import Graph
from ..fitting.outputs import same_file
from ..parameter_file import _leaves, load_control_hop, load_parameters
from ..parameters import check_parameters, create_empty_parameters
from ..registry import processors_for_graph
from ..plan import compile_render
from ..render import render
from ..audiofile import AudioBlockReader
from ._stream_files import StreamedOutput, stream_to_files
from ..schedule import SCHEDULING_METHODS
from ..wavfile import WAV_FORMATS, read_sources, write_wav
from ._arguments import add_allow_plugins, at_least, threads_count
from ._processors import isolate_black_boxes, read_options

__all__ = ["add_arguments", "run", "render_files"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the graph, sources, parameters, options and outputs."""
    parser.add_argument("graph", metavar="GRAPH.json", help="graph file (grafx_core.Graph.save)")
    parser.add_argument("--source", "-s", action="append", default=[], metavar="WAV", required=True,
                        help="a source audio file (WAV, FLAC, OGG, MP3, ...), once per 'in' node in node-id order")
    parser.add_argument("--output", "-o", action="append", default=[], metavar="WAV", required=True,
                        help="an output WAV, once per 'out' node in node-id order")
    parser.add_argument("--params", "-p", metavar="PARAMS.json", help="parameter file (default: processor defaults)")
    parser.add_argument("--control-hop", type=at_least(1), metavar="N",
                        help="samples per control frame of the parameter file's automation curves "
                             "(default: the file's control_hop)")
    parser.add_argument("--options", metavar="OPTIONS.json",
                        help='factory options per node type, e.g. {"dsp:reverb": {"ir_seconds": 1.0}}')
    parser.add_argument("--format", choices=WAV_FORMATS, default="float32",
                        help="output sample format (default float32, lossless)")
    parser.add_argument("--pad", action="store_true", help="zero-pad shorter sources to the longest")
    parser.add_argument("--method", choices=SCHEDULING_METHODS, default="beam", help="scheduling method")
    parser.add_argument("--threads", type=threads_count, metavar="N",
                        help="torch threads (default: torch's own count; sums and FFTs may round differently "
                             "on another count, so a render repeated bit for bit names it)")
    parser.add_argument("--force", action="store_true", help="replace output files that exist")
    parser.add_argument("--block-size", type=at_least(1), metavar="N",
                        help="stream: read, render and write N samples at a time, each processor's state carried "
                             "from block to block, so memory does not grow with the input's length (every "
                             "processor must support it; a progress bar shows on long renders)")
    parser.add_argument("--isolate", action="store_true",
                        help="render black-box plug-ins in watched worker processes: one that crashes or hangs is "
                        "an error naming its node, not the end of this process (slower to start)")
    add_allow_plugins(parser)


def _check_outputs(outputs: list[str], inputs: list[str], force: bool) -> None:
    for path in outputs:
        if not path.lower().endswith(".wav"):
            raise AudioFileError(f"output {path!r}: render writes WAV files only; name it .wav "
                                 "(convert it afterwards for other formats)")
        for source in inputs:
            if same_file(path, source):
                raise AudioFileError(f"output {path!r} is also an input: choose another output name")
        if os.path.islink(path):
            raise AudioFileError(f"output {path!r} is a symbolic link (to {os.readlink(path)!r}); render never writes "
                                 "through links, with --force or without: name the file itself")
        if os.path.isdir(path):
            raise AudioFileError(f"output {path!r} is a folder: name a .wav file")
        if os.path.exists(path) and not force:
            raise AudioFileError(f"output {path!r} exists: pass --force to replace it, or choose another name")
    if len(set(map(os.path.abspath, outputs))) < len(outputs):
        raise AudioFileError(f"the outputs {outputs} name one file twice: give each 'out' node its own file")


def _check_shapes(graph: Graph, processors: dict[str, Any], parameters: Any, params_path: str,
                  options_path: str | None) -> None:
    """A parameter file saved for processors built with options (EQ peaks, reverb bands) does not fit
    the processors built without them: say so before the render fails on a shape."""
    expected = create_empty_parameters(graph, processors)
    for node_type in expected.keys():
        if node_type not in parameters.keys():
            continue
        want, got = dict(_leaves(expected[node_type])), dict(_leaves(parameters[node_type]))
        for name, value in want.items():
            shape = tuple(got[name].shape) if name in got else tuple(value.shape)
            # A curve adds a trailing frame axis; check_parameters judges whether the control may move.
            if shape != tuple(value.shape) and shape[:-1] != tuple(value.shape):
                hint = ("; the graph was probably fitted with processor options: pass its options file "
                        "with --options" if options_path is None else "; do the options file and the "
                        "parameter file belong together?")
                raise ParameterError(
                    f"{params_path!r}: {node_type}.{name} has shape {list(got[name].shape)}, but the processors "
                    f"built {'without options' if options_path is None else 'with ' + repr(options_path)} "
                    f"take {list(value.shape)}{hint}")


def render_files(graph_path: str | os.PathLike[str], sources: list[str], outputs: list[str],
                 params_path: str | None = None, options_path: str | None = None,
                 format: str = "float32", pad: bool = False, method: str = "beam",
                 force: bool = False, threads: int | None = None, isolate: bool = False,
                 control_hop: int | None = None,
                 block_size: int | None = None) -> torch.Tensor | list[StreamedOutput]:
    """Render a graph file with WAV sources and write the outputs; what ``grafx-core render`` does.

    ``threads`` is torch's intra-op thread count for the render (``None``: unchanged); ``isolate`` renders
    every black box that takes a ``runner`` in watched worker processes (``runner="isolated"``).
    ``control_hop`` is the samples per control frame of the parameter file's
    curves (``None``: the file's ``"control_hop"``).
    With ``block_size``, the files are streamed block by block
    (:func:`grafx_core.stream.stream_render`): memory stays that of a block.

    Returns:
        The rendered outputs, ``[num_out, channels, samples]`` float32; with
        ``block_size``, a :class:`StreamedOutput` per output instead.

    Raises:
        GraphError: the graph file is invalid.
        SourceShapeError: the number of sources or outputs does not match
            the graph's ``"in"`` or ``"out"`` nodes.
        AudioFileError: a WAV cannot be read or written, or the sources
            disagree in sample rate, channels or length; an output is not
            ``.wav``, is an input, or exists and ``force`` is false.
        ParameterError: the parameter file is invalid or does not fit the
            graph (or the options it was saved with); it holds curves and no
            control hop is known, or ``control_hop`` contradicts the file's.
        OptionsFileError: the options file is missing or invalid, or a
            processor factory refuses an option.
        ProcessorOutputError: the render is not finite (nothing is written).
        UnknownNodeTypeError: a node type names no registered processor.
        StreamingError: with ``block_size``, a processor cannot stream (named).
    """
    inputs = [os.fspath(graph_path), *sources, *(p for p in (params_path, options_path) if p)]
    _check_outputs(outputs, inputs, force)
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
    if block_size is not None:
        readers = [AudioBlockReader(path) for path in sources]
        try:
            sample_rate = readers[0].sample_rate
            processors, parameters = _processors_and_parameters(graph, sample_rate, params_path, options_path,
                                                                isolate)
            hop = _control_hop(params_path, control_hop)
            if hop is not None:  # curves span the whole input: check them against its length before streaming
                check_parameters(graph, processors, parameters, samples=max(r.frames for r in readers),
                                 control_hop=hop)
            with torch_threads(threads):
                plan = compile_render(graph, processors, method, control_hop=hop)  # type: ignore[arg-type]
                return stream_to_files(plan, parameters, readers, outputs, block_size, format, pad)
        finally:
            for reader in readers:
                reader.close()
    audio, sample_rate = read_sources(sources, pad=pad)
    processors, parameters = _processors_and_parameters(graph, sample_rate, params_path, options_path, isolate)
    control_hop = _control_hop(params_path, control_hop)
    with torch.no_grad(), torch_threads(threads):
        y, _ = render(graph, processors, parameters, audio, method=method,  # type: ignore[arg-type]
                      control_hop=control_hop)
    if not torch.isfinite(y).all():
        raise ProcessorOutputError(
            f"rendering {os.fspath(graph_path)!r} gave NaN or infinite samples (finite sources and parameters): "
            "a processor is unstable at these settings; nothing was written")
    for path, signal in zip(outputs, y):
        write_wav(path, signal, sample_rate, format=format)  # type: ignore[arg-type]
    return y


def _processors_and_parameters(graph: Graph, sample_rate: int, params_path: str | None,
                               options_path: str | None, isolate: bool = False) -> tuple[dict[str, Any], Any]:
    origin = f"options file {os.fspath(options_path)!r}" if options_path else "processor options"
    options = read_options(options_path)
    if isolate:
        isolate_black_boxes(graph, options)
    processors = processors_for_graph(graph, options, sample_rate=sample_rate, origin=origin)
    if params_path is None:
        parameters = create_empty_parameters(graph, processors)
    else:
        parameters = load_parameters(params_path)
        _check_shapes(graph, processors, parameters, params_path, options_path)
    return processors, parameters


def _control_hop(params_path: str | None, control_hop: int | None) -> int | None:
    """The samples per control frame of the parameter file's curves: ``control_hop``, else the file's."""
    saved = None if params_path is None else load_control_hop(params_path)
    if control_hop is not None and saved is not None and control_hop != saved:
        raise ParameterError(f"{params_path!r} holds curves at a control hop of {saved} samples, but "
                             f"--control-hop {control_hop} was given; leave it out to use the file's")
    return saved if control_hop is None else control_hop


def run(args: argparse.Namespace) -> int:
    """Render and report what was written."""
    y = render_files(args.graph, args.source, args.output, args.params, args.options, args.format, args.pad,
                     args.method, args.force, args.threads, args.isolate, args.control_hop, args.block_size)
    if isinstance(y, list):
        for out in y:
            level = f"{20 * math.log10(out.peak):+.1f} dBFS" if out.peak > 0 else "silence"
            clipped = " (clipped to 16 bits)" if args.format == "int16" and out.peak > 1 else ""
            print(f"wrote {out.path}: {out.channels} channel(s), {out.samples} samples, peak {level}{clipped}")
        return 0
    for path, signal in zip(args.output, y):
        peak = float(signal.abs().max())
        level = f"{20 * math.log10(peak):+.1f} dBFS" if peak > 0 else "silence"
        clipped = " (clipped to 16 bits)" if args.format == "int16" and peak > 1 else ""
        print(f"wrote {path}: {signal.shape[0]} channel(s), {signal.shape[1]} samples, peak {level}{clipped}")
    return 0
