"""Coroutines stepped by hand, and the things each event loop owns.

The package writes a sync/async operation once, as an ``async`` loop over
injected awaitables (steps drivers, retry loops); the sync method hands it
blocking functions wrapped as coroutines that never suspend, so the loop
finishes at its first ``send``. :func:`run_at_once` is that stepping, written
once for the layers above (it is here, the lowest layer with code, so state
and transport share it).

:class:`LoopShelf` is the one registry of per-event-loop resources (the
transport's connection pools, the state's Redis clients). Async connections
belong to the loop that opened them, so each loop gets its own, closed from
inside that loop when it shuts down: an async generator started on the loop
and parked at its ``yield`` is closed by ``loop.shutdown_asyncgens()`` (which
``asyncio.run`` and every loop runner call), and its ``finally`` closes the
thing while the loop still runs. No task is left pending and nothing runs per
call. The loop itself holds its things (an attribute of the loop object), so a
loop that is never closed takes them along when it is garbage collected; a
loop closed without shutting down has its things let go at the next
registration.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Coroutine,
    MutableMapping,
)
from typing import Any, Generic, TypeVar

__all__ = ["LoopShelf", "run_at_once"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


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


class _Held(Generic[V]):
    """One thing a loop owns, and the parked generator that closes it."""

    __slots__ = ("__weakref__", "closer", "live", "loop", "value")

    def __init__(self, value: V, loop: asyncio.AbstractEventLoop) -> None:
        self.value = value
        self.loop = weakref.ref(loop)
        self.live = True
        self.closer: AsyncGenerator[None, None] | None = None

    def abandon(self) -> None:
        """Finish the closer without closing the thing (its loop is closed).

        Left suspended, the generator's finalizer would ask the closed loop to
        close it. The thing is dropped; its sockets close when the garbage
        collector reclaims them, as nothing may run on a closed loop.
        """
        self.live = False
        if self.closer is not None:
            run_at_once(self.closer.aclose())


async def _close_with_loop(
    held: _Held[V], close: Callable[[V], Awaitable[None]]
) -> AsyncGenerator[None, None]:
    """Parked on its loop until ``shutdown_asyncgens`` (or a discard) closes it."""
    try:
        yield
    finally:
        # Only ever close the thing from its own, still running loop.
        own = held.live and _running_loop() is held.loop()
        held.live = False
        if own:
            await close(held.value)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopShelf(Generic[K, V]):
    """Things each event loop owns, by key, each closed when its loop shuts down.

    Args:
        attribute: The loop attribute that holds this shelf's things. A loop
            class that takes no attributes holds them here instead, until it
            is closed.
        close: How to close a thing; awaited on its own loop.
        weak_keys: Hold keys weakly: a dropped key lets its thing go (the
            garbage collector then finalizes its closer, which the loop runs).
    """

    def __init__(
        self,
        attribute: str,
        close: Callable[[V], Awaitable[None]],
        *,
        weak_keys: bool = False,
    ) -> None:
        self._attribute = attribute
        self._close = close
        self._weak_keys = weak_keys
        self._lock = threading.Lock()
        # Loops that have things, weakly: scanned for closed ones to let go of.
        self._loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._unattributable: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, MutableMapping[K, _Held[V]]
        ] = weakref.WeakKeyDictionary()

    def get(self, key: K) -> V | None:
        """The running loop's live thing for ``key`` (``None``: none yet)."""
        table = self._table(asyncio.get_running_loop())
        held = None if table is None else table.get(key)
        return held.value if held is not None and held.live else None

    def add(self, key: K, value: V) -> V:
        """Give ``value`` to the running loop under ``key``; returns ``value``.

        A thing already under ``key`` is let go unclosed (the caller replaces
        it because it is closed or finished).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            self._release_closed_loops()
            table = self._table(loop)
            if table is None:
                table = self._new_table(loop)
            self._loops.add(loop)
        old = table.get(key)
        if old is not None:
            old.abandon()
        held = table[key] = _Held(value, loop)
        held.closer = _close_with_loop(held, self._close)
        # asend() runs the running loop's "first iteration" hook, which
        # registers the generator with that loop; one step parks it at its
        # yield without awaiting anything.
        run_at_once(held.closer.asend(None))
        return value

    async def discard(self, key: K) -> None:
        """Close the running loop's thing for ``key`` now, if it has one."""
        table = self._table(asyncio.get_running_loop())
        held = None if table is None else table.pop(key, None)
        if held is not None and held.closer is not None:
            await held.closer.aclose()

    def _table(
        self, loop: asyncio.AbstractEventLoop
    ) -> MutableMapping[K, _Held[V]] | None:
        table: MutableMapping[K, _Held[V]] | None = getattr(loop, self._attribute, None)
        if table is None and self._unattributable:
            table = self._unattributable.get(loop)
        return table

    def _new_table(
        self, loop: asyncio.AbstractEventLoop
    ) -> MutableMapping[K, _Held[V]]:
        # The things' connections refer to their loop (and so do the closers,
        # through the loop's generator finalizer), so a table outside the loop
        # holding them would keep a loop that is never closed alive forever,
        # its sockets open. Hung on the loop they form one cycle with it,
        # which the garbage collector frees whole.
        table: MutableMapping[K, _Held[V]] = (
            weakref.WeakKeyDictionary() if self._weak_keys else {}
        )
        try:
            setattr(loop, self._attribute, table)
        except AttributeError:
            self._unattributable[loop] = table
        return table

    def _release_closed_loops(self) -> None:
        """Let go of the things of loops closed without ``shutdown_asyncgens()``.

        A bare ``loop.close()`` never runs the closers; a closed loop that is
        still referenced would otherwise hold its things' sockets until it is
        dropped.
        """
        for loop in list(self._loops):
            if not loop.is_closed():
                continue
            table = self._table(loop)
            if table is not None:
                for held in list(table.values()):
                    held.abandon()
                table.clear()
            self._unattributable.pop(loop, None)
            self._loops.discard(loop)
