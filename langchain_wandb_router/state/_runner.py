"""Running a ``RedisState``'s steps: scripts, their outage handling, two interpreters.

A Redis state writes each operation once, as an :class:`Op` (a script call,
what to answer with its result and what to answer without Redis), and longer
work (waiting for a slot, reading several cooldowns) as steps (see
``_steps``). :class:`Runner` runs them: a script is tried unless an outage is
resting, a busy client is waited for, a failure marks the outage, the first
answer after one replays the writes that failed, and the servers' eviction
policy is read (and warned about) once. Its two interpreters do one step
each, blocking (sync methods) or awaited (async methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import redis

from langchain_wandb_router.state._clients import ScriptClients, pool_exhausted
from langchain_wandb_router.state._ledger import Ledger
from langchain_wandb_router.state._lua import ScriptCall
from langchain_wandb_router.state._outage import Outage, Pending
from langchain_wandb_router.state._redis_waits import Listen, RedisWaitRoom
from langchain_wandb_router.state._steps import Steps, adrive, drive
from langchain_wandb_router.state._waiters import Park, apark, park

__all__ = ["DOWN", "Op", "Runner", "Step", "down", "ignore"]

logger = logging.getLogger("langchain_wandb_router")

T = TypeVar("T")

# Waiting for a free connection of a busy client: this long, with jitter so
# callers do not retry in lockstep.
_FIRST_POLL = 0.002
# A client whose pool stays exhausted this long is no longer just busy: the
# wait ends, and the call is answered as in an outage.
_MAX_BUSY = 30.0

DOWN: Any = object()
"""An answer meaning "Redis is unavailable" (scripts never return it)."""

# Tasks that undo a cancelled acquire; kept so they are not garbage-collected.
_BACKGROUND: set[asyncio.Task[None]] = set()


@dataclass(slots=True)
class Op(Generic[T]):
    """One script call and how to answer with its result, or without Redis.

    Attributes:
        call: The script call.
        done: The answer from the script's result.
        down: The answer while Redis is unavailable.
        undo: If the call is cancelled in flight, the op undoing what it may
            have done (a taken slot is given back).
    """

    call: ScriptCall
    done: Callable[[Any], T]
    down: Callable[[], T]
    undo: Callable[[], Op[None]] | None = None

    def answer(self, got: Any) -> T:
        """The op's answer, given what running its call gave (or :data:`DOWN`)."""
        return self.down() if got is DOWN else self.done(got)


def ignore(_: Any) -> None:
    """An :attr:`Op.done` for scripts whose answer says nothing."""
    return None


def down() -> Any:
    """An :attr:`Op.down` that answers :data:`DOWN` itself."""
    return DOWN


# The steps besides a ScriptCall (run as is), an Op (run with its outage
# handling), a Park (from _waiters) and a Listen (from _redis_waits).
class _Pause(NamedTuple):
    """Sleep this long (a busy client's connections are all in use)."""

    seconds: float


class _Marker(NamedTuple):
    name: str


_ANSWERED = _Marker("answered")  # the script answered: honour a lost cancel
_POLICIES = _Marker("policies")  # read the servers' maxmemory-policy

Step = ScriptCall | Op[Any] | _Pause | Listen | Park | _Marker
"""One thing a Redis state's steps ask its runner to do."""


def _jitter() -> float:
    return random.uniform(0.5, 1.0)  # noqa: S311 - spreading polls, not crypto


