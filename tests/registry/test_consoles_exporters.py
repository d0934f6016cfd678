"""Plugins register consoles and exporters through hooks; fit and export find them by name."""

from __future__ import annotations

import types

import pytest

from grafx_core import ConsoleSpec, ExporterSpec, Graph, hookimpl
from grafx_core.cli import main
from grafx_core.errors import PluginWarning, UnknownNameError
from grafx_core.fitting.console import Console
from grafx_core.registry import Registry, set_default_registry


def _one_fader_console(names):
    g = Graph()
    master = g.add("mix", "master")
    for name in names:
        g.connect(g.add("in", name), master)
    g.connect(master, g.add("out", "mix"))
    return Console(g, {})


def _plugin(calls):
    module = types.ModuleType("mixers")

    def export(fit_dir, destination, force=False):
        calls.append((fit_dir, destination, force))
        return destination

    module.grafx_register_consoles = hookimpl(lambda: [ConsoleSpec("bare", _one_fader_console, "Sum of tracks")])
    module.grafx_register_exporters = hookimpl(lambda: [ExporterSpec("notes", export, "Writes notes")])
    return module


@pytest.fixture
def calls():
    registry = Registry(default_plugins=(), autoload=False)
    seen: list = []
    registry.register(_plugin(seen), "mixers")
    previous = set_default_registry(registry)
    yield seen
    set_default_registry(previous)


def test_registered_console_and_exporter_are_found_by_short_and_qualified_name(calls):
    from grafx_core import get_console, get_exporter, list_consoles, list_exporters

    assert [c.name for c in list_consoles()] == ["mixers:bare"]
    assert [e.name for e in list_exporters()] == ["mixers:notes"]
    console = get_console("bare").spec.factory(["a", "b"])
    assert len(console.graph.nodes_of_type("in")) == 2
    assert get_exporter("mixers:notes").spec.factory("fit", "out", force=True) == "out"
    with pytest.raises(UnknownNameError, match="bare"):
        get_console("bar")


def test_export_command_runs_the_named_exporter(calls, capsys):
    assert main(["export", "notes", "fit-dir", "-o", "dest", "--force"]) == 0
    assert calls == [("fit-dir", "dest", True)]
    assert "wrote dest" in capsys.readouterr().out
    assert main(["export", "nope", "fit-dir", "-o", "dest"]) == 1
    assert "nope" in capsys.readouterr().err


def test_a_console_hook_returning_junk_is_that_plugin_s_failure():
    registry = Registry(default_plugins=(), autoload=False)
    module = types.ModuleType("broken")
    module.grafx_register_consoles = hookimpl(lambda: ["not a spec"])
    registry.register(module, "broken")
    with pytest.warns(PluginWarning, match="expected ConsoleSpec"):
        assert registry.list_consoles() == []


def test_spec_names_are_checked():
    with pytest.raises(ValueError, match="console name"):
        ConsoleSpec("a:b", _one_fader_console)
    with pytest.raises(TypeError, match="exporter 'x'"):
        ExporterSpec("x", "not callable")
