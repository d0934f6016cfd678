"""Shared fixtures: LV2 tests skip with one line where liblilv or a plug-in is missing."""

from __future__ import annotations

import pytest
import torch

from grafx_lv2 import LilvUnavailableError
from grafx_lv2.world import world
from grafx_lv2.names import plugin_names

PACKAGES = {"lsp_": "lsp-plugins-lv2", "x42_": "x42-plugins", "calf_": "calf-plugins", "dpf_": "dpf-plugins-lv2"}


def _installed() -> dict[str, str]:
    try:
        return plugin_names(world().uris())
    except LilvUnavailableError:
        return {}


INSTALLED = _installed()


@pytest.fixture
def require():
    """``require(name)``: skip unless liblilv and the plug-in are installed; returns the name."""

    def check(name: str) -> str:
        if not INSTALLED:
            pytest.skip("liblilv-0-0 is not installed (make system-packages installs it as root)")
        if name not in INSTALLED:
            package = next((p for prefix, p in PACKAGES.items() if name.startswith(prefix)), "its package")
            pytest.skip(f"LV2 plug-in {name} is not installed (Debian {package})")
        return name

    return check


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _noise(nodes: int, channels: int = 2, samples: int = 2048, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    envelope = torch.linspace(1.0, 0.2, samples)
    return torch.randn(nodes, channels, samples, generator=gen) * 0.2 * envelope


@pytest.fixture
def noise():
    """``noise(nodes, channels=2, samples=2048, seed=0)``: seeded decaying noise at about -17 dBFS RMS."""
    return _noise
