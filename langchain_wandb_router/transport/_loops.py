"""Coroutines stepped by hand: the blocking half of the house's one driver.

The package writes a sync/async operation once, as an ``async`` loop over
injected awaitables (steps drivers, retry loops); the sync method hands it
blocking functions wrapped as coroutines that never suspend, so the loop
finishes at its first ``send``. :func:`run_at_once` is that stepping, written
once for every layer above (it is here, the lowest layer with code, so state
and transport share it); it also parks and finishes async generators that an
event loop must own but that are started outside an ``await``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_at_once"]

T = TypeVar("T")


def run_at_once(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on this thread; it must never suspend.

    Raises:
        RuntimeError: ``coro`` awaited something that suspends (a bug: a
            blocking interpreter was handed an awaiting step).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        answer: T = stop.value
        return answer
    coro.close()
    raise RuntimeError("a blocking step suspended")  # pragma: no cover
