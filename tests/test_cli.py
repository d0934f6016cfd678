"""The grafx-core command line: subcommand table, `plugins` table and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
import torch

import grafx_core.registry as registry_module
from grafx_core import EstimatorSpec, ProcessorSpec, __version__, hookimpl
from grafx_core.cli import COMMANDS, main
from grafx_core.registry import Registry


class _Scale(torch.nn.Module):
    gradient_kind = "spsa"

    def parameter_size(self):
        return {"gain": 1}

    def forward(self, x, gain):
        return x * gain[:, :, None]


def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, result in hooks.items():
        setattr(module, hook, hookimpl(lambda result=result: result))
    return module


@pytest.fixture
def cli_registry():
    registry = Registry(default_plugins=(), autoload=False)
    registry.register(_module("mod_fx", grafx_register_processors=[
        ProcessorSpec("scale", _Scale, "Scale by a factor", gradient="spsa"),
        ProcessorSpec("compressor_long_name", _Scale, "x", gradient="finite-difference")]),
        "fx", distribution="grafx-fx", version="0.4")
    registry.register(_module("mod_est", grafx_register_estimators=[EstimatorSpec("mine", dict, "An estimator")]),
                      "est")
    registry.register(_module("mod_bad", grafx_register_processors="not a list"), "bad", distribution="grafx-bad")
    previous = registry_module.set_default_registry(registry)
    yield registry
    registry_module.set_default_registry(previous)


def test_plugins_table_lists_processors_with_gradient_estimators_and_failures(cli_registry, capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "NAME", "KIND", "DESCRIPTION"]
    assert lines[1].split() == ["bad", "grafx-bad", "-"]
    assert lines[2].split() == ["est", "(no", "distribution)", "mine", "estimator", "An", "estimator"]
    assert lines[3].split() == ["fx", "grafx-fx", "0.4", "compressor_long_name", "finite-difference", "x"]
    assert lines[4].split() == ["scale", "spsa", "Scale", "by", "a", "factor"]
    assert lines[3].index("compressor_long_name") == lines[4].index("scale")  # columns line up
    assert lines[3].rindex("x") == lines[4].index("Scale")
    assert lines[6] == "1 plugin(s) failed:"
    assert lines[7].startswith("  bad (grafx-bad) [hook]: grafx_register_processors() in 'mod_bad' returned "
                               "'not a list'")


def test_plugins_json_mirrors_the_registry(cli_registry, capsys):
    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["distribution"], p["version"]) for p in report["plugins"]] == [
        ("bad", "grafx-bad", None), ("est", None, None), ("fx", "grafx-fx", "0.4")]
    fx = report["plugins"][2]
    assert fx["processors"] == [
        {"name": "fx:compressor_long_name", "short_name": "compressor_long_name",
         "gradient": "finite-difference", "description": "x"},
        {"name": "fx:scale", "short_name": "scale", "gradient": "spsa", "description": "Scale by a factor"}]
    assert report["plugins"][1]["estimators"] == [
        {"name": "est:mine", "short_name": "mine", "description": "An estimator"}]
    assert [(f["plugin"], f["stage"]) for f in report["failures"]] == [("bad", "hook")]


def test_strict_mode_error_is_one_line_with_exit_status_1(capsys):
    registry = Registry(default_plugins=("grafx_core_missing_default",), autoload=False,
                        environ={"GRAFX_CORE_STRICT_PLUGINS": "1"})
    previous = registry_module.set_default_registry(registry)
    try:
        assert main(["plugins"]) == 1
    finally:
        registry_module.set_default_registry(previous)
    err = capsys.readouterr().err
    assert err.startswith("grafx-core plugins: error: 1 plugin failure(s) with GRAFX_CORE_STRICT_PLUGINS=1")
    assert "grafx_core_missing_default" in err


def test_no_command_prints_help_and_version_flag(capsys):
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().err
    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"grafx-core {__version__}"
    assert set(COMMANDS) >= {"plugins"}


def test_python_dash_m_lists_the_installed_example_plugin():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAFX_CORE_")}
    env["GRAFX_CORE_PLUGINS"] = "example"
    out = subprocess.run([sys.executable, "-m", "grafx_core", "plugins", "--json"], capture_output=True,
                         text=True, check=True, env=env)
    report = json.loads(out.stdout)
    names = {p["name"]: [q["name"] for q in p["processors"]] for p in report["plugins"]}
    assert names["example"] == ["example:crossfade", "example:mid_side", "example:soft_clip"]
    assert "core" in names and report["failures"] == []
