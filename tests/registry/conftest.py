"""Fixtures for registry tests: in-memory plugins and fake installed distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Sequence

import pytest
import torch
from torch import nn

from grafx_core import EstimatorSpec, ProcessorSpec, hookimpl
from grafx_core.registry import Registry


class Gain(nn.Module):
    """``y = scale * x * 10 ** (gain_db / 20)``; ``scale`` is a factory option."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def parameter_size(self) -> dict[str, int]:
        return {"gain_db": 1}

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return self.scale * x * torch.pow(10.0, gain_db / 20.0)[:, :, None]


class Invert(nn.Module):
    def parameter_size(self) -> dict[str, int]:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


def make_plugin(module_name: str, processors: Sequence[ProcessorSpec] | None = (),
                estimators: Sequence[EstimatorSpec] | None = None) -> types.ModuleType:
    """A plugin module built in memory; ``None`` leaves a hook unimplemented."""
    module = types.ModuleType(module_name)
    if processors is not None:
        module.grafx_register_processors = hookimpl(lambda: list(processors))
    if estimators is not None:
        module.grafx_register_estimators = hookimpl(lambda: list(estimators))
    return module


@pytest.fixture
def helpers() -> types.SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    return types.SimpleNamespace(make_plugin=make_plugin, Gain=Gain, Invert=Invert,
                                 gain_plugin_source=gain_plugin_source)


@pytest.fixture
def registry() -> Registry:
    """An empty registry on a fresh plugin manager: no defaults, no entry points."""
    return Registry(default_plugins=(), autoload=False)


FakeSite = Callable[..., None]


@pytest.fixture
def fake_site(tmp_path, monkeypatch) -> Iterator[FakeSite]:
    """Install fake distributions (``name-version.dist-info``) on a temporary ``sys.path`` entry.

    Call it as ``fake_site("grafx_a", "0.1", {"a": "grafx_a_plugin"}, {"grafx_a_plugin": source})``.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(distribution: str, version: str, entry_points: dict[str, str],
                sources: dict[str, str]) -> None:
        # Underscores only: a hyphen in the name part makes entry_points() merge fake distributions.
        info = site / f"{distribution}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
        lines = ["[grafx_core]"] + [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in sources.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        importlib.invalidate_caches()

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def gain_plugin_source(*names: str) -> str:
    """Source of a plugin module registering a :class:`Gain`-like processor under each name."""
    specs = ", ".join(f"ProcessorSpec({n!r}, Gain, 'gain')" for n in names)
    return f"""
        import torch
        from grafx_core import ProcessorSpec, hookimpl

        class Gain(torch.nn.Module):
            def parameter_size(self):
                return {{"gain_db": 1}}

            def forward(self, x, gain_db):
                return x * torch.pow(10.0, gain_db / 20.0)[:, :, None]

        @hookimpl
        def grafx_register_processors():
            return [{specs}]
        """
