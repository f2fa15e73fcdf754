"""Router state shared through Redis (``state="redis://…"``).

Every decision is one Lua script (in ``_lua``), atomic on the server
and timed by the server's clock, so processes on machines with skewed clocks
agree; the scripts also run on Redis Cluster (``redis+cluster://…``).

When Redis cannot be reached, ``on_error="open"`` logs one warning per outage
and answers from an in-process state until Redis is back (it is tried again
every ``retry_interval`` seconds); ``on_error="closed"`` raises
:class:`StateUnavailableError` from the calls that gate a request (recording
calls never raise). Short socket timeouts and no client-side retries keep
either answer within a couple of seconds.

What holds when Redis fails or forgets:

- The in-process state of an outage starts with this process's leases still
  held on Redis, so ``max_in_flight`` holds per process (N processes: at most
  N x the cap in flight, until the calls started in the outage are over).
- Its budget is a share of what was left: (budget - spent - reserved, as Redis
  last told this process) // (processes that made a budget call within
  ``MEMBER_TTL_SECONDS`` before that answer).
- A budget record Redis lost (restart without persistence, eviction) is
  rebuilt from the most any process saw: each one's next budget call raises
  the spend to at least what it last saw (a generation key tells a rebuilt
  record from the one that process knew), and it logs one warning.
- A ``maxmemory-policy`` that can evict these keys (anything but
  ``noeviction``: every key has a TTL) is warned about once per state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import redis

from langchain_wandb_router.state._clients import ScriptClients, pool_exhausted
from langchain_wandb_router.state._connect import CLIENT_NAME
from langchain_wandb_router.state._interface import (
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    Lease,
    Outcome,
    Reservation,
    RouterState,
    SlotTimeoutError,
    StateUnavailableError,
    Want,
    check_hard_limit,
    check_micro,
    check_outcome,
)
from langchain_wandb_router.state._lua import (
    Known,
    ScriptCall,
    acquire_call,
    cooling_call,
    hash_tag,
    in_flight_call,
    limit_call,
    release_call,
    renew_call,
    report_call,
    reserve_call,
    settle_call,
    spent_call,
)
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.state._redis_waits import RedisWaitRoom
from langchain_wandb_router.state._urls import redact_url
from langchain_wandb_router.state._waiters import Waiter, resolve

__all__ = ["CLIENT_NAME", "RedisState", "redact_url"]

logger = logging.getLogger("langchain_wandb_router")

OnError = Literal["open", "closed"]

T = TypeVar("T")

# Polling for a free slot: start fast, back off to this, with jitter so
# processes waiting on the same key do not poll in lockstep.
_FIRST_POLL = 0.002
_MAX_POLL = 0.05

# An answer meaning "Redis is unavailable" (scripts never return it).
_DOWN: Any = object()

# Tasks that undo a cancelled acquire; kept so they are not garbage-collected.
_BACKGROUND: set[asyncio.Task[None]] = set()


def _token() -> str:
    return os.urandom(8).hex()


@dataclass
class _Pending:
    """A recording write that failed; replayed once Redis answers again.

    Attributes:
        call: The script call to make.
        scope: For a settlement: the budget it adds to.
        spend: For a settlement: the micro-dollars it adds.
        counted_locally: The spend is already in the fallback state's total.
    """

    call: ScriptCall
    scope: str | None = None
    spend: int = 0
    counted_locally: bool = False


@dataclass(slots=True)
class _Op(Generic[T]):
    """One script call and how to answer with its result, or without Redis."""

    call: ScriptCall
    done: Callable[[Any], T]
    down: Callable[[], T]


def _ignore(_: Any) -> None:
    return None


def _down() -> Any:
    return _DOWN


def _jitter() -> float:
    return random.uniform(0.5, 1.0)  # noqa: S311 - spreading polls, not crypto


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class _Budgets:
    """What this process learnt of each budget scope from Redis's answers.

    Attributes:
        generation: The generation id last seen.
        most_spent: The largest spend seen (what a lost record is rebuilt from).
        committed: Spend plus open reservations in the last answer.
        members: Processes that used the scope, in the last answer.
    """

    generation: dict[str, str] = field(default_factory=dict)
    most_spent: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)


class RedisState(RouterState):
    """Router state in Redis, shared by every process that uses the same Redis.

    Args:
        url: A ``redis://``, ``rediss://`` or ``unix://`` URL (with database,
            user and password as redis-py reads them), a ``redis+cluster://``
            or ``rediss+cluster://`` URL of any node of a Redis Cluster, or a
            redis-py client: ``redis.Redis`` or ``redis.cluster.RedisCluster``
            (used as is for sync calls, its own timeouts and retries deciding
            how soon an outage is seen; each event loop gets an async client
            with its connection settings), or ``redis.asyncio.Redis`` or
            ``redis.asyncio.cluster.RedisCluster`` (its connection settings
            make one client per event loop and one for sync calls; the object
            itself is not used, since asyncio connections belong to one loop).
            A client passed in is never closed here.
        health: When models cool down.
        concurrency: Lease lifetime and adaptive limit behaviour.
        budget: Lifetimes of budget records.
        on_error: ``"open"``: fall back to in-process state during an outage
            (one warning); ``"closed"``: raise :class:`StateUnavailableError`.
        timeout: Seconds to wait for a Redis answer.
        connect_timeout: Seconds to wait for a connection.
        retry_interval: Seconds between attempts to reach Redis in an outage.
        clock: Monotonic seconds for deadlines and the retry interval (a seam).
    """

    def __init__(
        self,
        url: str | object,
        *,
        health: HealthSettings | None = None,
        concurrency: ConcurrencySettings | None = None,
        budget: BudgetSettings | None = None,
        on_error: OnError = "open",
        timeout: float = 1.0,
        connect_timeout: float = 1.0,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_error not in ("open", "closed"):
            raise ValueError(f"on_error must be 'open' or 'closed', got {on_error!r}")
        self.health = health or HealthSettings()
        self.concurrency = concurrency or ConcurrencySettings()
        self.budget = budget or BudgetSettings()
        self.on_error = on_error
        # The clients keep the URL: its password is in no other object.
        self._clients = ScriptClients(
            url, timeout=timeout, connect_timeout=connect_timeout
        )
        self.url = self._clients.url
        self._retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._down = False
        self._down_until = 0.0
        self._last_error = ""
        self._fallback: InProcessState | None = None
        # The outage before the last, while calls it admitted may still run.
        self._draining: InProcessState | None = None
        self._local_leases = 0  # issued by a fallback and not yet released
        self._pending: list[_Pending] = []
        self._budgets = _Budgets()
        self._member = _token()  # this process among a scope's members
        # key -> tokens of the leases Redis gave this process, not yet released.
        self._held: defaultdict[str, set[int | str]] = defaultdict(set)
        # token -> the fallback lease standing in for it during an outage.
        self._stand_ins: dict[int | str, Lease] = {}
        self._eviction_checked = False
        self._room = RedisWaitRoom(_token(), self._clients.apubsub)

    @classmethod
    def from_url(cls, url: str | object, **options: Any) -> RedisState:
        """A state for ``url`` (or a client); ``options`` are the constructor's."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisState({self.url!r}, on_error={self.on_error!r})"

    def close(self) -> None:
        """Close the sync client (async clients close with their loops)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's client and the sync client."""
        await self._clients.aclose()

    # Availability --------------------------------------------------------------
    def _resting(self) -> bool:
        """Whether an outage was seen so recently that Redis is not tried."""
        return self._down_until > 0 and self._clock() < self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        text = self._clients.scrub(f"{type(exc).__name__}: {exc}")
        with self._lock:
            first = not self._down
            self._down = True
            self._down_until = self._clock() + self._retry_interval
            self._last_error = text
        if first:
            then = (
                "answering from per-process state until it is back"
                if self.on_error == "open"
                else "calls that need it fail with StateUnavailableError"
            )
            logger.warning(
                "Shared router state at %s is unavailable (%s); %s (trying "
                "again every %.0fs).",
                self.url,
                text,
                then,
                self._retry_interval,
            )

    def _mark_up(self) -> list[_Pending]:
        """Note Redis answered; return the writes to replay."""
        with self._lock:
            recovered = self._down
            self._down = False
            self._down_until = 0.0
            if self._fallback is not None:
                # Calls it admitted may still run: they count against the
                # cap until they end (see _try_op).
                self._draining = self._fallback
            self._fallback = None
            stand_ins = list(self._stand_ins.values())
            self._stand_ins.clear()
            pending, self._pending = self._pending, []
        for stand_in in stand_ins:  # Redis counts those leases itself again
            stand_in.owner.release(stand_in, "other")
        if recovered:
            logger.info("Shared router state at %s is reachable again.", self.url)
        return pending

    def _requeue(self, items: list[_Pending]) -> None:
        with self._lock:
            self._pending[:0] = items

    def _unavailable(self) -> StateUnavailableError:
        return StateUnavailableError(
            f"Shared router state at {self.url} is unavailable "
            f"({self._last_error or 'recent outage'}). Check that Redis is "
            "running and reachable from here, or create the router with "
            "on_error='open' to fall back to per-process state during outages."
        )

    def _local(self) -> InProcessState:
        """The state to answer from during an outage, or raise if closed.

        It starts holding a stand-in for every lease Redis gave this process
        and it has not released, so ``max_in_flight`` holds per process; the
        previous outage's state is reused while calls it admitted still run.
        """
        if self.on_error == "closed":
            raise self._unavailable()
        with self._lock:
            fallback = self._fallback
            if fallback is None:
                # Reused while its calls run (its earlier spend then counts
                # twice against this outage's share: the safe side).
                reuse = self._draining if self._local_leases else None
                fallback = reuse or InProcessState(
                    health=self.health,
                    concurrency=self.concurrency,
                    budget=self.budget,
                    clock=self._clock,
                )
                self._fallback, self._draining = fallback, None
                for key, tokens in self._held.items():
                    for token in tokens:
                        stand_in = fallback.try_acquire(key, None)
                        if stand_in is not None:
                            self._stand_ins[token] = stand_in
            return fallback

    def _queue(self, item: _Pending) -> None:
        with self._lock:
            # Bounded: in a very long outage the oldest writes are let go
            # (their leases and reservations expire by TTL anyway).
            if len(self._pending) >= 10_000:
                del self._pending[0]
            self._pending.append(item)

    def _exec(self, call: ScriptCall) -> Any:
        """Run a script; :data:`_DOWN` if Redis is unavailable."""
        while not self._resting():
            try:
                result = self._clients.run(call)
            except redis.RedisError as exc:
                if pool_exhausted(exc):  # a busy client: wait, not an outage
                    time.sleep(_FIRST_POLL * _jitter())
                    continue
                self._mark_down(exc)
                return _DOWN
            if self._down or self._pending:
                self._replay(self._mark_up())
            if not self._eviction_checked:
                self._check_eviction()
            return result
        return _DOWN

    def _replay(self, items: list[_Pending]) -> None:
        for i, item in enumerate(items):
            try:
                got = self._clients.run(item.call)
            except redis.RedisError as exc:
                self._requeue(items[i:])
                if not pool_exhausted(exc):  # busy: the next call replays them
                    self._mark_down(exc)
                return
            if item.scope is not None:
                self._learn(item.scope, got)

    async def _aexec(self, call: ScriptCall) -> Any:
        """Async :meth:`_exec`."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        while not self._resting():
            try:
                result = await self._clients.arun(call)
            except redis.RedisError as exc:
                if pool_exhausted(exc):  # a busy client: wait, not an outage
                    await asyncio.sleep(_FIRST_POLL * _jitter())
                    continue
                self._mark_down(exc)
                return _DOWN
            if task is not None and task.cancelling() > cancels:
                # Cancelled while the answer arrived, and the cancellation was
                # swallowed on the way (Python 3.11's asyncio.wait_for, used by
                # redis-py, does that): honour it, or the caller never stops.
                raise asyncio.CancelledError
            if self._down or self._pending:
                await self._areplay(self._mark_up())
            if not self._eviction_checked:
                await self._acheck_eviction()
            return result
        return _DOWN

    async def _areplay(self, items: list[_Pending]) -> None:
        for i, item in enumerate(items):
            try:
                got = await self._clients.arun(item.call)
            except redis.RedisError as exc:
                self._requeue(items[i:])
                if not pool_exhausted(exc):  # busy: the next call replays them
                    self._mark_down(exc)
                return
            if item.scope is not None:
                self._learn(item.scope, got)

    # Eviction ----------------------------------------------------------------
    def _claim_eviction_check(self) -> bool:
        with self._lock:
            first = not self._eviction_checked
            self._eviction_checked = True
        return first

    def _check_eviction(self) -> None:
        if self._claim_eviction_check():
            try:
                self._warn_eviction(self._clients.eviction_policies())
            except redis.RedisError:
                self._eviction_checked = False  # ask again on a later call

    async def _acheck_eviction(self) -> None:
        if self._claim_eviction_check():
            try:
                self._warn_eviction(await self._clients.aeviction_policies())
            except redis.RedisError:
                self._eviction_checked = False

    def _warn_eviction(self, policies: list[str] | None) -> None:
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
                self.url,
                "/".join(evicting),
            )

    # Budget knowledge ----------------------------------------------------------
    def _known(self, scope: str) -> Known:
        b = self._budgets
        return Known(
            b.generation.get(scope, ""),
            b.most_spent.get(scope, 0),
            _token(),
            self._member,
        )

    def _learn(self, scope: str, reply: list[Any]) -> int:
        """Record a budget script's answer; the spend it reports."""
        spent, outstanding = int(reply[1]), int(reply[2])
        generation, restored = _text(reply[3]), int(reply[4])
        b = self._budgets
        with self._lock:
            seen = b.generation.get(scope)
            saw_most = b.most_spent.get(scope, 0)
            b.generation[scope] = generation
            b.most_spent[scope] = max(saw_most, spent)
            b.committed[scope] = spent + outstanding
            b.members[scope] = max(1, int(reply[5]))
        if seen and seen != generation:
            logger.warning(
                "Shared router state at %s had lost the budget record %s (Redis "
                "restarted without persistence, or evicted it); spend was rebuilt "
                "from what the fleet's processes had seen and is now %d micro-USD "
                "(this process had seen %d%s).",
                self.url,
                scope,
                spent,
                saw_most,
                f"; it restored {restored}" if restored else "",
            )
        return spent

    def _outage_share(self, scope: str, budget_micro: int) -> int:
        """What this process may reserve on its own while Redis is away."""
        b = self._budgets
        with self._lock:
            committed = b.committed.get(scope, b.most_spent.get(scope, 0))
            members = b.members.get(scope, 1)
        return max(0, budget_micro - committed) // members

    def _run(self, op: _Op[T]) -> T:
        got = self._exec(op.call)
        return op.down() if got is _DOWN else op.done(got)

    async def _arun(self, op: _Op[T]) -> T:
        got = await self._aexec(op.call)
        return op.down() if got is _DOWN else op.done(got)

    # Each operation once, as a script call plus what to do with its answer or
    # without one; the sync and async methods only differ in how they run it.
    def _report_op(self, key: str, failed: bool) -> _Op[None]:
        def down() -> None:
            if self.on_error == "open":  # closed: dropped, like any record
                self._local().report(key, failed)

        return _Op(report_call(key, failed, self.health), _ignore, down)

    def _cooling_ops(self, keys: list[str], out: dict[str, float]) -> list[_Op[Any]]:
        groups: dict[str, list[str]] = {}  # one script call per Cluster slot
        for key in keys:
            groups.setdefault(hash_tag(key), []).append(key)

        def op(group: list[str]) -> _Op[Any]:
            def done(left: list[int]) -> None:
                out.update(
                    (k, ms / 1000) for k, ms in zip(group, left, strict=True) if ms
                )

            return _Op(cooling_call(group), done, _down)

        return [op(group) for group in groups.values()]

    def _try_op(self, key: str, hard_limit: int | None) -> _Op[Lease | int | None]:
        """A lease, or the cap that is full (``None`` if the fallback said no)."""
        token = _token()
        cap = hard_limit
        draining = self._draining
        if draining is not None and cap is not None:
            # Calls the last outage admitted still run, unknown to Redis.
            cap = max(0, cap - draining.in_flight(key))

        def done(got: list[int]) -> Lease | int:
            if not got[0]:
                return int(got[1])
            with self._lock:
                self._held[key].add(token)
            return Lease(key, token, self)

        def down() -> Lease | None:
            lease = self._local().try_acquire(key, hard_limit)
            if lease is not None:
                with self._lock:
                    self._local_leases += 1
            return lease

        return _Op(acquire_call(key, token, cap, self.concurrency), done, down)

    def _forget_lease(self, lease: Lease) -> Lease | None:
        """Stop tracking a lease Redis gave; the stand-in it had, if any."""
        with self._lock:
            tokens = self._held.get(lease.key)
            if tokens is not None:
                tokens.discard(lease.token)
                if not tokens:
                    del self._held[lease.key]
            return self._stand_ins.pop(lease.token, None)

    def _local_released(self) -> None:
        with self._lock:
            self._local_leases = max(0, self._local_leases - 1)
            if self._local_leases == 0 and self._fallback is None:
                self._draining = None

    def _release_op(self, lease: Lease, outcome: Outcome) -> _Op[None]:
        call = release_call(
            lease.key, lease.token, outcome, self.concurrency, self._room.origin
        )
        stand_in = self._forget_lease(lease)
        if stand_in is not None:  # its slot in the outage's state is free now
            stand_in.owner.release(stand_in, outcome)
        return _Op(call, _ignore, lambda: self._queue(_Pending(call)))

    def _renew_op(self, lease: Lease) -> _Op[bool]:
        call = renew_call(lease.key, lease.token, self.concurrency)

        def done(alive: int) -> bool:
            if not alive:
                self._forget_lease(lease)
            return bool(alive)

        def down() -> bool:
            # Unknown while Redis is away: keep the call going, and its
            # stand-in in the outage's state alive with it.
            stand_in = self._stand_ins.get(lease.token)
            if stand_in is not None:
                stand_in.owner.renew(stand_in)
            return True

        return _Op(call, done, down)

    def _limit_op(self, key: str) -> _Op[int | None]:
        initial = self.concurrency.initial_limit
        return _Op(
            limit_call(key),
            lambda got: initial if got is None else int(got),
            lambda: self._local().limit(key),
        )

    def _in_flight_op(self, key: str) -> _Op[int]:
        return _Op(in_flight_call(key), int, lambda: self._local().in_flight(key))

    def _queued_spend(self, scope: str, *, remote_only: bool) -> int:
        with self._lock:
            return sum(
                p.spend
                for p in self._pending
                if p.scope == scope and not (remote_only and p.counted_locally)
            )

    def _reserve_op(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> _Op[Reservation | None]:
        check_micro(estimate_micro, budget_micro)
        token = _token()
        call = reserve_call(
            scope, token, estimate_micro, budget_micro, self.budget, self._known(scope)
        )

        def done(got: list[Any]) -> Reservation | None:
            self._learn(scope, got)
            return Reservation(scope, token, estimate_micro, self) if got[0] else None

        def down() -> Reservation | None:
            # This process's share of what Redis last said was left; its own
            # open reservations were part of what was reserved then.
            share = self._outage_share(scope, budget_micro)
            return self._local().reserve(scope, estimate_micro, share)

        return _Op(call, done, down)

    def _settle_op(self, reservation: Reservation, actual_micro: int) -> _Op[None]:
        check_micro(actual_micro)
        remote = reservation.owner is self
        scope = reservation.scope
        token = reservation.token if remote else ""  # "" adds spend only
        item = _Pending(
            settle_call(scope, token, actual_micro, self.budget, self._known(scope)),
            scope=scope,
            spend=actual_micro,
            counted_locally=not remote,
        )

        def done(got: list[Any]) -> None:
            self._learn(scope, got)

        return _Op(item.call, done, lambda: self._queue(item))

    def _spent_op(self, scope: str) -> _Op[int]:
        def done(got: list[Any]) -> int:
            return self._learn(scope, got)

        def down() -> int:
            self._local()  # raises when closed
            queued = self._queued_spend(scope, remote_only=False)
            with self._lock:
                return self._budgets.most_spent.get(scope, 0) + queued

        return _Op(spent_call(scope, self.budget, self._known(scope)), done, down)

    # Health ------------------------------------------------------------------------
    def report(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.report`."""
        if self.health.failures > 0:
            self._run(self._report_op(key, failed))

    async def areport(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.areport`."""
        if self.health.failures > 0:
            await self._arun(self._report_op(key, failed))

    def cooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.cooling`."""
        keys = list(keys)
        out: dict[str, float] = {}
        for op in self._cooling_ops(keys, out):
            if self._run(op) is _DOWN:
                return self._local().cooling(keys)
        return out

    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.acooling`."""
        keys = list(keys)
        out: dict[str, float] = {}
        for op in self._cooling_ops(keys, out):
            if await self._arun(op) is _DOWN:
                return self._local().cooling(keys)
        return out

    # Concurrency ------------------------------------------------------------------
    async def _atry(self, key: str, hard_limit: int | None) -> Lease | int | None:
        op = self._try_op(key, hard_limit)
        try:
            return await self._arun(op)
        except asyncio.CancelledError:
            # The script may have taken the slot before the cancellation
            # reached us: give it back, whatever happens to this task.
            lease = Lease(key, op.call.args[0], self)  # args[0]: the lease's token
            undo = asyncio.ensure_future(self._arun(self._release_op(lease, "other")))
            _BACKGROUND.add(undo)
            undo.add_done_callback(_BACKGROUND.discard)
            # Wait for it (a round trip) so the slot is back when the caller
            # sees the cancellation; cancelled again, it still finishes.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(undo)
            raise

    def try_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.try_acquire`."""
        check_hard_limit(hard_limit)
        got = self._run(self._try_op(key, hard_limit))
        return got if isinstance(got, Lease) else None

    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.atry_acquire`."""
        check_hard_limit(hard_limit)
        got = await self._atry(key, hard_limit)
        return got if isinstance(got, Lease) else None

    def _first_free(self, wants: Sequence[Want]) -> Lease | Want:
        """Try each of ``wants``; a lease, or the first full cap."""
        full: Want | None = None
        for key, hard_limit in wants:
            got = self._run(self._try_op(key, hard_limit))
            if isinstance(got, Lease):
                return got
            full = full or (key, hard_limit if got is None else got)
        assert full is not None
        return full

    async def _afirst_free(self, wants: Sequence[Want]) -> Lease | Want:
        """Async :meth:`_first_free`."""
        full: Want | None = None
        for key, hard_limit in wants:
            got = await self._atry(key, hard_limit)
            if isinstance(got, Lease):
                return got
            full = full or (key, hard_limit if got is None else got)
        assert full is not None
        return full

    def acquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.acquire_any`; woken by releases, not polling.

        This process's releases wake its waiters at once; other processes'
        releases are seen by the first waiter of each key, which looks again
        every few tens of milliseconds (sync waiters do not subscribe).
        """
        for _, hard_limit in wants:
            check_hard_limit(hard_limit)
        got = self._first_free(wants)
        if isinstance(got, Lease):
            return got
        # Awake while it looks: a release meanwhile makes it look again.
        waiter = Waiter(dict(wants), awake=True)
        self._room.join(waiter)
        try:
            while True:
                got = self._first_free(wants)
                if isinstance(got, Lease):
                    waiter.lease = got
                    return got
                now = self._clock()
                if now >= deadline:
                    raise SlotTimeoutError(*got)
                if not self._room.arm(waiter):
                    continue
                wait = min(deadline - now, self._room.patience(waiter, False))
                assert waiter.event is not None
                waiter.event.wait(wait)
        finally:
            self._room.leave(waiter)

    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.aacquire_any`; woken by releases, not polling.

        A release by this process wakes one of its waiters; a release by
        another reaches this loop's subscription to the key's channel and
        wakes one too. Only the first waiter of a key looks again by itself.
        """
        for _, hard_limit in wants:
            check_hard_limit(hard_limit)
        got = await self._afirst_free(wants)
        if isinstance(got, Lease):
            return got
        loop = asyncio.get_running_loop()
        waiter = Waiter(dict(wants), loop, awake=True)
        self._room.join(waiter)
        try:
            # Subscribed before the next look, so no release goes unheard.
            listening = await self._room.listen(waiter)
            while True:
                got = await self._afirst_free(wants)
                if isinstance(got, Lease):
                    waiter.lease = got
                    return got
                now = self._clock()
                if now >= deadline:
                    raise SlotTimeoutError(*got)
                if not self._room.arm(waiter):
                    continue
                wait = min(deadline - now, self._room.patience(waiter, listening))
                future = waiter.future
                assert future is not None
                timer = loop.call_later(wait, resolve, future)
                try:
                    await future
                finally:
                    timer.cancel()
        finally:
            self._room.leave(waiter)

    def acquire(self, key: str, hard_limit: int | None, deadline: float) -> Lease:
        """See :meth:`RouterState.acquire`."""
        return self.acquire_any(((key, hard_limit),), deadline)

    async def aacquire(
        self, key: str, hard_limit: int | None, deadline: float
    ) -> Lease:
        """See :meth:`RouterState.aacquire`."""
        return await self.aacquire_any(((key, hard_limit),), deadline)

    def waiting(self, keys: Iterable[str]) -> int:
        """How many callers of this process wait for a slot of ``keys``."""
        return self._room.waiting(list(keys))

    def release(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.release`; an unsent release is replayed later."""
        if lease.owner is not self:
            lease.owner.release(lease, outcome)
            self._local_released()
        else:
            check_outcome(outcome)
            self._run(self._release_op(lease, outcome))
        self._room.wake(lease.key)

    async def arelease(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.arelease`."""
        if lease.owner is not self:
            await lease.owner.arelease(lease, outcome)
            self._local_released()
        else:
            check_outcome(outcome)
            await self._arun(self._release_op(lease, outcome))
        self._room.wake(lease.key)

    def renew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.renew`; True while Redis cannot be asked."""
        if lease.owner is not self:
            return lease.owner.renew(lease)
        return self._run(self._renew_op(lease))

    async def arenew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.arenew`."""
        if lease.owner is not self:
            return await lease.owner.arenew(lease)
        return await self._arun(self._renew_op(lease))

    def limit(self, key: str) -> int | None:
        """See :meth:`RouterState.limit`."""
        return self._run(self._limit_op(key))

    async def alimit(self, key: str) -> int | None:
        """See :meth:`RouterState.alimit`."""
        return await self._arun(self._limit_op(key))

    def in_flight(self, key: str) -> int:
        """See :meth:`RouterState.in_flight`."""
        return self._run(self._in_flight_op(key))

    async def ain_flight(self, key: str) -> int:
        """See :meth:`RouterState.ain_flight`."""
        return await self._arun(self._in_flight_op(key))

    # Budget ------------------------------------------------------------------------
    def reserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.reserve`."""
        return self._run(self._reserve_op(scope, estimate_micro, budget_micro))

    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.areserve`."""
        return await self._arun(self._reserve_op(scope, estimate_micro, budget_micro))

    def settle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.settle`; an unsent settlement is replayed later."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:  # issued during an outage
            reservation.owner.settle(reservation, actual_micro)
        self._run(op)

    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.asettle`."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:
            await reservation.owner.asettle(reservation, actual_micro)
        await self._arun(op)

    def spent(self, scope: str) -> int:
        """See :meth:`RouterState.spent`."""
        return self._run(self._spent_op(scope))

    async def aspent(self, scope: str) -> int:
        """See :meth:`RouterState.aspent`."""
        return await self._arun(self._spent_op(scope))
