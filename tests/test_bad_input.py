"""One test per defect of issue 13: bad files, parameters and sources are named errors."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from torch import nn

from grafx_core import (
    AudioFileError,
    Graph,
    GraphError,
    ParameterError,
    SourceShapeError,
    UnknownNodeTypeError,
    compile_render,
    create_empty_parameters,
    load_parameters,
    read_wav,
    render,
    render_order,
    save_parameters,
    write_wav,
)
from grafx_core.schedule import Stage


class Scale(nn.Module):
    """``y = x * value`` per node; ``value`` is named by the test (``type``, ``half``, ...)."""

    def __init__(self, name: str = "value") -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        return x * params[self.name][..., None]

    def parameter_size(self) -> dict[str, int]:
        return {self.name: 1}


def two_track_graph(node_type: str = "scale") -> Graph:
    graph = Graph()
    for _ in range(2):
        source, node = graph.add("in"), graph.add(node_type)
        graph.connect(source, node)
        graph.connect(node, graph.add("out"))
    return graph


# -- graph files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe not utf-8", r"is not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, r"nested too deeply"),
    (b'{"format": "grafx-core.graph", "version": true, "nodes": [], "edges": []}', r"version True"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": [{"type": "in"}, {"type": "out"}], '
     b'"edges": [{"src": 0, "dst": 1, "outlte": "main"}]}', r"edge 0: unknown key\(s\) \['outlte'\]"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": [{"type": "in", "nmae": "a"}], "edges": []}',
     r"node 0: unknown key\(s\) \['nmae'\]"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": [], "edges": [], "extra": 1}',
     r"the graph: unknown key\(s\) \['extra'\]"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": {}, "edges": []}', r"'nodes' must be a JSON list"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": [{"type": "in"}, {"type": "mix"}], '
     b'"edges": [{"src": 0, "dst": 1, "inlet": 7}]}', r"edge 0: .*must be port names"),
    (b'{"format": "grafx-core.graph", "version": 1, "nodes": [{"type": "in"}], '
     b'"edges": [{"src": 0.5, "dst": 1}]}', r"edge 0: 'src' must be a node id"),
])
def test_a_bad_graph_file_is_a_graph_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(GraphError, match=rf"'{path}'.*{message}"):
        Graph.load(path)


def test_loading_a_missing_graph_file_or_a_folder_names_it(tmp_path):
    with pytest.raises(GraphError, match=rf"graph file '{tmp_path / 'nope.json'}' does not exist"):
        Graph.load(tmp_path / "nope.json")
    with pytest.raises(GraphError, match=rf"graph file '{tmp_path}' is a folder"):
        Graph.load(tmp_path)


# -- parameter files ---------------------------------------------------------------------------------


def _parameter_file(tmp_path, dtype="float32", values="[[1.0], [2.0]]", node_type="scale", extra=""):
    path = tmp_path / "p.json"
    path.write_text('{"format": "grafx-core.parameters", "version": 1, "dtype": %s, %s'
                    '"parameters": {"%s": {"value": %s}}}' % (json.dumps(dtype), extra, node_type, values))
    return path


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": [1]}, r"dtype \[1\] is not one of"),
    ({"values": "[[1e400], [2.0]]"}, r"parameter scale.value holds inf \(element 0, from inf\)"),
    ({"values": "[[NaN], [2.0]]"}, r"parameter scale.value holds nan"),
    ({"values": "[[1" + "0" * 400 + "], [2.0]]"}, r"not a rectangular list of float32 numbers"),
    ({"values": "[[true], [false]]"}, r"must be a list of numbers"),
    ({"values": "[[1.0], [2.0, 3.0]]"}, r"not a rectangular list"),
    ({"extra": '"comment": 1, '}, r"unknown key\(s\) \['comment'\]"),
])
def test_a_bad_parameter_file_is_a_parameter_error_naming_the_file(tmp_path, kwargs, message):
    path = _parameter_file(tmp_path, **kwargs)
    with pytest.raises(ParameterError, match=rf"'{path}'.*{message}"):
        load_parameters(path)


def test_a_non_utf8_parameter_file_is_a_parameter_error(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(b'{"format": "\xe9"}')
    with pytest.raises(ParameterError, match="is not UTF-8 text"):
        load_parameters(path)


def test_another_graphs_parameters_are_refused_naming_the_stray_type(tmp_path):
    graph, processors = two_track_graph(), {"scale": Scale()}
    params = load_parameters(_parameter_file(tmp_path, node_type="eq"))
    with pytest.raises(ParameterError, match=r"node type\(s\) \['eq'\] that the graph does not have"):
        render(graph, processors, params, torch.ones(2, 1, 8))


def test_concurrent_readers_never_see_a_partial_parameter_file(tmp_path):
    graph, processors = two_track_graph(), {"scale": Scale()}
    params = create_empty_parameters(graph, processors)
    path = tmp_path / "p.json"
    save_parameters(params, path)
    stop, failures, reads = threading.Event(), [], [0]

    def read() -> None:
        while not stop.is_set():
            try:
                loaded = load_parameters(path)
            except ParameterError as error:
                failures.append(error)
                return
            assert loaded["scale"]["value"].shape == (2, 1)
            reads[0] += 1

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for k in range(300):
            with torch.no_grad():
                params["scale"]["value"].fill_(k)
            save_parameters(params, path)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert failures == [] and reads[0] > 0
    assert float(load_parameters(path)["scale"]["value"].detach()[0, 0]) == 299.0


# -- parameters in memory ------------------------------------------------------------------------------


@pytest.mark.parametrize("parameter_name", ["type", "half", "train", "float", "a.b", "_parameters", "%2E"])
@pytest.mark.parametrize("node_type", ["plugin:gain.v2", "type", "half"])
def test_names_with_dots_or_equal_to_module_attributes_render_and_round_trip(tmp_path, node_type, parameter_name):
    graph, processors = two_track_graph(node_type), {node_type: Scale(parameter_name)}
    params = create_empty_parameters(graph, processors)
    assert list(params.keys()) == [node_type] and list(params[node_type].keys()) == [parameter_name]
    with torch.no_grad():
        params[node_type][parameter_name].copy_(torch.tensor([[2.0], [3.0]]))
    assert len(list(params.parameters())) == 1
    save_parameters(params, tmp_path / "p.json")
    loaded = load_parameters(tmp_path / "p.json")
    sources = torch.ones(2, 1, 4)
    y, _ = render(graph, processors, loaded, sources)
    torch.testing.assert_close(y, torch.tensor([2.0, 3.0])[:, None, None].expand(2, 1, 4))


@pytest.mark.parametrize("make, message", [
    (lambda p: None, r"parameters must be a mapping .* got NoneType"),
    (lambda p: {"scale": p["scale"]["value"]}, r"parameters of node type 'scale' must be a mapping .* got Parameter"),
    (lambda p: {"scale": {"value": p["scale"]["value"].bool()}}, r"scale.value is of dtype torch.bool"),
    (lambda p: {"scale": {"value": p["scale"]["value"].to(torch.complex64)}}, r"dtype torch.complex64"),
    (lambda p: {"scale": {"value": torch.zeros(2, 1, device="meta")}}, r"on the meta device"),
    (lambda p: {"scale": {"value": torch.tensor([[1.0], [float("nan")]])}},
     r"node 4 \(type 'scale'\): parameter scale.value is nan"),
    (lambda p: {"scale": {"value": torch.tensor([[float("inf")], [1.0]])}}, r"node 1 .*scale.value is inf"),
])
def test_bad_parameter_values_are_named_before_rendering(make, message):
    graph, processors = two_track_graph(), {"scale": Scale()}
    params = make(create_empty_parameters(graph, processors))
    with pytest.raises(ParameterError, match=message):
        render(graph, processors, params, torch.ones(2, 1, 8))


# -- processors and render orders ----------------------------------------------------------------------


@pytest.mark.parametrize("processor, message", [(None, "is None"), (Scale, "is the class Scale"),
                                                ("scale", "is str 'scale'")])
def test_a_processor_that_is_not_a_processor_object_is_refused(processor, message):
    with pytest.raises(UnknownNodeTypeError, match=rf"node 1 \(type 'scale'\): the processor .* {message}"):
        compile_render(two_track_graph(), {"scale": processor})


@pytest.mark.parametrize("make", [create_empty_parameters, compile_render], ids=["parameters", "compile"])
def test_processors_must_be_a_mapping_of_processor_objects(make):
    with pytest.raises(TypeError, match="processors must be a mapping from node type to processor module.*got list"):
        make(two_track_graph(), [Scale()])
    with pytest.raises(UnknownNodeTypeError, match=r"node 1 \(type 'scale'\): the processor .* is None"):
        make(two_track_graph(), {"scale": None})


def test_saving_something_that_is_not_parameters_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="parameters to save must be a mapping .* got NoneType"):
        save_parameters(None, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def _chain_graph() -> Graph:
    graph = Graph()
    a, b, c = graph.add("in"), graph.add("scale"), graph.add("scale")
    graph.connect(a, b)
    graph.connect(b, c)
    graph.connect(c, graph.add("out"))
    return graph


@pytest.mark.parametrize("stages, message", [
    ([Stage("scale", (2,)), Stage("scale", (1,)), Stage("out", (3,))], r"node 2 .*needs node 1 .*stage 1"),
    ([Stage("scale", (1,)), Stage("out", (3,))], r"leave out node 2"),
    ([Stage("scale", (1,)), Stage("scale", (1, 2)), Stage("out", (3,))], r"node 1 .* in stages 0 and 1"),
    ([Stage("out", (3,)), Stage("scale", (1,)), Stage("scale", (2,))], r"'out' nodes must form one stage, the last"),
    ([Stage("scale", (1,)), Stage("mix", (2,)), Stage("out", (3,))], r"stage 1 of type 'mix' holds node 2"),
    ([Stage("scale", (1,)), Stage("scale", (9,)), Stage("out", (3,))], r"names node 9"),
    ("beam", r"must be a list of Stage records"),
])
def test_a_bad_render_order_is_refused_at_compile_time(stages, message):
    graph = _chain_graph()
    with pytest.raises(GraphError, match=message):
        compile_render(graph, {"scale": Scale()}, stages=stages)
    assert compile_render(graph, {"scale": Scale()}, stages=render_order(graph)).stages == render_order(graph)


# -- sources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sources, message", [
    (torch.ones(2, 1, 0), r"no samples"),
    (torch.ones(2, 0, 8), r"no channels"),
    (torch.ones(0, 2, 1, 8), r"no batch items"),
    (torch.ones(2, 1, 8, dtype=torch.float16), r"dtype torch.float16.*render in float32"),
    (torch.ones(2, 1, 8, dtype=torch.bfloat16), r"dtype torch.bfloat16"),
    (torch.ones(2, 1, 8, dtype=torch.complex64), r"dtype torch.complex64.*audio is real"),
    (torch.ones(2, 1, 8, dtype=torch.int16), r"dtype torch.int16.*raw values"),
    (torch.ones(2, 1, 8, dtype=torch.int32), r"dtype torch.int32"),
    (torch.ones(2, 1, 8, dtype=torch.bool), r"dtype torch.bool"),
    (torch.ones(2, 1, 8, device="meta"), r"meta device"),
    (torch.tensor([[[1.0, 1.0]], [[1.0, float("nan")]]]), r"source of node 3 \(type 'in'\) is nan at channel 0, sample 1"),
])
def test_bad_sources_are_a_source_shape_error_before_the_first_processor(sources, message):
    class MustNotRun(Scale):
        def forward(self, x, **params):
            raise AssertionError("the processor ran")

    graph, processors = two_track_graph(), {"scale": MustNotRun()}
    with pytest.raises(SourceShapeError, match=message):
        render(graph, processors, create_empty_parameters(graph, processors), sources)


# -- WAV files -------------------------------------------------------------------------------------------


def _wav_bytes(tmp_path) -> bytes:
    write_wav(tmp_path / "full.wav", torch.zeros(2, 1000), 44100)
    return (tmp_path / "full.wav").read_bytes()


@pytest.mark.parametrize("edit, message", [
    (lambda b: b[:-80], r"data is cut short: the header declares 8000 bytes \(1000 frames\) but the file holds 7920"),
    (lambda b: b[:30], r"ends inside its header"),
    (lambda b: b[:24] + (0).to_bytes(4, "little") + b[28:], r"sample rate 0 Hz"),
])
def test_a_damaged_wav_file_is_a_named_audio_file_error(tmp_path, edit, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(edit(_wav_bytes(tmp_path)))
    with pytest.raises(AudioFileError, match=rf"'{path}'.*{message}"):
        read_wav(path)


def test_write_wav_refuses_nan_a_zero_sample_rate_and_non_float_audio(tmp_path):
    with pytest.raises(AudioFileError, match="NaN or Inf"):
        write_wav(tmp_path / "a.wav", torch.tensor([[0.0, float("nan")]]), 44100)
    with pytest.raises(AudioFileError, match="sample rate must be a positive number"):
        write_wav(tmp_path / "a.wav", torch.zeros(1, 4), 0)
    for audio, what in [(np.zeros((1, 4), np.int16), "int16 samples"), (None, "NoneType"),
                        (torch.zeros(1, 4, dtype=torch.complex64), "complex64 samples")]:
        with pytest.raises(AudioFileError, match=f"real floating-point tensor or numpy array, got .*{what}"):
            write_wav(tmp_path / "a.wav", audio, 44100)
    assert not (tmp_path / "a.wav").exists()
    samples = np.linspace(-1, 1, 8).reshape(2, 4)  # float64 numpy, as scipy and soundfile users hold audio
    write_wav(tmp_path / "numpy.wav", samples, 44100)
    np.testing.assert_array_equal(read_wav(tmp_path / "numpy.wav")[0].numpy(), samples.astype(np.float32))
    np.testing.assert_array_equal(read_wav(_wav_bytes(tmp_path) and tmp_path / "full.wav")[0].numpy(),
                                  np.zeros((2, 1000), np.float32))
