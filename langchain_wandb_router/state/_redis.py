"""Router state shared through Redis (``state="redis://…"``).

Every decision is one Lua script (``_lua``), atomic on the server and timed
by the server's clock, so processes on machines with skewed clocks agree; the
scripts also run on Redis Cluster (``redis+cluster://…``).

This module holds :class:`RedisState` itself: each operation written once, as
an ``Op`` (a script call, what to answer with its result and what to answer
without Redis) or as steps, and the thin sync and async methods that hand them
to its runner (``_runner``: the outage handling and the two interpreters). Its
clients are in ``_clients``, its outage's stand-ins in ``_outage``, its budget
bookkeeping in ``_ledger``, its waiters in ``_redis_waits``.

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
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.state._clients import ScriptClients
from langchain_wandb_router.state._connect import CLIENT_NAME
from langchain_wandb_router.state._interface import (
    Lease,
    QueuedState,
    Reservation,
    Want,
    check_hard_limit,
    check_micro,
    check_outcome,
)
from langchain_wandb_router.state._ledger import Ledger
from langchain_wandb_router.state._lua import (
    acquire_call,
    cooling_call,
    hash_tag,
    in_flight_call,
    limit_call,
    new_token,
    release_call,
    renew_call,
    report_call,
    reserve_call,
    settle_call,
    spent_call,
)
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.state._outage import OnError, Outage, Pending
from langchain_wandb_router.state._redis_stats import RedisStats
from langchain_wandb_router.state._redis_waits import RedisWaitRoom
from langchain_wandb_router.state._runner import DOWN, Op, Runner, Step, down, ignore
from langchain_wandb_router.state._steps import Steps
from langchain_wandb_router.state._urls import redact_url

if TYPE_CHECKING:  # only in signatures: QueuedState applies the settings
    from langchain_wandb_router.state._interface import (
        BudgetSettings,
        ConcurrencySettings,
        HealthSettings,
        Outcome,
    )

__all__ = ["CLIENT_NAME", "RedisState", "redact_url"]


class RedisState(RedisStats, QueuedState):
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
        super().__init__(health=health, concurrency=concurrency, budget=budget)
        self.on_error = on_error
        # The clients keep the URL: its password is in no other object.
        self._clients = ScriptClients(
            url, timeout=timeout, connect_timeout=connect_timeout
        )
        self.url = self._clients.url
        self._clock = clock
        self._outage = Outage(
            self.url,
            on_error=on_error,
            retry_interval=retry_interval,
            clock=clock,
            scrub=self._clients.scrub,
            new_fallback=functools.partial(  # not a lambda: no cycle through self
                InProcessState,
                health=self.health,
                concurrency=self.concurrency,
                budget=self.budget,
                clock=clock,
            ),
        )
        self._ledger = Ledger(self.url)
        self._room = RedisWaitRoom(new_token(), self._clients.apubsub)
        self._runner = Runner(self._clients, self._outage, self._ledger, self._room)

    @classmethod
    def from_url(cls, url: str | object, **options: Any) -> RedisState:
        """A state for ``url`` (or a client); ``options`` are the constructor's."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisState({self.url!r}, on_error={self.on_error!r})"

    @property
    def _fallback(self) -> InProcessState | None:
        """The in-process state answering now (``None``: Redis answers)."""
        return self._outage.fallback

    def close(self) -> None:
        """Close the sync client (async clients close with their loops)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's client and the sync client."""
        await self._clients.aclose()

    # Each operation once, as a script call plus what to do with its answer or
    # without one; the sync and async methods only differ in how they run it.
    def _report_op(self, key: str, failed: bool) -> Op[None]:
        def down() -> None:
            if self.on_error == "open":  # closed: dropped, like any record
                self._outage.local().report(key, failed)

        return Op(report_call(key, failed, self.health), ignore, down)

    def _cooling(self, keys: Iterable[str]) -> Steps[Step, dict[str, float]]:
        keys = list(keys)
        out: dict[str, float] = {}
        groups: dict[str, list[str]] = {}  # one script call per Cluster slot
        for key in keys:
            groups.setdefault(hash_tag(key), []).append(key)
        for group in groups.values():
            left = yield Op(cooling_call(group), lambda got: got, down)
            if left is DOWN:
                return self._outage.local().cooling(keys)
            out.update((k, ms / 1000) for k, ms in zip(group, left, strict=True) if ms)
        return out

    def _try_op(self, key: str, hard_limit: int | None) -> Op[Lease | int | None]:
        """A lease, or the cap that is full (``None`` if the fallback said no)."""
        token = new_token()
        cap = hard_limit
        draining = self._outage.draining
        if draining is not None and cap is not None:
            # Calls the last outage admitted still run, unknown to Redis.
            cap = max(0, cap - draining.in_flight(key))

        def done(got: list[int]) -> Lease | int:
            if not got[0]:
                return int(got[1])
            self._outage.hold(key, token)
            return Lease(key, token, self)

        def down() -> Lease | None:
            lease = self._outage.local().try_acquire(key, hard_limit)
            if lease is not None:
                self._outage.local_taken()
            return lease

        def undo() -> Op[None]:
            return self._release_op(Lease(key, token, self), "other")

        call = acquire_call(key, token, cap, self.concurrency)
        return Op(call, done, down, undo)

    def _release_op(self, lease: Lease, outcome: Outcome) -> Op[None]:
        call = release_call(
            lease.key, lease.token, outcome, self.concurrency, self._room.origin
        )
        stand_in = self._outage.forget(lease)
        if stand_in is not None:  # its slot in the outage's state is free now
            stand_in.owner.release(stand_in, outcome)
        return Op(call, ignore, lambda: self._outage.queue(Pending(call)))

    def _renew_op(self, key: str, leases: list[Lease]) -> Op[list[bool]]:
        """Renew ``leases`` (all of route ``key``, all this state's) in one call."""
        call = renew_call(key, [lease.token for lease in leases], self.concurrency)

        def done(alive: list[int]) -> list[bool]:
            for lease, ok in zip(leases, alive, strict=True):
                if not ok:
                    self._outage.forget(lease)
            return [bool(ok) for ok in alive]

        def down() -> list[bool]:
            # Unknown while Redis is away: keep the calls going, and their
            # stand-ins in the outage's state alive with them.
            for lease in leases:
                stand_in = self._outage.stand_in(lease.token)
                if stand_in is not None:
                    stand_in.owner.renew(stand_in)
            return [True] * len(leases)

        return Op(call, done, down)

    def _limit_op(self, key: str) -> Op[int | None]:
        initial = self.concurrency.initial_limit
        return Op(
            limit_call(key),
            lambda got: initial if got is None else int(got),
            lambda: self._outage.local().limit(key),
        )

    def _in_flight_op(self, key: str) -> Op[int]:
        return Op(in_flight_call(key), int, lambda: self._outage.local().in_flight(key))

    def _reserve_op(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Op[Reservation | None]:
        check_micro(estimate_micro, budget_micro)
        token = new_token()
        known = self._ledger.known(scope)
        call = reserve_call(
            scope, token, estimate_micro, budget_micro, self.budget, known
        )

        def done(got: list[Any]) -> Reservation | None:
            self._ledger.learn(scope, got)
            return Reservation(scope, token, estimate_micro, self) if got[0] else None

        def down() -> Reservation | None:
            # This process's share of what Redis last said was left; its own
            # open reservations were part of what was reserved then.
            share = self._ledger.share(scope, budget_micro)
            return self._outage.local().reserve(scope, estimate_micro, share)

        return Op(call, done, down)

    def _settle_op(self, reservation: Reservation, actual_micro: int) -> Op[None]:
        check_micro(actual_micro)
        scope = reservation.scope
        # A reservation an outage issued: "" adds the spend only.
        token = reservation.token if reservation.owner is self else ""
        known = self._ledger.known(scope)
        item = Pending(
            settle_call(scope, token, actual_micro, self.budget, known),
            scope=scope,
            spend=actual_micro,
        )

        def done(got: list[Any]) -> None:
            self._ledger.learn(scope, got)

        return Op(item.call, done, lambda: self._outage.queue(item))

    def _spent_op(self, scope: str) -> Op[int]:
        def done(got: list[Any]) -> int:
            return self._ledger.learn(scope, got)

        def down() -> int:
            self._outage.local()  # raises when closed
            queued = self._outage.queued_spend(scope)
            return self._ledger.most_spent(scope) + queued

        known = self._ledger.known(scope)
        return Op(spent_call(scope, self.budget, known), done, down)

    # Waiting for a slot -----------------------------------------------------------
    def _first_free(self, wants: Sequence[Want]) -> Steps[Step, Lease | Want]:
        """Try each of ``wants``; a lease, or the first full cap."""
        full: Want | None = None
        for key, hard_limit in wants:
            got = yield self._try_op(key, hard_limit)
            if isinstance(got, Lease):
                return got
            full = full or (key, hard_limit if got is None else got)
        assert full is not None
        return full

    def _waiting(
        self,
        wants: Sequence[Want],
        deadline: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Steps[Step, Lease]:
        """A caller's steps: look, and between looks wait to be woken."""
        for _, hard_limit in wants:
            check_hard_limit(hard_limit)
        got = yield from self._first_free(wants)
        if isinstance(got, Lease):
            return got
        return (
            yield from self._room.wait(
                wants, deadline, lambda: self._first_free(wants), self._clock, loop
            )
        )

    # Health ------------------------------------------------------------------------
    def report(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.report`."""
        if self.health.failures > 0:
            self._runner.run(self._report_op(key, failed))

    async def areport(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.areport`."""
        if self.health.failures > 0:
            await self._runner.arun(self._report_op(key, failed))

    def cooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.cooling`."""
        return self._runner.drive(self._cooling(keys))

    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.acooling`."""
        return await self._runner.adrive(self._cooling(keys))

    # Concurrency ------------------------------------------------------------------
    def try_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.try_acquire`."""
        check_hard_limit(hard_limit)
        got = self._runner.run(self._try_op(key, hard_limit))
        return got if isinstance(got, Lease) else None

    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.atry_acquire`."""
        check_hard_limit(hard_limit)
        got = await self._runner.arun(self._try_op(key, hard_limit))
        return got if isinstance(got, Lease) else None

    def acquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.acquire_any`; woken by releases, not polling.

        This process's releases wake its waiters at once; other processes'
        releases are seen by the first waiter of each key, which looks again
        every few tens of milliseconds (sync waiters do not subscribe).
        """
        return self._runner.drive(self._waiting(wants, deadline))

    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.aacquire_any`; woken by releases, not polling.

        A release by this process wakes one of its waiters; a release by
        another reaches this loop's subscription to the key's channel and
        wakes one too. Only the first waiter of a key looks again by itself.
        """
        loop = asyncio.get_running_loop()
        return await self._runner.adrive(self._waiting(wants, deadline, loop))

    def waiting(self, keys: Iterable[str]) -> int:
        """How many callers of this process wait for a slot of ``keys``."""
        return self._room.waiting(list(keys))

    def release(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.release`; an unsent release is replayed later."""
        if lease.owner is not self:
            lease.owner.release(lease, outcome)
            self._outage.local_released()
        else:
            check_outcome(outcome)
            self._runner.run(self._release_op(lease, outcome))
        self._room.wake(lease.key)

    async def arelease(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.arelease`."""
        if lease.owner is not self:
            await lease.owner.arelease(lease, outcome)
            self._outage.local_released()
        else:
            check_outcome(outcome)
            await self._runner.arun(self._release_op(lease, outcome))
        self._room.wake(lease.key)

    def renew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.renew`; True while Redis cannot be asked."""
        return self.renew_many([lease])[0]

    async def arenew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.arenew`."""
        if lease.owner is not self:
            return await lease.owner.arenew(lease)
        (alive,) = await self._runner.arun(self._renew_op(lease.key, [lease]))
        return alive

    def renew_many(self, leases: Sequence[Lease]) -> list[bool]:
        """See :meth:`RouterState.renew_many`: one script call per route key."""
        alive: dict[int, bool] = {}
        by_key: dict[str, list[Lease]] = {}
        for lease in leases:
            if lease.owner is self:
                by_key.setdefault(lease.key, []).append(lease)
            else:  # issued by the outage's fallback
                alive[id(lease)] = lease.owner.renew(lease)
        for key, group in by_key.items():
            answers = self._runner.run(self._renew_op(key, group))
            alive.update(zip(map(id, group), answers, strict=True))
        return [alive[id(lease)] for lease in leases]

    def limit(self, key: str) -> int | None:
        """See :meth:`RouterState.limit`."""
        return self._runner.run(self._limit_op(key))

    async def alimit(self, key: str) -> int | None:
        """See :meth:`RouterState.alimit`."""
        return await self._runner.arun(self._limit_op(key))

    def in_flight(self, key: str) -> int:
        """See :meth:`RouterState.in_flight`."""
        return self._runner.run(self._in_flight_op(key))

    async def ain_flight(self, key: str) -> int:
        """See :meth:`RouterState.ain_flight`."""
        return await self._runner.arun(self._in_flight_op(key))

    # Budget ------------------------------------------------------------------------
    def reserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.reserve`."""
        return self._runner.run(self._reserve_op(scope, estimate_micro, budget_micro))

    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.areserve`."""
        return await self._runner.arun(
            self._reserve_op(scope, estimate_micro, budget_micro)
        )

    def settle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.settle`; an unsent settlement is replayed later."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:  # issued during an outage
            reservation.owner.settle(reservation, actual_micro)
        self._runner.run(op)

    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.asettle`."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:
            await reservation.owner.asettle(reservation, actual_micro)
        await self._runner.arun(op)

    def spent(self, scope: str) -> int:
        """See :meth:`RouterState.spent`."""
        return self._runner.run(self._spent_op(scope))

    async def aspent(self, scope: str) -> int:
        """See :meth:`RouterState.aspent`."""
        return await self._runner.arun(self._spent_op(scope))
