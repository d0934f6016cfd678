"""The documentation builds with warnings as errors, its scripts run, and it covers the public API.

Tutorials and examples are Python files that the pages include piece by
piece; running them here (they assert what the pages claim) keeps the pages
from rotting.
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import sys
import warnings
import zlib
from pathlib import Path

import pytest

import grafx_core

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCRIPTS = sorted((DOCS / "tutorials").glob("*.py")) + sorted((DOCS / "examples").glob("*.py"))


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    pytest.importorskip("sphinx")
    from sphinx.cmd.build import build_main

    out = tmp_path_factory.mktemp("html")
    messages = io.StringIO()
    with contextlib.redirect_stderr(messages), warnings.catch_warnings():
        # Sphinx's own deprecations (napoleon uses an API Sphinx 11 removes) are not ours to fix;
        # everything Sphinx reports about the docs is an error through -W.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        status = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(out / ".doctrees"),
                             str(DOCS), str(out)])
    return status, messages.getvalue(), out


@pytest.mark.slow  # the shared Sphinx build takes ~30 s
def test_sphinx_build_passes_with_warnings_as_errors(built_docs):
    status, messages, out = built_docs
    assert status == 0, messages
    assert (out / "index.html").exists() and (out / "api" / "rendering.html").exists()


@pytest.mark.slow  # the shared Sphinx build takes ~30 s
def test_every_public_name_has_an_api_entry(built_docs):
    _, _, out = built_docs
    # objects.inv: four header lines, then zlib-compressed "name domain:role priority uri dispname" lines.
    body = zlib.decompress((out / "objects.inv").read_bytes().split(b"\n", 4)[4]).decode()
    documented = {line.split(" ", 1)[0].rsplit(".", 1)[-1] for line in body.splitlines()}
    missing = [name for name in grafx_core.__all__ if name != "__version__" and name not in documented]
    assert not missing, f"add these to docs/api/*.rst: {missing}"


@pytest.mark.slow  # the shared Sphinx build takes ~30 s
def test_cli_reference_shows_each_commands_own_help(built_docs):
    _, _, out = built_docs
    page = (out / "cli.html").read_text(encoding="utf-8")
    for command in ("demo", "render", "draw", "plugins", "gradients"):
        assert f"usage: grafx-core {command}" in page
    assert "--estimator" in page and "--stages" in page and "--params" in page


def test_every_script_is_included_by_a_page():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.rst"))
    included = set(re.findall(r"literalinclude:: (?:\.\./)?(?:examples/|tutorials/)?([\w.]+\.py)", pages))
    assert {p.name for p in SCRIPTS} <= included


def _require_lv2_plugins() -> None:
    pytest.importorskip("grafx_lv2")
    from grafx_lv2 import LilvUnavailableError, plugin_names
    from grafx_lv2.world import world

    try:
        installed = plugin_names(world().uris())
    except LilvUnavailableError:
        pytest.skip("liblilv-0-0 is not installed (make system-packages installs it as root)")
    for name in ("lsp_compressor_stereo", "calf_saturator", "dpf_3_band_eq"):
        if name not in installed:
            pytest.skip(f"LV2 plug-in {name} is not installed (lsp-plugins-lv2, calf-plugins, dpf-plugins-lv2)")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_runs(script, one_torch_thread, capsys, monkeypatch):
    if script.stem in ("mixing", "neural_proxy", "estimator_accuracy"):
        pytest.importorskip("grafx_pedalboard")
    if script.stem == "lv2_plugins":
        _require_lv2_plugins()
    pytest.importorskip("grafx_dsp")
    monkeypatch.setattr(sys, "argv", [str(script)])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out  # each prints what it shows in the page
