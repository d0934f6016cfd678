"""A graph or options file alone never makes a render load native code: ``pedalboard:external`` loads a
plug-in only from a folder the user allowed (``--allow-plugins``, ``grafx_core.allow_plugin_folders``).

The plug-in is a real shared library in a VST3 bundle whose load-time constructor writes a marker file:
the marker proves whether its machine code ran, which no Python-level stand-in could show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import wavfile

from grafx_core import Graph, NativeCodeError, allow_plugin_folders, get_processor
from grafx_core.native_code import _forget_allowed_folders

CONSTRUCTOR = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void loaded(void) {
    const char *marker = getenv("GRAFX_TEST_MARKER");
    FILE *f = marker ? fopen(marker, "w") : NULL;
    if (f) { fputs("native code ran", f); fclose(f); }
}
"""


@pytest.fixture
def bundle(tmp_path):
    """``plugins/evil.vst3``: a bundle whose library announces that it was loaded."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the test plug-in library")
    library = tmp_path / "plugins" / "evil.vst3" / "Contents" / "x86_64-linux" / "evil.so"
    library.parent.mkdir(parents=True)
    (tmp_path / "evil.c").write_text(CONSTRUCTOR)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(tmp_path / "evil.c")], check=True)
    return tmp_path / "plugins" / "evil.vst3"


def _render(tmp_path, bundle, *extra):
    graph = Graph()
    graph.add_serial_chain(["in", "pedalboard:external", "out"])
    graph.save(tmp_path / "g.json")
    (tmp_path / "options.json").write_text(json.dumps({"pedalboard:external": {"path": str(bundle)}}))
    wavfile.write(tmp_path / "in.wav", 44100, np.zeros((4410, 2), np.float32))
    marker = tmp_path / "marker"
    done = subprocess.run([sys.executable, "-m", "grafx_core", "render", str(tmp_path / "g.json"), "-s",
                           str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--options",
                           str(tmp_path / "options.json"), *extra],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GRAFX_TEST_MARKER": str(marker)})
    return done, marker


def test_an_options_file_naming_a_plugin_is_refused_and_nothing_is_loaded(tmp_path, bundle):
    done, marker = _render(tmp_path, bundle)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    line, = done.stderr.strip().splitlines()
    assert f"pedalboard:external would load native code from {str(bundle)!r}" in line
    assert f"--allow-plugins {bundle.parent}" in line
    assert not marker.exists() and not (tmp_path / "out.wav").exists()


def test_allowing_its_folder_on_the_command_line_loads_it(tmp_path, bundle):
    done, marker = _render(tmp_path, bundle, "--allow-plugins", str(bundle.parent))
    assert marker.read_text() == "native code ran"  # then pedalboard rejects it: it is no VST3
    assert done.returncode == 1 and "would load native code" not in done.stderr


def test_in_python_the_registry_needs_the_folder_allowed(tmp_path, bundle):
    try:
        with pytest.raises(NativeCodeError, match="allow_plugin_folders"):
            get_processor("pedalboard:external", path=str(bundle))
        link = tmp_path / "allowed" / "link.vst3"
        link.parent.mkdir()
        link.symlink_to(bundle, target_is_directory=True)
        allow_plugin_folders(link.parent)
        with pytest.raises(NativeCodeError, match="link.vst3"):  # a link out of an allowed folder is no way in
            get_processor("pedalboard:external", path=str(link))
    finally:
        _forget_allowed_folders()
