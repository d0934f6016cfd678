"""How a black box gets an effect instance for each item, and the first-use determinism check.

Two lifecycles:

* ``"per-thread"``: every worker thread makes one instance with
  ``effect_factory()`` on first use and reuses it for every later item
  (cheap; right for effects whose output does not depend on what ran before,
  such as pedalboard's built-ins with ``reset=True``);
* ``"per-item"``: every item gets a fresh ``effect_factory()``, closed
  (``close()``, where it has one) once the item is rendered, for effects that
  carry state from one call to the next that no reset clears (pedalboard's
  Reverb, LV2 plug-ins).

``serialise_instantiation=True`` makes every factory call hold one
process-wide lock, for libraries whose instantiation is not thread-safe
(concurrent instantiation crashed some LV2 plug-ins).

At its first forward call a black box renders its first item twice the way
its lifecycle would (twice on one instance, or on two fresh ones) and raises
:class:`~grafx_core.errors.NondeterministicEffectError` when the two outputs
are not bit-identical: a reused effect that remembers the previous call, or an
effect that is random, would otherwise give gradients and renders that depend
on the order items happen to run in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import BlackBoxError, NondeterministicEffectError
from .runner import PerThread

__all__ = ["INSTANCE_POLICIES", "Instances", "check_bit_exact", "instantiation_lock"]

T = TypeVar("T")

INSTANCE_POLICIES = ("per-thread", "per-item")
"""Lifecycles of a black box's effect instances (see the module documentation)."""

# Re-entrant: a factory may build a board whose parts are made by other serialised factories.
_INSTANTIATION_LOCK = threading.RLock()


def instantiation_lock() -> threading.RLock:
    """The process-wide lock serialised factory calls hold (for hosts that make instances themselves)."""
    return _INSTANTIATION_LOCK


class Instances(Generic[T]):
    """The effect instances of one black box, handed out by lifecycle.

    Pickles as its factory and options; instances never travel.

    Args:
        factory: makes one effect instance, called with no arguments.
        policy: ``"per-thread"`` or ``"per-item"``.
        serialise: whether factory calls hold :func:`instantiation_lock`.
        name: the black box's name, for error messages.

    Raises:
        BlackBoxError: ``factory`` is not callable or ``policy`` is unknown.
    """

    def __init__(self, factory: Callable[[], T], policy: str = "per-thread", serialise: bool = False,
                 name: str = "black box") -> None:
        if not callable(factory):
            raise BlackBoxError(f"black box {name!r}: effect_factory must be callable, got {factory!r}")
        if policy not in INSTANCE_POLICIES:
            raise BlackBoxError(f"black box {name!r}: instances={policy!r} is not one of {INSTANCE_POLICIES}")
        if not isinstance(serialise, bool):
            raise BlackBoxError(f"black box {name!r}: serialise_instantiation must be True or False, "
                                f"got {serialise!r}")
        self.factory, self.policy, self.serialise, self.name = factory, policy, serialise, name
        self._per_thread: PerThread[T] = PerThread(self.make)

    def make(self) -> T:
        """A new instance (under the process-wide lock when serialised)."""
        if not self.serialise:
            return self.factory()
        with _INSTANTIATION_LOCK:
            return self.factory()

    @contextmanager
    def acquire(self) -> Iterator[T]:
        """The instance to render one item with: this thread's, or a fresh one closed afterwards."""
        if self.policy == "per-thread":
            yield self._per_thread.get()
            return
        effect = self.make()
        try:
            yield effect
        finally:
            close = getattr(effect, "close", None)
            if callable(close):
                close()

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory, "policy": self.policy, "serialise": self.serialise, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["factory"], state["policy"], state["serialise"], state["name"])  # type: ignore[misc]


def check_bit_exact(name: str, first: np.ndarray, second: np.ndarray, policy: str | None) -> None:
    """Raise unless two renders of one item with the same parameters are bit-identical.

    Args:
        name: the black box's name.
        first, second: the two outputs, ``[channels, samples]``.
        policy: the black box's instance lifecycle, or ``None`` for a plain function.

    Raises:
        NondeterministicEffectError: the outputs differ; the message names the
            processor, the peak difference and what to do about it.
    """
    a, b = np.asarray(first), np.asarray(second)
    if a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes():
        return
    if a.shape != b.shape:
        what = f"shapes {a.shape} and {b.shape}"
    else:
        with np.errstate(invalid="ignore"):
            what = f"a peak difference of {float(np.nanmax(np.abs(a.astype(np.float64) - b))):.3g}"
    if policy == "per-thread":
        advice = ("the effect keeps state from one call to the next; use instances='per-item' "
                  "(a fresh instance per item)")
    elif policy == "per-item":
        advice = "even fresh instances differ, so the effect is random or has hidden global state"
    else:
        advice = "the function is not deterministic (seed it from its inputs)"
    lifecycle = f" (instances={policy!r})" if policy is not None else ""
    raise NondeterministicEffectError(
        f"black box {name!r}: two renders of the first item with the same parameters gave {what}{lifecycle}; "
        f"{advice}. Pass check_determinism=False to accept it anyway.")
