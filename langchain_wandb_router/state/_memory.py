"""Router state kept in this process's memory: :class:`InProcessState`.

The default state, and what ``RedisState`` answers from while Redis is
unreachable with ``on_error="open"``. It holds each model's health buckets,
each route's leases and adaptive limit, each scope's spend and reservations,
and the queues of callers waiting for a slot (``_waiters``). Every method is a
few dictionary operations under one lock; a caller's wait is steps (see
``_steps``): parked by a blocking or an awaiting interpreter, looking again
under the lock when woken.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.state._interface import (
    HEALTH_BUCKETS,
    OUTCOMES,
    Lease,
    QueuedState,
    Reservation,
    SlotTimeoutError,
    Want,
    check_hard_limit,
    check_micro,
    check_outcome,
)
from langchain_wandb_router.state._steps import Steps, adrive, drive
from langchain_wandb_router.state._waiters import (
    Park,
    Waiter,
    WaitQueues,
    apark,
    park,
)

if TYPE_CHECKING:  # only in signatures: QueuedState applies the settings
    from langchain_wandb_router.state._interface import (
        BudgetSettings,
        ConcurrencySettings,
        HealthSettings,
        Outcome,
    )

__all__ = ["InProcessState"]

# Longest a waiter sleeps before looking again itself: a release wakes it,
# but lease expiry and limit forgetting free slots with nobody releasing.
_SAFETY_WAIT = 1.0


class _Health:
    """One model's outcomes per window bucket, failure streak and cooldown."""

    __slots__ = ("epochs", "fails", "streak", "totals", "until")

    def __init__(self) -> None:
        self.epochs = [-1] * HEALTH_BUCKETS
        self.fails = [0] * HEALTH_BUCKETS
        self.totals = [0] * HEALTH_BUCKETS
        self.streak = 0
        self.until: float | None = None


class _Slots:
    """One route's leases and adaptive limit.

    ``held`` maps token -> expiry in expiry order (every lease lives the same
    TTL and ``renew`` re-inserts), so expired leases are always at its front.
    """

    __slots__ = ("cut_at", "held", "limit", "oks", "touched")

    def __init__(self, limit: int | None) -> None:
        self.held: dict[int | str, float] = {}
        self.limit = limit
        self.cut_at = float("-inf")
        self.oks = 0
        self.touched = 0.0


class _Budget:
    """One scope's spend and outstanding reservations (token -> micro, expiry)."""

    __slots__ = ("held", "outstanding", "spent")

    def __init__(self) -> None:
        self.spent = 0
        self.outstanding = 0
        self.held: dict[int | str, tuple[int, float]] = {}


def _drop_expired(held: dict[int | str, float], now: float) -> None:
    """Forget expired leases (they are at the front of ``held``)."""
    while held:
        token = next(iter(held))
        if held[token] > now:
            return
        del held[token]


