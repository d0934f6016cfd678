"""The one walker of nested parameter trees: leaves by key path, and back.

A parameter tree is a (nested) mapping from names to leaves: a processor's
parameters (``dict``, ``nn.ParameterDict``, ``nn.ModuleDict``), its
``default_parameters()`` or ``controls()``. A path is the tuple of keys from
the top down to a leaf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

__all__ = ["TREES", "is_tree", "leaves", "nest", "lookup"]

TREES = (Mapping, nn.ParameterDict, nn.ModuleDict)
"""What counts as an inner node of a tree."""


def is_tree(value: Any) -> bool:
    """Whether ``value`` is an inner node (a mapping or a torch parameter container)."""
    return isinstance(value, TREES)


def leaves(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every ``(path, leaf)`` of ``tree`` in its own order; a leaf given as ``tree`` is ``[(prefix, tree)]``."""
    if not is_tree(tree):
        return [(prefix, tree)]
    return [leaf for key in tree.keys() for leaf in leaves(tree[key], prefix + (key,))]


def nest(pairs: Iterable[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A nested ``dict`` from ``(path, leaf)`` pairs: the inverse of :func:`leaves`."""
    out: dict[str, Any] = {}
    for path, value in pairs:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def lookup(tree: Any, path: tuple[str, ...]) -> Any:
    """The leaf (or subtree) at ``path``, or ``None`` where a key is missing."""
    for key in path:
        if not is_tree(tree) or key not in tree:
            return None
        tree = tree[key]
    return tree
