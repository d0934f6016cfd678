"""Parameter containers that take any string as a key.

``nn.ModuleDict`` and ``nn.ParameterDict`` refuse keys containing ``"."`` and
keys equal to an attribute of ``nn.Module`` (``type``, ``half``, ``train``,
``float``...), yet a node type such as ``"plugin:gain.v2"`` or a parameter
named ``type`` is legitimate. These subclasses store such a key under an
escaped attribute name (percent-encoding its ``.`` and ``%`` characters and,
for a clash, its first character) and show the user's key everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from torch import nn

__all__ = ["ParameterModules", "ParameterTree", "escape_key"]

_PROBES = (nn.ParameterDict(), nn.ModuleDict())


def escape_key(key: str) -> str:
    """The attribute name under which a container stores ``key`` (``key`` itself when that is safe)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"a parameter container key must be a non-empty string, got {key!r}")
    name = key.replace("%", "%25").replace(".", "%2E")
    if any(hasattr(probe, name) for probe in _PROBES):
        name = "".join(f"%{byte:02X}" for byte in name[0].encode()) + name[1:]
    return name


class ParameterTree(nn.ParameterDict):
    """An ``nn.ParameterDict`` whose keys may contain ``"."`` or equal a module attribute."""

    def _key_to_attr(self, key: str) -> str:
        return escape_key(key)


class ParameterModules(nn.ModuleDict):
    """An ``nn.ModuleDict`` (node type -> parameters) whose keys may be any non-empty string."""

    def __getitem__(self, key: str) -> Any:
        return self._modules[escape_key(key)]

    def __setitem__(self, key: str, module: nn.Module) -> None:
        self.add_module(escape_key(key), module)

    def __delitem__(self, key: str) -> None:
        del self._modules[escape_key(key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(key) and escape_key(key) in self._modules

    def __iter__(self) -> Iterator[str]:
        return (unquote(name) for name in self._modules)

    def keys(self) -> list[str]:  # type: ignore[override]
        return [unquote(name) for name in self._modules]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(unquote(name), module) for name, module in self._modules.items()]

    def pop(self, key: str) -> nn.Module:
        return self._modules.pop(escape_key(key))