class Runner:
    """Runs one Redis state's ops and steps, blocking or awaited.

    Args:
        clients: The state's clients.
        outage: The state's outage (rest, fallback, pending writes).
        ledger: The state's budget bookkeeping (replayed answers go to it).
        room: The state's waiters (a Listen subscribes there).
    """

    def __init__(
        self,
        clients: ScriptClients,
        outage: Outage,
        ledger: Ledger,
        room: RedisWaitRoom,
    ) -> None:
        self._clients, self._outage = clients, outage
        self._ledger, self._room = ledger, room
        self._lock = threading.Lock()
        self._eviction_checked = False

    def run(self, op: Op[T]) -> T:
        """Run ``op`` on this thread; its answer."""
        return op.answer(drive(self._exec(op.call), self._do))

    async def arun(self, op: Op[T]) -> T:
        """Run ``op`` on the running loop; its answer (undone if cancelled)."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            got = await adrive(
                self._exec(op.call), functools.partial(self._ado, cancels=cancels)
            )
            return op.answer(got)
        except asyncio.CancelledError:
            if op.undo is not None:
                # The script may have taken the slot before the cancellation
                # reached us: give it back, whatever happens to this task.
                await _finish_anyway(self.arun(op.undo()))
            raise

    def drive(self, steps: Steps[Step, T]) -> T:
        """Run ``steps`` on this thread; their answer."""
        return drive(steps, self._do)

    async def adrive(self, steps: Steps[Step, T]) -> T:
        """Run ``steps`` on the running loop; their answer."""
        return await adrive(steps, self._ado)

    # The interpreters: one step each, blocking or awaited (a twin by nature).
    def _do(self, step: Step) -> Any:
        if isinstance(step, ScriptCall):
            return self._clients.run(step)
        if isinstance(step, Op):
            return self.run(step)
        if isinstance(step, Park):
            return park(step)
        if isinstance(step, _Pause):
            return time.sleep(step.seconds)
        if step is _POLICIES:
            return self._clients.eviction_policies()
        return False  # _ANSWERED: no cancellation on a thread; Listen: none either

    async def _ado(self, step: Step, cancels: int = 0) -> Any:
        if isinstance(step, ScriptCall):
            return await self._clients.arun(step)
        if step is _ANSWERED:
            task = asyncio.current_task()
            if task is not None and task.cancelling() > cancels:
                # Cancelled while the answer arrived, and the cancellation was
                # swallowed on the way (Python 3.11's asyncio.wait_for, used by
                # redis-py, does that): honour it, or the caller never stops.
                raise asyncio.CancelledError
            return None
        if isinstance(step, Op):
            return await self.arun(step)
        if isinstance(step, Park):
            return await apark(step)
        if isinstance(step, _Pause):
            return await asyncio.sleep(step.seconds)
        if isinstance(step, Listen):
            return await self._room.listen(step.waiter)
        return await self._clients.aeviction_policies()  # _POLICIES

    # The steps of one script call ------------------------------------------------
    def _exec(self, call: ScriptCall) -> Steps[Step, Any]:
        """Run a script; :data:`DOWN` if Redis is unavailable."""
        outage = self._outage
        busy_until: float | None = None
        while not outage.resting():
            try:
                result = yield call
            except redis.RedisError as exc:
                if pool_exhausted(exc):  # a busy client: wait, not an outage
                    now = time.monotonic()
                    busy_until = busy_until or now + _MAX_BUSY
                    if now < busy_until:  # every wait is bounded
                        yield _Pause(_FIRST_POLL * _jitter())
                        continue
                outage.mark_down(exc)
                return DOWN
            yield _ANSWERED
            if outage.recovering():
                yield from self._replay(outage.mark_up())
            if not self._eviction_checked:
                yield from self._check_eviction()
            return result
        return DOWN

    def _replay(self, items: list[Pending]) -> Steps[Step, None]:
        for i, item in enumerate(items):
            try:
                got = yield item.call
            except redis.RedisError as exc:
                self._outage.requeue(items[i:])
                if not pool_exhausted(exc):  # busy: the next call replays them
                    self._outage.mark_down(exc)
                return
            if item.scope is not None:
                self._ledger.learn(item.scope, got)

    def _check_eviction(self) -> Steps[Step, None]:
        with self._lock:
            first = not self._eviction_checked
            self._eviction_checked = True
        if not first:
            return
        try:
            policies = yield _POLICIES
        except redis.RedisError:
            self._eviction_checked = False  # ask again on a later call
            return
        # None: CONFIG was refused (managed services, proxies); nothing to say.
        evicting = sorted({p for p in policies or () if p != "noeviction"})
        if evicting:
            logger.warning(
                "Shared router state at %s: Redis's maxmemory-policy is %s, which "
                "can evict this router's keys (every one has a TTL, so volatile-* "
                "policies evict them too). An evicted lease lets more calls run "
                "than max_in_flight allows; evicted spend is restored only from "
                "what running processes saw. Set maxmemory-policy noeviction (or "
                "use a Redis of its own) for the fleet's guarantees.",
                self._clients.url,
                "/".join(evicting),
            )


async def _finish_anyway(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` as its own task and wait for it; cancelled again, it still ends."""
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    # Waited for (a round trip) so the slot is back when the caller sees the
    # cancellation; a second cancellation stops the wait, not the task.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)
