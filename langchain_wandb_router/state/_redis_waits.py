"""Waiting for a slot held in Redis without polling Redis once per waiter.

A process's callers waiting for a key's slot stand in one local FIFO queue per
key (:class:`~langchain_wandb_router.state._waiters.WaitQueues`). A waiter runs the
acquire script again only when it is woken, and a release wakes one waiter:

- a release made by this process (any thread or loop) wakes the first idle
  waiter of its key here;
- a release made by another process reaches this one through Redis pub/sub:
  the release script publishes on the key's channel, and one subscription per
  event loop listens on the channels its waiters want, each message waking one
  waiter (messages this process published itself are ignored: its own wake
  already happened);
- as a safety net (a lease that expired, a lost message, no pub/sub at all),
  the first waiter of each queue looks again every so often; the others only
  watch for their turn.

So a release costs about one try of the acquire script per process that has
waiters, whatever their number. The scripts' channels share the keys' hash
tag, and classic pub/sub reaches every node of a Redis Cluster.

:meth:`RedisWaitRoom.wait` is a caller's wait written as steps (see
``_steps``): the looks it is given, a :class:`Listen` and
:class:`~langchain_wandb_router.state._waiters.Park` steps between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from langchain_wandb_router.state._interface import Lease, SlotTimeoutError, Want
from langchain_wandb_router.state._lua import reply_text
from langchain_wandb_router.state._steps import Steps
from langchain_wandb_router.state._waiters import Park, Waiter, WaitQueues

__all__ = ["CHANNEL_SUFFIX", "Listen", "RedisWaitRoom", "channel_of"]

logger = logging.getLogger("langchain_wandb_router")

CHANNEL_SUFFIX = ":free"
"""A key's release channel is the key's lease key plus this."""

# How long a queue's first waiter waits before looking again by itself: with
# a subscription, only for slots freed without a release (expired leases);
# without one, for other processes' releases too.
_FIRST_LISTENING = 0.5
_FIRST_DEAF = 0.05
# Others look again this rarely, only to notice they have become first.
_OTHERS = 2.0
# A subscription reads for this long before checking it is still wanted.
_READ = 1.0


def channel_of(key: str) -> str:
    """The pub/sub channel a release of ``key`` is announced on."""
    return f"{key}:lease{CHANNEL_SUFFIX}"


class Listen(NamedTuple):
    """A step: subscribe to the waiter's keys; answers whether it listens.

    Only an async waiter does (through :meth:`RedisWaitRoom.listen`); a sync
    one is answered ``False`` and looks again by itself.
    """

    waiter: Waiter


class RedisWaitRoom:
    """The local queues and subscriptions of one Redis state.

    Args:
        origin: This state's id; its own release messages carry it.
        pubsub: Makes a pub/sub object on the running loop's client, or
            ``None`` when the client has none.
    """

    def __init__(
        self, origin: str, pubsub: Callable[[], Awaitable[Any | None]]
    ) -> None:
        self.origin = origin
        self._pubsub = pubsub
        self._lock = threading.Lock()
        self._queues = WaitQueues()
        self._listeners: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Listener
        ] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ queues

    def join(self, waiter: Waiter) -> None:
        """Queue ``waiter`` on each of its keys."""
        with self._lock:
            self._queues.join(waiter)

    def leave(self, waiter: Waiter) -> None:
        """Take ``waiter`` out; pass on a wake-up it did not use."""
        with self._lock:
            unused = (waiter.awake or waiter.again) and waiter.lease is None
            self._queues.leave(waiter)
            if unused:
                for key in waiter.limits:
                    self._wake_one(key)
            listener = self._listeners.get(waiter.loop) if waiter.loop else None
        if listener is not None:
            listener.release(waiter)

    def wake(self, key: str) -> None:
        """A slot of ``key`` was freed: wake its first idle waiter here."""
        with self._lock:
            self._wake_one(key)

    def _wake_one(self, key: str) -> None:
        while True:
            # An idle waiter if there is one; else the first, already looking,
            # looks once more (a slot freed while it looked is not missed).
            waiter = self._queues.first_idle(key) or self._queues.first_open(key)
            if waiter is None or waiter.wake():
                return
            self._queues.leave(waiter)  # its loop is closed

    def arm(self, waiter: Waiter) -> bool:
        """Ready ``waiter`` to wait; False if it was woken meanwhile."""
        with self._lock:
            return waiter.arm()

    def patience(self, waiter: Waiter, listening: bool) -> float:
        """How long ``waiter`` waits before looking again by itself."""
        with self._lock:
            first = self._queues.is_first(waiter)
        if not first:
            return _OTHERS
        return _FIRST_LISTENING if listening else _FIRST_DEAF

    def waiting(self, keys: list[str]) -> int:
        """How many callers of this process wait on any of ``keys``."""
        with self._lock:
            return self._queues.waiting(keys)

    def wait(
        self,
        wants: Sequence[Want],
        deadline: float,
        look: Callable[[], Steps[Any, Lease | Want]],
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Steps[Any, Lease]:
        """A caller's steps after a first look found no slot.

        Args:
            wants: ``(key, hard_limit)`` of each route the caller can use.
            deadline: When to give up (``clock``'s time).
            look: The steps of one look: a lease, or the first full cap.
            clock: Monotonic seconds.
            loop: An async caller's event loop (``None``: a thread).

        Raises:
            SlotTimeoutError: No slot came free in time.
        """
        # Awake while it looks: a release meanwhile makes it look again.
        waiter = Waiter(dict(wants), loop, awake=True)
        self.join(waiter)
        try:
            # Subscribed before the next look, so no release goes unheard.
            listening = yield Listen(waiter)
            while True:
                got = yield from look()
                if isinstance(got, Lease):
                    waiter.lease = got
                    return got
                now = clock()
                if now >= deadline:
                    raise SlotTimeoutError(*got)
                if self.arm(waiter):
                    wait = self.patience(waiter, listening)
                    yield Park(waiter, min(deadline - now, wait))
        finally:
            self.leave(waiter)

    # ---------------------------------------------------------- subscriptions

    async def listen(self, waiter: Waiter) -> bool:
        """Subscribe this loop to ``waiter``'s keys; False if it cannot listen."""
        loop = asyncio.get_running_loop()
        with self._lock:
            listener = self._listeners.get(loop)
            if listener is None or listener.closing:
                listener = _Listener(self, loop)
                self._listeners[loop] = listener
        return await listener.add(waiter)

    def _heard(self, channel: str, origin: str) -> None:
        if origin == self.origin or not channel.endswith(CHANNEL_SUFFIX):
            return
        key = channel[: -len(CHANNEL_SUFFIX)].removesuffix(":lease")
        self.wake(key)

    def _gone(self, listener: _Listener) -> None:
        with self._lock:
            if self._listeners.get(listener.loop) is listener:
                del self._listeners[listener.loop]


class _Listener:
    """One event loop's subscription to the channels its waiters want."""

    def __init__(self, room: RedisWaitRoom, loop: asyncio.AbstractEventLoop) -> None:
        self.room = room
        self.loop = loop
        self.closing = False
        self._users: set[int] = set()
        self._channels: set[str] = set()
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._broken = False
        self._ready = asyncio.Lock()

    async def add(self, waiter: Waiter) -> bool:
        """Listen on ``waiter``'s channels before it looks a last time."""
        self._users.add(id(waiter))
        if self._broken:
            return False
        wanted = [channel_of(key) for key in waiter.limits]
        async with self._ready:
            try:
                if self._pubsub is None:
                    self._pubsub = await self.room._pubsub()
                    if self._pubsub is None:
                        self._broken = True
                        return False
                new = [c for c in wanted if c not in self._channels]
                if new:
                    await self._pubsub.subscribe(*new)
                    self._channels.update(new)
            except Exception:  # no pub/sub here: the first waiter polls
                logger.debug("Redis pub/sub unavailable; polling", exc_info=True)
                self._broken = True
                return False
        if self._task is None:
            self._task = self.loop.create_task(self._read())
        return True

    def release(self, waiter: Waiter) -> None:
        """``waiter`` stopped waiting; the last one out ends the subscription."""
        self._users.discard(id(waiter))
        if not self._users:
            self.closing = True
            self.room._gone(self)

    async def _read(self) -> None:
        try:
            while self._users:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_READ
                )
                if message and message.get("type") == "message":
                    channel = reply_text(message["channel"])
                    self.room._heard(channel, reply_text(message["data"]))
        except asyncio.CancelledError:
            raise
        except Exception:  # a lost subscription: the first waiters poll
            logger.debug("Redis pub/sub subscription lost; polling", exc_info=True)
            self._broken = True
        finally:
            self.closing = True
            self.room._gone(self)
            pubsub, self._pubsub = self._pubsub, None
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    closer = getattr(pubsub, "aclose", None) or pubsub.close
                    await closer()
