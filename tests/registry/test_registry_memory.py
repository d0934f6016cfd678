"""The registry on a fresh plugin manager with plugins registered in memory."""

from __future__ import annotations

import pluggy
import pytest
import torch

from grafx_core import EstimatorSpec, ProcessorSpec, hookimpl, hookspecs
from grafx_core.errors import (
    AmbiguousNameError,
    NameCollisionError,
    PluginError,
    PluginWarning,
    UnknownNameError,
)
from grafx_core.registry import Registry


def test_processor_found_by_qualified_and_unique_short_name(registry, helpers):
    registry.register(helpers.make_plugin("mod_a", [ProcessorSpec("gain", helpers.Gain, "Gain in dB")]),
                      "a", distribution="grafx-a", version="1.2")

    [info] = registry.list_processors()
    assert (info.name, info.short_name, info.plugin, info.gradient) == ("a:gain", "gain", "a", "autograd")
    assert info.distribution_label == "grafx-a 1.2"
    by_short = registry.get_processor("gain", scale=3.0)
    by_qualified = registry.get_processor("a:gain")
    assert isinstance(by_short, helpers.Gain) and by_short.scale == 3.0
    assert by_qualified is not by_short  # a new processor on every call
    x = torch.ones(1, 1, 4)
    torch.testing.assert_close(by_short(x, torch.full((1, 1), 20.0)), torch.full((1, 1, 4), 30.0))


def test_ambiguous_short_name_lists_qualified_candidates(registry, helpers):
    registry.register(helpers.make_plugin("mod_a", [ProcessorSpec("gain", helpers.Gain)]), "a",
                      distribution="grafx-a")
    registry.register(helpers.make_plugin("mod_b", [ProcessorSpec("gain", helpers.Invert)]), "b",
                      distribution="grafx-b")

    with pytest.raises(AmbiguousNameError) as excinfo:
        registry.get_processor("gain")
    assert "'a:gain' from grafx-a" in str(excinfo.value)
    assert "'b:gain' from grafx-b" in str(excinfo.value)
    assert isinstance(registry.get_processor("b:gain"), helpers.Invert)


def test_unknown_name_suggests_close_matches(registry, helpers):
    registry.register(helpers.make_plugin("mod_a", [ProcessorSpec("compressor", helpers.Gain)]), "a")
    with pytest.raises(UnknownNameError, match=r"did you mean .*'a:compressor'"):
        registry.get_processor("a:compresor")
    with pytest.raises(LookupError, match="no estimator named 'spsa'"):
        registry.get_estimator("spsa")


def test_estimators_are_registered_and_built_with_options(registry, helpers):
    registry.register(helpers.make_plugin("mod_e", None, [EstimatorSpec("fd", dict, "finite differences")]),
                      "est")
    assert [e.name for e in registry.list_estimators()] == ["est:fd"]
    assert registry.get_estimator("fd", step=1e-3) == {"step": 1e-3}
    assert registry.list_processors() == []


def test_one_qualified_name_registered_twice_names_both_registrations(registry, helpers):
    # Two modules of one distribution under one plugin name (as grafx-core's own defaults are).
    registry.register(helpers.make_plugin("mod_1", [ProcessorSpec("gain", helpers.Gain)]), "a",
                      distribution="grafx-a", version="1.0")
    registry.register(helpers.make_plugin("mod_2", [ProcessorSpec("gain", helpers.Invert),
                                                    ProcessorSpec("invert", helpers.Invert)]),
                      "a", distribution="grafx-a", version="1.0")

    with pytest.warns(PluginWarning, match="'a:gain' is registered 2 times"):
        names = [p.name for p in registry.list_processors()]
    assert names == ["a:gain", "a:gain", "a:invert"]
    with pytest.raises(NameCollisionError, match="'a:gain' is registered 2 times"):
        registry.get_processor("gain")
    assert isinstance(registry.get_processor("invert"), helpers.Invert)
    assert [f.stage for f in registry.plugin_failures()] == ["collision"]


