"""Name resolution: qualified ``plugin:name``, unique short names, collisions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Generic, TypeVar

from ..errors import AmbiguousNameError, NameCollisionError, UnknownNameError
from ._records import ConsoleInfo, EstimatorInfo, ExporterInfo, ProcessorInfo

__all__ = ["Catalog"]

Entry = TypeVar("Entry", ProcessorInfo, EstimatorInfo, ConsoleInfo, ExporterInfo)


def _describe(entries: Iterable[ProcessorInfo | EstimatorInfo | ConsoleInfo | ExporterInfo]) -> str:
    return ", ".join(f"{e.name!r} from {e.distribution_label}" for e in entries)


class Catalog(Generic[Entry]):
    """Every registration of one kind (processors or estimators), looked up by name.

    Args:
        kind: ``"processor"`` or ``"estimator"``, for messages.
        entries: the registrations, in registration order.
    """

    def __init__(self, kind: str, entries: Iterable[Entry]) -> None:
        self.kind = kind
        self._by_name: dict[str, list[Entry]] = {}
        self._by_short: dict[str, list[str]] = {}
        for entry in entries:
            same = self._by_name.setdefault(entry.name, [])
            if not same:
                self._by_short.setdefault(entry.short_name, []).append(entry.name)
            same.append(entry)

    def entries(self) -> list[Entry]:
        """All registrations sorted by qualified name (colliding ones included)."""
        return [e for name in sorted(self._by_name) for e in self._by_name[name]]

    def collisions(self) -> list[list[Entry]]:
        """The groups of registrations that claim one qualified name."""
        return [group for _, group in sorted(self._by_name.items()) if len(group) > 1]

    def collision_message(self, group: list[Entry]) -> str:
        """Why a qualified name registered several times cannot be used."""
        return (
            f"{self.kind} {group[0].name!r} is registered {len(group)} times: "
            f"{_describe(group)}; uninstall one of them or give them distinct plugin names"
        )

    def resolve(self, name: str) -> Entry:
        """The registration called ``name`` (qualified, or short while it is unique).

        Raises:
            UnknownNameError: nothing has this name; the message lists close matches.
            AmbiguousNameError: a short name offered by several plugins; the
                message lists the qualified candidates.
            NameCollisionError: two registrations of one qualified name; the
                message names both distributions.
        """
        if not isinstance(name, str) or not name:
            raise UnknownNameError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if ":" in name:
            qualified = name
        else:
            candidates = self._by_short.get(name, [])
            if len(candidates) > 1:
                raise AmbiguousNameError(
                    f"{self.kind} name {name!r} is ambiguous: "
                    f"{_describe(self._by_name[q][0] for q in sorted(candidates))}; "
                    "use a qualified name such as "
                    f"{sorted(candidates)[0]!r}"
                )
            qualified = candidates[0] if candidates else name
        group = self._by_name.get(qualified)
        if not group:
            raise UnknownNameError(self._unknown_message(name))
        if len(group) > 1:
            raise NameCollisionError(self.collision_message(group))
        return group[0]

    def _unknown_message(self, name: str) -> str:
        known = sorted(self._by_name)
        if not known:
            return f"no {self.kind} named {name!r}: no {self.kind}s are registered"
        close = difflib.get_close_matches(name, known + sorted(self._by_short), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no {self.kind} named {name!r}{hint} (registered: {', '.join(known)})"
