"""Callers waiting for a concurrency slot, woken one per freed slot.

A :class:`Waiter` is one caller that can use any of several routes. It stands
in the first-in, first-out queue of each of those routes' keys; when a slot of
one of them frees, the state hands that slot to the first open waiter of the
key's queue and wakes that waiter alone (:meth:`Waiter.wake`), so a release
costs the same with five hundred waiters as with one. A woken or abandoned
waiter is *closed*: the other queues it still stands in skip it.

Waiters block a thread (:class:`threading.Event`) or await a future on their
own event loop; a release on another thread or loop wakes them through that
loop (``call_soon_threadsafe``). Everything here runs under the state's lock,
but for :func:`park` and :func:`apark`: the two interpreters of a :class:`Park`
step (see :mod:`~langchain_wandb_router.state._steps`), blocking and awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from langchain_wandb_router.state._interface import Lease

__all__ = ["Park", "WaitQueues", "Waiter", "apark", "park", "resolve"]


def resolve(future: asyncio.Future[None]) -> None:
    """Wake whoever awaits ``future`` (if it is still waiting)."""
    if not future.done():
        future.set_result(None)


class Waiter:
    """One caller waiting for a slot of any of its keys.

    Attributes:
        limits: Key -> the caller's hard limit on that key.
        lease: The slot handed over, once one was (the waiter owns it then).
        closed: Served, timed out, cancelled or unreachable: skip it.
    """

    __slots__ = (
        "again",
        "awake",
        "closed",
        "event",
        "future",
        "lease",
        "limits",
        "loop",
    )

    def __init__(
        self,
        limits: dict[str, int | None],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        awake: bool = False,
    ) -> None:
        self.limits = limits
        self.lease: Lease | None = None
        self.closed = False
        self.awake = awake
        """Looking for a slot now, not waiting (a state that does not hand
        slots over directly wakes an idle waiter rather than this one)."""
        self.again = False
        """A wake-up came while awake: look once more before waiting."""
        self.loop = loop
        self.event: threading.Event | None = None
        self.future: asyncio.Future[None] | None = None
        self._rearm()

    def arm(self) -> bool:
        """Get ready to wait; False if a wake-up came meanwhile (look again)."""
        if self.again:
            self.again = False
            return False
        self.awake = False
        self._rearm()
        return True

    def _rearm(self) -> None:
        if self.loop is not None:
            self.future = self.loop.create_future()
        elif self.event is None:
            self.event = threading.Event()
        else:
            self.event.clear()

    def wake(self) -> bool:
        """Wake the caller; False if its event loop is closed (it is gone)."""
        if self.awake:
            self.again = True
            return True
        self.awake = True
        if self.loop is None:
            assert self.event is not None
            self.event.set()
            return True
        future = self.future
        assert future is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            resolve(future)
            return True
        try:
            self.loop.call_soon_threadsafe(resolve, future)
        except RuntimeError:  # the loop was closed with the caller in it
            return False
        return True


class WaitQueues:
    """The FIFO queue of waiters of each key."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[str, deque[Waiter]] = {}

    def join(self, waiter: Waiter) -> None:
        """Put ``waiter`` at the back of the queue of each of its keys."""
        for key in waiter.limits:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append(waiter)

    def leave(self, waiter: Waiter) -> None:
        """Close ``waiter`` and take it out of its queues (timed out, cancelled)."""
        waiter.closed = True
        for key in waiter.limits:
            queue = self._queues.get(key)
            if queue is None:
                continue
            with contextlib.suppress(ValueError):  # popped by a hand-off
                queue.remove(waiter)
            if not queue:
                del self._queues[key]

    def first_open(self, key: str) -> Waiter | None:
        """The first waiter of ``key`` still waiting (closed ones are dropped)."""
        queue = self._queues.get(key)
        while queue:
            waiter = queue[0]
            if not waiter.closed:
                return waiter
            queue.popleft()
        if queue is not None:
            del self._queues[key]
        return None

    def first_idle(self, key: str) -> Waiter | None:
        """The first waiter of ``key`` that is open and not already woken."""
        for waiter in self._queues.get(key, ()):
            if not waiter.closed and not waiter.awake:
                return waiter
        return None

    def is_first(self, waiter: Waiter) -> bool:
        """Whether ``waiter`` is the first open waiter of one of its keys."""
        return any(self.first_open(key) is waiter for key in waiter.limits)

    def served(self, key: str, waiter: Waiter, lease: Lease) -> None:
        """``waiter``, first of ``key``'s queue, got ``lease``: close it."""
        self._queues[key].popleft()
        waiter.closed = True
        waiter.lease = lease

    def waiting(self, keys: Iterable[str]) -> int:
        """How many open waiters stand in the queues of ``keys``."""
        seen = {
            id(w) for key in keys for w in self._queues.get(key, ()) if not w.closed
        }
        return len(seen)


class Park(NamedTuple):
    """A step: wait until ``waiter`` is woken, ``seconds`` at most."""

    waiter: Waiter
    seconds: float


# The two interpreters of a Park: a thread blocks on its event, a task awaits
# its future (a twin only in what it waits on).
def park(step: Park) -> None:
    """Do ``step`` by blocking this thread."""
    event = step.waiter.event
    assert event is not None
    event.wait(max(step.seconds, 0.0))


async def apark(step: Park) -> None:
    """Do ``step`` by awaiting the waiter's future on its own event loop."""
    loop, future = step.waiter.loop, step.waiter.future
    assert loop is not None
    assert future is not None
    timer = loop.call_later(max(step.seconds, 0.0), resolve, future)
    try:
        await future
    finally:
        timer.cancel()
