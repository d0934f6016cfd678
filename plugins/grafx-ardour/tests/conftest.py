"""Shared fixtures: the tests that run Ardour skip with one line where it is not installed."""

from __future__ import annotations

import pytest

from grafx_ardour import INSTALL_HINT, ardour_available


@pytest.fixture
def ardour():
    """Skip unless ardour7-lua and ardour7-export are installed."""
    if not ardour_available():
        pytest.skip(f"Ardour 7 is not installed ({INSTALL_HINT}; make system-packages does it as root)")