class InProcessState(QueuedState):
    """Router state in this process's memory; thread- and asyncio-safe.

    One lock guards short dictionary updates and is never held across I/O or
    an ``await``. A caller waiting for a slot stands in a FIFO queue of every
    route it can use; a freed slot is handed to the first of them and wakes
    that caller alone, on its own thread or event loop, so several loops
    (threads, repeated ``asyncio.run``) can share one state.

    Args:
        health: When models cool down.
        concurrency: Lease lifetime and adaptive limit behaviour.
        budget: Reservation lifetime.
        clock: Monotonic seconds (a test seam); deadlines use this clock.
    """

    # Only aacquire waits, and a cancelled wait holds no slot.
    answers_at_once = True

    def __init__(
        self,
        *,
        health: HealthSettings | None = None,
        concurrency: ConcurrencySettings | None = None,
        budget: BudgetSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(health=health, concurrency=concurrency, budget=budget)
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._health: dict[str, _Health] = {}
        self._cooling: dict[str, float] = {}  # key -> until, only tripped keys
        self._slots: dict[str, _Slots] = {}
        self._budgets: dict[str, _Budget] = {}
        self._queues = WaitQueues()
        self._width = self.health.window_seconds / HEALTH_BUCKETS
        # Read on every call: kept flat rather than through the settings.
        self._ttl = self.concurrency.lease_ttl_seconds
        self._initial = self.concurrency.initial_limit
        self._forget = self.concurrency.forget_after_seconds

    # Health ------------------------------------------------------------------
    def report(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.report`."""
        settings = self.health
        if settings.failures <= 0:
            return
        now = self._clock()
        epoch = int(now // self._width)
        with self._lock:
            rec = self._health.get(key)
            if rec is None:
                rec = self._health[key] = _Health()
            elif not failed and rec.until is not None and now >= rec.until:
                # Served again after its cooldown: a fresh start.
                del self._health[key]
                self._cooling.pop(key, None)
                return
            i = epoch % HEALTH_BUCKETS
            if rec.epochs[i] != epoch:
                rec.epochs[i] = epoch
                rec.fails[i] = rec.totals[i] = 0
            rec.totals[i] += 1
            if not failed:
                rec.streak = 0
                return
            rec.fails[i] += 1
            rec.streak += 1
            if self._tripped(rec, epoch):
                rec.until = now + settings.cooldown_seconds
                self._cooling[key] = rec.until

    def _tripped(self, rec: _Health, epoch: int) -> bool:
        settings = self.health
        if rec.streak >= settings.failures:
            return True
        oldest = epoch - HEALTH_BUCKETS
        fails = total = 0
        for e, f, t in zip(rec.epochs, rec.fails, rec.totals, strict=True):
            if e > oldest:
                fails += f
                total += t
        return fails >= settings.failures and fails >= settings.failure_ratio * total

    def cooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.cooling`."""
        if not self._cooling:  # the common case: nothing has tripped
            return {}
        now = self._clock()
        out: dict[str, float] = {}
        for key in keys:
            until = self._cooling.get(key)
            if until is not None and until > now:
                out[key] = until - now
        return out

    # Concurrency -------------------------------------------------------------
    def _route(self, key: str, now: float) -> _Slots:
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = _Slots(self._initial)
        elif slots.limit != self._initial and now - slots.touched >= self._forget:
            slots.limit = self._initial
            slots.oks = 0
            slots.cut_at = float("-inf")
        return slots

    def _take(
        self, key: str, slots: _Slots, hard_limit: int | None, now: float
    ) -> Lease | int | None:
        """A lease, or the cap that is full (``None`` cap never is)."""
        cap = slots.limit
        if hard_limit is not None and (cap is None or hard_limit < cap):
            cap = hard_limit
        held = slots.held
        if cap is not None and len(held) >= cap:
            _drop_expired(held, now)
            if len(held) >= cap:
                return cap
        token = next(self._ids)
        held[token] = now + self._ttl
        return Lease(key, token, self)

    def try_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.try_acquire`."""
        if hard_limit is not None and hard_limit < 1:
            check_hard_limit(hard_limit)
        now = self._clock()
        with self._lock:
            got = self._take(key, self._route(key, now), hard_limit, now)
        return got if isinstance(got, Lease) else None

    def _take_any(self, wants: Sequence[Want], now: float) -> Lease | Want:
        """A lease of the first of ``wants`` with room, or the first full cap."""
        full: Want | None = None
        for key, hard_limit in wants:
            got = self._take(key, self._route(key, now), hard_limit, now)
            if isinstance(got, Lease):
                return got
            if full is None:
                full = (key, got)
        assert full is not None
        return full

    def _wait_start(
        self, wants: Sequence[Want], deadline: float, loop: Any = None
    ) -> Lease | Waiter:
        """Take a slot now, or queue a waiter (under the lock)."""
        for _, hard_limit in wants:
            check_hard_limit(hard_limit)
        now = self._clock()
        got = self._take_any(wants, now)
        if isinstance(got, Lease):
            return got
        if now >= deadline:
            raise SlotTimeoutError(*got)
        waiter = Waiter(dict(wants), loop)
        self._queues.join(waiter)
        return waiter

    def _wait_step(
        self, waiter: Waiter, wants: Sequence[Want], deadline: float
    ) -> Lease | float:
        """After a wake-up: the lease, or how long to wait again (under the lock)."""
        if waiter.lease is not None:
            return waiter.lease
        now = self._clock()
        got = self._take_any(wants, now)  # freed by time: expiry, forgetting
        if isinstance(got, Lease):
            self._queues.leave(waiter)
            return got
        if now >= deadline:
            self._queues.leave(waiter)
            raise SlotTimeoutError(*got)
        waiter.arm()
        return min(deadline - now, _SAFETY_WAIT)

    def _abandon(self, waiter: Waiter) -> None:
        """The caller stopped waiting: give back a slot handed over meanwhile."""
        with self._lock:
            lease, waiter.lease = waiter.lease, None
            self._queues.leave(waiter)
        if lease is not None:
            self.release(lease, "other")

    def _waiting(
        self, waiter: Waiter, wants: Sequence[Want], deadline: float
    ) -> Steps[Park, Lease]:
        """A queued caller's steps: park until woken (or due), look, again."""
        wait = min(deadline - self._clock(), _SAFETY_WAIT)
        try:
            while True:
                yield Park(waiter, wait)
                with self._lock:
                    step = self._wait_step(waiter, wants, deadline)
                if isinstance(step, Lease):
                    return step
                wait = step
        except BaseException:
            self._abandon(waiter)
            raise

    def acquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.acquire_any`; woken by the release that serves it."""
        with self._lock:
            got = self._wait_start(wants, deadline)
        if isinstance(got, Lease):
            return got
        return drive(self._waiting(got, wants, deadline), park)

    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """See :meth:`RouterState.aacquire_any`; woken by the release that serves it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            got = self._wait_start(wants, deadline, loop)
        if isinstance(got, Lease):
            return got
        return await adrive(self._waiting(got, wants, deadline), apark)

    def waiting(self, keys: Iterable[str]) -> int:
        """How many callers wait for a slot of any of ``keys`` (for tests)."""
        with self._lock:
            return self._queues.waiting(keys)

    def release(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.release`."""
        if lease.owner is not self:
            raise ValueError("this lease was issued by another state")
        if outcome not in OUTCOMES:
            check_outcome(outcome)
        now = self._clock()
        with self._lock:
            slots = self._route(lease.key, now)
            slots.held.pop(lease.token, None)
            if outcome == "limited":
                self._decrease(slots, len(slots.held), now)
            elif outcome == "ok" and slots.limit is not None:
                slots.touched = now
                slots.oks += 1
                if slots.oks >= slots.limit * self.concurrency.increase_after:
                    slots.limit += 1
                    slots.oks = 0
            self._hand_off(lease.key, slots, now)

    def _decrease(self, slots: _Slots, admitted: int, now: float) -> None:
        # W&B refused this request while ``admitted`` others were in flight:
        # that is about what it lets through, so hold the limit there.
        slots.touched = now
        if now - slots.cut_at < self.concurrency.decrease_interval_seconds:
            return
        base = admitted if slots.limit is None else min(slots.limit, admitted)
        slots.limit = max(1, base)
        slots.cut_at = now
        slots.oks = 0

    def _hand_off(self, key: str, slots: _Slots, now: float) -> None:
        """Give the room ``key`` has now to its first waiters, one slot each."""
        while True:
            waiter = self._queues.first_open(key)
            if waiter is None:
                return
            got = self._take(key, slots, waiter.limits[key], now)
            if not isinstance(got, Lease):
                return  # full for the first in line: it keeps its place
            self._queues.served(key, waiter, got)
            if not waiter.wake():  # its loop is closed: nobody will claim it
                waiter.lease = None
                slots.held.pop(got.token, None)

    def renew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.renew`."""
        if lease.owner is not self:
            raise ValueError("this lease was issued by another state")
        now = self._clock()
        with self._lock:
            slots = self._slots.get(lease.key)
            held = slots.held if slots is not None else {}
            expiry = held.pop(lease.token, None)
            if expiry is None or expiry <= now:
                return False
            held[lease.token] = now + self._ttl  # to the back: expiry order
            return True

    def limit(self, key: str) -> int | None:
        """See :meth:`RouterState.limit`."""
        now = self._clock()
        with self._lock:
            return self._route(key, now).limit

    def in_flight(self, key: str) -> int:
        """See :meth:`RouterState.in_flight`."""
        now = self._clock()
        with self._lock:
            slots = self._slots.get(key)
            if slots is None:
                return 0
            _drop_expired(slots.held, now)
            return len(slots.held)

    # Budget ---------------------------------------------------------------------
    def reserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.reserve`."""
        check_micro(estimate_micro, budget_micro)
        now = self._clock()
        with self._lock:
            rec = self._budgets.get(scope)
            if rec is None:
                rec = self._budgets[scope] = _Budget()
            if rec.spent + rec.outstanding + estimate_micro > budget_micro:
                for token in [t for t, (_, exp) in rec.held.items() if exp <= now]:
                    rec.outstanding -= rec.held.pop(token)[0]
                if rec.spent + rec.outstanding + estimate_micro > budget_micro:
                    return None
            token = next(self._ids)
            rec.held[token] = (
                estimate_micro,
                now + self.budget.reservation_ttl_seconds,
            )
            rec.outstanding += estimate_micro
        return Reservation(scope, token, estimate_micro, self)

    def settle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.settle`."""
        if reservation.owner is not self:
            raise ValueError("this reservation was issued by another state")
        check_micro(actual_micro)
        with self._lock:
            rec = self._budgets.get(reservation.scope)
            if rec is None:
                rec = self._budgets[reservation.scope] = _Budget()
            held = rec.held.pop(reservation.token, None)
            if held is not None:
                rec.outstanding -= held[0]
            # An expired reservation still cost what the call cost.
            rec.spent += actual_micro

    def spent(self, scope: str) -> int:
        """See :meth:`RouterState.spent`."""
        rec = self._budgets.get(scope)
        return rec.spent if rec is not None else 0

    # Async twins: nothing here blocks, so they answer directly. ------------------
    async def areport(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.areport`."""
        self.report(key, failed)

    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.acooling`."""
        return self.cooling(keys)

    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.atry_acquire`."""
        return self.try_acquire(key, hard_limit)

    async def arelease(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.arelease`."""
        self.release(lease, outcome)

    async def arenew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.arenew`."""
        return self.renew(lease)

    async def alimit(self, key: str) -> int | None:
        """See :meth:`RouterState.alimit`."""
        return self.limit(key)

    async def ain_flight(self, key: str) -> int:
        """See :meth:`RouterState.ain_flight`."""
        return self.in_flight(key)

    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.areserve`."""
        return self.reserve(scope, estimate_micro, budget_micro)

    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.asettle`."""
        self.settle(reservation, actual_micro)

    async def aspent(self, scope: str) -> int:
        """See :meth:`RouterState.aspent`."""
        return self.spent(scope)
