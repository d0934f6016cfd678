"""A plugin's SystemExit, KeyboardInterrupt, blocking import or bad factory is that plugin's failure."""

from __future__ import annotations

import textwrap
import threading

import pytest
import torch

from grafx_core import Graph, PluginError, PluginWarning, ProcessorSpec, create_empty_parameters, render
from grafx_core.registry import Registry

_GOOD = "grafx_good_plugin"


def _load(plugins: str, environ: dict[str, str] | None = None) -> Registry:
    # Only the fake plugins: the installed ones would load too.
    return Registry(default_plugins=(), environ={"GRAFX_CORE_PLUGINS": plugins, **(environ or {})})


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "BaseException('odd')"])
def test_a_base_exception_at_import_fails_only_that_plugin(fake_site, helpers, raised):
    fake_site("grafx_bad", "0.1", {"bad": "grafx_bad_plugin"}, {"grafx_bad_plugin": f"raise {raised}\n"})
    fake_site("grafx_good", "0.2", {"good": _GOOD}, {_GOOD: helpers.gain_plugin_source("gain")})
    registry = _load("bad,good")
    with pytest.warns(PluginWarning, match=r"'bad' from grafx_bad 0.1 \[import\].*" + raised.split("(")[0]):
        names = [p.name for p in registry.list_processors()]
    assert names == ["good:gain"]
    assert [f.plugin for f in registry.plugin_failures()] == ["bad"]


@pytest.mark.parametrize("raised", ["SystemExit(0)", "KeyboardInterrupt()"])
def test_a_base_exception_in_a_hook_fails_only_that_plugin(fake_site, helpers, raised):
    source = f"""
        from grafx_core import hookimpl

        @hookimpl
        def grafx_register_processors():
            raise {raised}
        """
    fake_site("grafx_bad", "0.1", {"bad": "grafx_bad_plugin"}, {"grafx_bad_plugin": source})
    fake_site("grafx_good", "0.2", {"good": _GOOD}, {_GOOD: helpers.gain_plugin_source("gain")})
    registry = _load("bad,good")
    with pytest.warns(PluginWarning, match=r"'bad' .*\[hook\].*raised " + raised.split("(")[0]):
        assert [p.name for p in registry.list_processors()] == ["good:gain"]


def test_a_blocking_import_fails_after_the_timeout_and_the_others_load(fake_site, helpers, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(threading, "grafx_test_release", release, raising=False)
    blocking = "import threading\nthreading.grafx_test_release.wait(30)\n"
    fake_site("grafx_slow", "0.1", {"slow": "grafx_slow_plugin"}, {"grafx_slow_plugin": blocking})
    fake_site("grafx_good", "0.2", {"good": _GOOD}, {_GOOD: helpers.gain_plugin_source("gain")})
    registry = _load("slow,good", {"GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT": "0.3"})
    try:
        with pytest.warns(PluginWarning, match=r"'slow' .*\[import\].*did not finish within 0.3 s"):
            assert [p.name for p in registry.list_processors()] == ["good:gain"]
    finally:
        release.set()


def test_a_plugin_installing_a_signal_handler_is_told_how_to_import_in_the_main_thread(fake_site, helpers):
    source = "import signal\nsignal.signal(signal.SIGUSR2, signal.getsignal(signal.SIGUSR2))\n"
    source += textwrap.dedent(helpers.gain_plugin_source("gain"))
    fake_site("grafx_sig", "0.1", {"sig": "grafx_sig_plugin"}, {"grafx_sig_plugin": source})
    with pytest.warns(PluginWarning, match=r"'sig' .*\[import\].*main thread.*GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT=0"):
        assert _load("sig").list_processors() == []
    assert [p.name for p in _load("sig", {"GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT": "0"}).list_processors()] == ["sig:gain"]


def test_a_bad_timeout_setting_is_reported_and_the_default_used(fake_site, helpers):
    fake_site("grafx_good", "0.2", {"good": _GOOD}, {_GOOD: helpers.gain_plugin_source("gain")})
    registry = _load("good", {"GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT": "soon"})
    with pytest.warns(PluginWarning, match="GRAFX_CORE_PLUGIN_IMPORT_TIMEOUT='soon'"):
        assert [p.name for p in registry.list_processors()] == ["good:gain"]


@pytest.mark.parametrize("made, shown", [(lambda: None, "None"), (lambda: str, "<class 'str'>"),
                                         (lambda: "gain", "'gain'")])
def test_a_factory_returning_no_processor_is_named_with_its_plugin(registry, helpers, made, shown):
    registry.register(helpers.make_plugin("broken", [ProcessorSpec("gain.v2", made)]), "broken",
                      distribution="grafx-broken", version="1.0")
    graph = Graph()
    graph.connect(graph.add("in"), graph.add("broken:gain.v2"))
    with pytest.raises(PluginError, match=r"node 1 \(type 'broken:gain.v2'\): processor 'broken:gain.v2' of "
                                          r"grafx-broken 1.0: its factory returned " + shown):
        registry.processors_for_graph(graph)
    with pytest.raises(PluginError, match="its factory returned"):
        registry.get_processor("gain.v2")


def test_a_factory_that_raises_is_named_with_its_options(registry, helpers):
    registry.register(helpers.make_plugin("mine", [ProcessorSpec("gain", helpers.Gain)]), "mine")
    with pytest.raises(PluginError, match=r"processor 'mine:gain' .*factory raised TypeError.*\{'scal': 2\}"):
        registry.get_processor("gain", scal=2)


def test_a_plugin_processor_named_gain_v2_renders_like_any_other(registry, helpers):
    registry.register(helpers.make_plugin("mine", [ProcessorSpec("gain.v2", helpers.Gain)]), "mine")
    graph = Graph()
    node = graph.add("mine:gain.v2")
    graph.connect(graph.add("in"), node)
    graph.connect(node, graph.add("out"))
    processors = registry.processors_for_graph(graph)
    params = create_empty_parameters(graph, processors)
    with torch.no_grad():
        params["mine:gain.v2"]["gain_db"].fill_(20.0)
    y, _ = render(graph, processors, params, torch.ones(1, 1, 4))
    torch.testing.assert_close(y, torch.full((1, 1, 4), 10.0))