def test_plugin_name_of_another_distribution_is_refused(registry, helpers):
    registry.register(helpers.make_plugin("mod_1", [ProcessorSpec("gain", helpers.Gain)]), "a",
                      distribution="grafx-a", version="1.0")
    with pytest.raises(NameCollisionError, match=r"'a' of grafx-b 2\.0 .*already used by grafx-a 1\.0"):
        registry.register(helpers.make_plugin("mod_2", [ProcessorSpec("gain", helpers.Gain)]), "a",
                          distribution="grafx-b", version="2.0")
    assert [p.distribution for p in registry.list_plugins()] == ["grafx-a"]


def test_misspelled_hook_is_reported_with_a_suggestion(registry, helpers):
    plugin = helpers.make_plugin("typo", None)
    plugin.grafx_register_processor = hookimpl(lambda: [ProcessorSpec("gain", helpers.Gain)])
    with pytest.raises(PluginError, match="unknown hook.*'grafx_register_processor'.*did you mean "
                                          "'grafx_register_processors'"):
        registry.register(plugin, "typo")
    assert registry.list_plugins() == []
    registry.plugin_manager.check_pending()  # the refused plugin left nothing behind


def test_plugin_without_hooks_is_refused(registry, helpers):
    plugin = helpers.make_plugin("forgot_marker", None)
    plugin.grafx_register_processors = lambda: []  # no @hookimpl
    with pytest.raises(PluginError, match="implements no grafx_core hook"):
        registry.register(plugin, "forgot")


def test_bad_hook_results_warn_and_the_other_plugins_still_work(registry, helpers):
    def boom():
        raise RuntimeError("cannot open the DSP library")

    raising = helpers.make_plugin("raising", None)
    raising.grafx_register_processors = hookimpl(boom)
    registry.register(raising, "raising", distribution="grafx-raising", version="0.3")
    registry.register(helpers.make_plugin("wrong", ["gain"]), "wrong")
    registry.register(helpers.make_plugin("good", [ProcessorSpec("gain", helpers.Gain)]), "good")

    with pytest.warns(PluginWarning) as record:
        assert [p.name for p in registry.list_processors()] == ["good:gain"]
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "'raising' from grafx-raising 0.3 [hook]" in messages[0]
    assert "raised RuntimeError: cannot open the DSP library" in messages[0]
    assert "'wrong'" in messages[1] and "expected ProcessorSpec records" in messages[1]
    assert [f.plugin for f in registry.plugin_failures()] == ["raising", "wrong"]
    registry.list_processors()  # each failure warns once (no warning here: filterwarnings=error)


def test_plugins_put_into_an_external_manager_are_listed_and_checked(helpers):
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(helpers.make_plugin("direct", [ProcessorSpec("gain", helpers.Gain)]), "direct")
    typo = helpers.make_plugin("direct_typo", None)
    typo.grafx_register_estimator = hookimpl(lambda: [])
    pm.register(typo, "typo")

    registry = Registry(pm, default_plugins=(), autoload=False)
    with pytest.warns(PluginWarning, match=r"'typo' from \(no distribution\) \[register\].*"
                                           "'grafx_register_estimator'.*did you mean"):
        assert [p.name for p in registry.list_processors()] == ["direct:gain"]
    assert [(p.name, p.origin) for p in registry.list_plugins()] == [("direct", "in-memory")]
    pm.check_pending()


def test_strict_mode_raises_naming_every_failure(helpers):
    registry = Registry(default_plugins=("grafx_core_no_such_module",), autoload=False,
                        environ={"GRAFX_CORE_STRICT_PLUGINS": "1"})
    registry.register(helpers.make_plugin("good", [ProcessorSpec("gain", helpers.Gain)]), "good")
    with pytest.raises(PluginError, match=r"(?s)1 plugin failure.*'core' from grafx-core.*\[import\].*"
                                          "grafx_core_no_such_module.*ModuleNotFoundError"):
        registry.get_processor("gain")
    with pytest.raises(PluginError):  # every later query raises too
        registry.list_plugins()
    assert [f.stage for f in registry.plugin_failures()] == ["import"]


def test_invalid_plugin_names_are_refused(registry, helpers):
    with pytest.raises(PluginError, match="cannot be a plugin name"):
        registry.register(helpers.make_plugin("m", [ProcessorSpec("gain", helpers.Gain)]), "a:b")
