"""grafx-ardour follows the plugin template and is found through its entry point."""

from __future__ import annotations

import grafx_core
import pytest

import grafx_ardour
from grafx_ardour import ArdourError, ArdourNotFoundError, SessionExistsError, UnmappableGraphError


def test_version_and_public_names_resolve():
    assert grafx_ardour.__version__ != "0+unknown"
    for name in grafx_ardour.__all__:
        assert getattr(grafx_ardour, name) is not None
    with pytest.raises(AttributeError):
        grafx_ardour.no_such_name


def test_errors_share_one_root_under_grafx_error():
    for error in (ArdourNotFoundError, SessionExistsError, UnmappableGraphError):
        assert issubclass(error, ArdourError)
    assert issubclass(ArdourError, grafx_core.errors.GrafxError)


def test_console_and_exporter_are_registered_through_the_entry_point():
    console = grafx_core.get_console("ardour")
    exporter = grafx_core.get_exporter("ardour")
    assert (console.name, console.distribution) == ("ardour:ardour", "grafx-ardour")
    assert (exporter.name, exporter.distribution) == ("ardour:ardour", "grafx-ardour")
    built = console.spec.factory(["kick", "bass"])
    assert "dsp:a_comp" in built.graph.processor_types()
