"""The console script's launcher: Ctrl-C while grafx_core loads is one line and exit status 130."""

from __future__ import annotations

import sys
import types

import grafx_core_cli


def test_ctrl_c_while_the_library_loads_prints_one_line_and_returns_130(monkeypatch, capsys):
    loading = types.ModuleType("grafx_core.cli")

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt

    loading.__getattr__ = interrupted  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "grafx_core.cli", loading)
    assert grafx_core_cli.main() == 130
    err = capsys.readouterr().err
    assert err == "grafx-core: interrupted while starting\n"


def test_the_launcher_runs_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["grafx-core", "--version"])
    try:
        grafx_core_cli.main()
    except SystemExit as exc:
        assert exc.code == 0
    assert "grafx-core" in capsys.readouterr().out
