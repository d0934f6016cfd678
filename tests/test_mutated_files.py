"""Mutated graph, parameter and options files: every outcome is a render or a named GrafxError.

A valid console (two tracks through grafx-dsp gain, EQ and compressor into a
bus) is written as three files; hypothesis mutates one of them, at the byte
level (truncation, a changed byte, invalid UTF-8) or the JSON level (a value
replaced by any JSON value, NaN and huge integers included; a key deleted,
renamed or added), and the command line's pipeline reads and renders them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grafx_core import GrafxError, Graph, create_empty_parameters, load_parameters, render, save_parameters
from grafx_core.commands._processors import read_options
from grafx_core.registry import processors_for_graph

pytest.importorskip("grafx_dsp")

SAMPLES = 128
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _console() -> Graph:
    graph = Graph()
    bus = graph.add("mix", name="bus")
    for k in range(2):
        source, gain = graph.add("in", name=f"track{k}"), graph.add("dsp:gain")
        eq, comp = graph.add("dsp:parametric_eq"), graph.add("dsp:compressor")
        graph.connect(source, gain)
        graph.connect(gain, eq)
        graph.connect(eq, comp)
        graph.connect(comp, bus)
    graph.connect(bus, graph.add("out"))
    return graph


def _documents(tmp_path) -> dict[str, Any]:
    graph = _console()
    options = {"dsp:parametric_eq": {"n_peaks": 2}, "dsp:compressor": {"sample_rate": 44100.0}}
    params = create_empty_parameters(graph, processors_for_graph(graph, options))
    save_parameters(params, tmp_path / "valid.json")
    return {"graph": graph.to_dict(), "parameters": json.loads((tmp_path / "valid.json").read_text()),
            "options": options}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def _paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, prefix + (index,))
    return found


@st.composite
def json_mutation(draw, document: Any) -> Any:
    document = copy.deepcopy(document)
    paths = _paths(document)
    path = draw(st.sampled_from(paths))
    if not path:
        return draw(json_values)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
    if action == "replace":
        parent[key] = draw(json_values)
    elif action == "delete":
        del parent[key]
    elif isinstance(parent, dict) and action == "rename":
        parent[key + draw(st.sampled_from(["e", "_", ".x", " "]))] = parent.pop(key)
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
    else:
        parent.insert(key, draw(json_values))
    return document


@st.composite
def mutated_text(draw, document: Any) -> bytes:
    if draw(st.booleans()):
        return json.dumps(draw(json_mutation(document))).encode()
    data = json.dumps(document, indent=1).encode()
    position = draw(st.integers(0, len(data) - 1))
    action = draw(st.sampled_from(["truncate", "byte", "latin-1"]))
    if action == "truncate":
        return data[:position]
    if action == "byte":
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1:]
    return data[:position] + b"\xe9" + data[position:]


def _render(tmp_path, texts: dict[str, bytes]) -> None:
    for name, text in texts.items():
        (tmp_path / f"{name}.json").write_bytes(text)
    try:
        graph = Graph.load(tmp_path / "graph.json")
        processors = processors_for_graph(graph, read_options(tmp_path / "options.json"))
        params = load_parameters(tmp_path / "parameters.json")
        sources = torch.randn(len(graph.nodes_of_type("in")), 2, SAMPLES, generator=torch.Generator().manual_seed(0))
        y, _ = render(graph, processors, params, sources)
    except GrafxError:
        return
    assert y.shape[-1] == SAMPLES and bool(torch.isfinite(y).all())


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> dict[str, Any]:
    return _documents(tmp_path_factory.mktemp("valid"))


def _valid_texts(documents: dict[str, Any]) -> dict[str, bytes]:
    return {name: json.dumps(document).encode() for name, document in documents.items()}


def test_the_unmutated_files_render(documents, tmp_path):
    _render(tmp_path, _valid_texts(documents))
    y, _ = render(Graph.load(tmp_path / "graph.json"),
                  processors_for_graph(Graph.load(tmp_path / "graph.json"), read_options(tmp_path / "options.json")),
                  load_parameters(tmp_path / "parameters.json"), torch.ones(2, 2, SAMPLES))
    assert y.shape == (1, 2, SAMPLES)


@pytest.mark.parametrize("which", ["graph", "parameters", "options"])
def test_a_mutated_file_renders_or_raises_a_named_error(documents, tmp_path_factory, one_torch_thread, which):
    folder = tmp_path_factory.mktemp(which)

    @SETTINGS
    @given(text=mutated_text(documents[which]))
    def check(text: bytes) -> None:
        _render(folder, {**_valid_texts(documents), which: text})

    check()
