"""Sphinx configuration of the grafx-core documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the test
suite builds it the same way into a temporary folder).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

project = "grafx-core"
author = "grafx-core contributors"
copyright = "grafx-core contributors, Apache-2.0"
try:
    release = _installed_version("grafx-core")
except PackageNotFoundError:  # a source tree that was never installed
    release = "0+unknown"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "grafx_cli_help",
]
exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "alabaster"
version = release
html_title = f"grafx-core {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
