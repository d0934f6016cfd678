"""grafx-core's default plugins, the example plugin, lazy loading and graphs built by name."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
import torch

import grafx_core.registry as registry_module
from grafx_core import Graph, ProcessorSpec, create_empty_parameters, render
from grafx_core.errors import AmbiguousNameError, UnknownNodeTypeError
from grafx_core.registry import DEFAULT_PLUGINS, Registry
from grafx_core.testing import check_processor

NO_ENTRY_POINTS = {"GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_core_defaults_register_through_the_hooks_under_core():
    registry = Registry(environ=NO_ENTRY_POINTS)
    estimators = registry.list_estimators()
    assert registry.plugin_failures() == ()  # a missing or broken default module shows up here
    [core] = registry.list_plugins()
    assert (core.name, core.distribution, core.origin) == ("core", "grafx-core", "default")
    assert core.modules == DEFAULT_PLUGINS
    assert estimators and all((e.plugin, e.distribution) == ("core", "grafx-core") for e in estimators)
    assert {"core:finite-difference", "core:spsa"} <= {e.name for e in estimators}


def test_installed_plugins_load_without_failures():
    registry = Registry(environ={})
    registry.list_processors()
    assert registry.plugin_failures() == ()
    assert {"core", "example"} <= {p.name for p in registry.list_plugins()}


def test_example_plugin_is_found_by_its_entry_point_alone():
    registry = Registry(default_plugins=(), environ={"GRAFX_CORE_PLUGINS": "example"})
    infos = registry.list_processors()
    assert [p.name for p in infos] == ["example:crossfade", "example:mid_side", "example:soft_clip"]
    version = importlib.metadata.version("grafx-example-plugin")
    assert {(p.distribution, p.version, p.gradient) for p in infos} == {
        ("grafx-example-plugin", version, "autograd")}
    for info in infos:
        check_processor(registry.get_processor(info.name))
    clip = registry.get_processor("soft_clip")
    x = torch.linspace(-1, 1, 11, dtype=torch.float64).reshape(1, 1, 11)
    expected = np.tanh(np.linspace(-1, 1, 11) * 10 ** (6.0 / 20))
    np.testing.assert_allclose(clip(x, torch.tensor([[6.0]], dtype=torch.float64))[0, 0].numpy(), expected,
                               atol=1e-12)


def test_importing_grafx_core_loads_no_plugin():
    code = (
        "import sys, grafx_core, grafx_core.registry\n"
        "plugins = ('grafx_core.estimators._plugin', 'grafx_example_plugin.plugin')\n"
        "before = [m for m in plugins if m in sys.modules]\n"
        "grafx_core.registry.list_processors()\n"
        "print(before, [m for m in plugins if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "[] ['grafx_core.estimators._plugin', 'grafx_example_plugin.plugin']"


@pytest.fixture
def graph_registry(registry, helpers):
    registry.register(helpers.make_plugin("mod_a", [ProcessorSpec("gain", helpers.Gain),
                                                    ProcessorSpec("invert", helpers.Invert)]), "a")
    registry.register(helpers.make_plugin("mod_b", [ProcessorSpec("gain", helpers.Gain)]), "b")
    return registry


def test_graph_saved_as_json_renders_with_processors_found_by_name(graph_registry, tmp_path):
    graph = Graph()
    source = graph.add("in")
    gain = graph.add("a:gain", "boost")
    invert = graph.add("invert")
    graph.connect(source, gain)
    graph.connect(gain, invert)
    graph.connect(invert, graph.add("out"))
    graph.save(tmp_path / "graph.json")
    loaded = Graph.load(tmp_path / "graph.json")

    processors = graph_registry.processors_for_graph(loaded, {"a:gain": {"scale": 0.5}})
    assert sorted(processors) == ["a:gain", "invert"]
    parameters = create_empty_parameters(loaded, processors)
    with torch.no_grad():
        parameters["a:gain"]["gain_db"].fill_(20.0)
    x = torch.randn(1, 2, 64, generator=torch.Generator().manual_seed(0))
    y, _ = render(loaded, processors, parameters, x)
    torch.testing.assert_close(y, -0.5 * 10.0 * x)  # -(scale * 10^(20/20) * x)


def test_graph_node_types_without_a_unique_processor_name_the_node(graph_registry):
    graph = Graph()
    graph.add("in")
    graph.add("gain", "kick_gain")
    graph.add("a:reverb", "hall")
    with pytest.raises(AmbiguousNameError, match=r"node 1 \('kick_gain', type 'gain'\).*'a:gain'.*'b:gain'"):
        graph_registry.processors_for_graph(graph)
    graph = Graph()
    graph.add("a:reverb", "hall")
    with pytest.raises(UnknownNodeTypeError, match=r"node 0 \('hall', type 'a:reverb'\): no processor"):
        graph_registry.processors_for_graph(graph)
    with pytest.raises(UnknownNodeTypeError, match=r"options given for node types \['a:gian'\]"):
        graph_registry.processors_for_graph(Graph(), {"a:gian": {}})


def test_module_functions_use_the_replaceable_default_registry(graph_registry, helpers):
    previous = registry_module.set_default_registry(graph_registry)
    try:
        assert registry_module.default_registry() is graph_registry
        assert isinstance(registry_module.get_processor("invert"), helpers.Invert)
        assert [p.name for p in registry_module.list_processors()] == ["a:gain", "a:invert", "b:gain"]
        assert registry_module.plugin_failures() == ()
        assert registry_module.list_estimators() == []
    finally:
        registry_module.set_default_registry(previous)
    registry_module.set_default_registry(None)
    fresh = registry_module.default_registry()
    assert fresh is not graph_registry and fresh is not previous
    registry_module.set_default_registry(previous)
