"""Real discovery through importlib.metadata: fake distributions on a temporary sys.path."""

from __future__ import annotations

import warnings

import pytest

from grafx_core.errors import NameCollisionError, PluginError, PluginWarning
from grafx_core.registry import Registry

ALLOW_FAKES = {"GRAFX_CORE_PLUGINS": "fa,fb,broken,typo"}


@pytest.fixture
def four_fakes(fake_site, helpers):
    """Two good plugins, one that fails to import, one with a misspelled hook."""
    fake_site("grafx_fa", "0.1", {"fa": "grafx_fa_plugin"}, {"grafx_fa_plugin": helpers.gain_plugin_source("gain")})
    fake_site("grafx_fb", "2.3", {"fb": "grafx_fb_plugin"}, {"grafx_fb_plugin": helpers.gain_plugin_source("boost")})
    fake_site("grafx_broken", "0.9", {"broken": "grafx_broken_plugin"},
              {"grafx_broken_plugin": "import grafx_no_such_dependency\n"})
    fake_site("grafx_typo", "1.0", {"typo": "grafx_typo_plugin"},
              {"grafx_typo_plugin": helpers.gain_plugin_source("x").replace(
                  "def grafx_register_processors", "def grafx_register_procesors")})


def test_broken_plugins_warn_with_entry_point_and_distribution_and_others_load(four_fakes):
    registry = Registry(default_plugins=(), environ=ALLOW_FAKES)
    with pytest.warns(PluginWarning) as record:
        names = [p.name for p in registry.list_processors()]
    assert names == ["fa:gain", "fb:boost"]
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert messages[0].startswith("grafx-core plugin 'broken' from grafx_broken 0.9 [import]")
    assert "ModuleNotFoundError" in messages[0] and "grafx_no_such_dependency" in messages[0]
    assert messages[1].startswith("grafx-core plugin 'typo' from grafx_typo 1.0 [register]")
    assert "'grafx_register_procesors' (did you mean 'grafx_register_processors'?)" in messages[1]
    assert [(f.plugin, f.distribution, f.version) for f in registry.plugin_failures()] == [
        ("broken", "grafx_broken", "0.9"), ("typo", "grafx_typo", "1.0")]
    plugins = [(p.name, p.distribution, p.version, p.origin) for p in registry.list_plugins()]
    assert plugins == [("fa", "grafx_fa", "0.1", "entry point"), ("fb", "grafx_fb", "2.3", "entry point")]


def test_strict_mode_turns_failures_into_an_error(four_fakes):
    registry = Registry(default_plugins=(), environ={**ALLOW_FAKES, "GRAFX_CORE_STRICT_PLUGINS": "1"})
    with pytest.raises(PluginError, match=r"(?s)2 plugin failure.*'broken' from grafx_broken 0\.9.*"
                                          r"'typo' from grafx_typo 1\.0"):
        registry.list_processors()


@pytest.mark.parametrize(
    ("environ", "expected", "failures"),
    [
        ({"GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD": "1"}, [], []),
        ({"GRAFX_CORE_DISABLE_PLUGIN_AUTOLOAD": "1", "GRAFX_CORE_PLUGINS": "fb"}, ["fb:boost"], []),
        ({"GRAFX_CORE_PLUGINS": " fa , fb "}, ["fa:gain", "fb:boost"], []),
        ({"GRAFX_CORE_PLUGINS": ""}, [], []),
        ({"GRAFX_CORE_PLUGINS": "fa,nothere,core"}, ["fa:gain"], [("nothere", "allow-list")]),
    ],
)
def test_autoload_switches_select_entry_points(four_fakes, environ, expected, failures):
    registry = Registry(default_plugins=(), environ=environ)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", PluginWarning)
        assert [p.name for p in registry.list_processors()] == expected
    assert [(f.plugin, f.stage) for f in registry.plugin_failures()] == failures
    assert len(record) == len(failures)


def test_autoload_off_in_code_ignores_entry_points(four_fakes):
    assert Registry(default_plugins=(), autoload=False, environ={}).list_plugins() == []


def test_without_switches_every_entry_point_is_tried(four_fakes):
    registry = Registry(default_plugins=(), environ={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # other installed plugins are not this test's concern
        names = {p.name for p in registry.list_processors()}
        failed = {f.plugin for f in registry.plugin_failures()}
    assert {"fa:gain", "fb:boost"} <= names
    assert {"broken", "typo"} <= failed


def test_two_distributions_with_one_entry_point_name_are_both_seen(fake_site, helpers):
    fake_site("grafx_dup_one", "1.0", {"dup": "grafx_dup_one_plugin"},
              {"grafx_dup_one_plugin": helpers.gain_plugin_source("gain", "only_one")})
    fake_site("grafx_dup_two", "2.0", {"dup": "grafx_dup_two_plugin"},
              {"grafx_dup_two_plugin": helpers.gain_plugin_source("gain", "only_two")})
    registry = Registry(default_plugins=(), environ={"GRAFX_CORE_PLUGINS": "dup"})

    with pytest.warns(PluginWarning) as record:
        names = [p.name for p in registry.list_processors()]
    assert names == ["dup:gain", "dup:gain", "dup:only_one", "dup:only_two"]
    messages = " | ".join(str(w.message) for w in record)
    assert ("plugin name 'dup' of grafx_dup_two 2.0 (grafx_dup_two_plugin) is already used by "
            "grafx_dup_one 1.0 (grafx_dup_one_plugin)") in messages
    with pytest.raises(NameCollisionError, match=r"'dup:gain' is registered 2 times: 'dup:gain' from "
                                                 r"grafx_dup_one 1\.0, 'dup:gain' from grafx_dup_two 2\.0"):
        registry.get_processor("dup:gain")
    assert registry.processor_info("only_two").distribution == "grafx_dup_two"
    assert sorted(p.distribution for p in registry.list_plugins()) == ["grafx_dup_one", "grafx_dup_two"]
