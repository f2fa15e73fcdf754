"""Router state kept in this process's memory: :class:`InProcessState`.

The default state, and what ``RedisState`` answers from while Redis is
unreachable with ``on_error="open"``. Every method is a few dictionary
operations under one lock. Import it from :mod:`langchain_wandb_router._state`
(which re-exports it) or from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable

from langchain_wandb_router._state import (
    HEALTH_BUCKETS,
    OUTCOMES,
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    Lease,
    Outcome,
    Reservation,
    RouterState,
    SlotTimeoutError,
    check_hard_limit,
    check_micro,
    check_outcome,
)

__all__ = ["InProcessState"]

# Longest a waiter sleeps before looking again: lease expiry and limit
# forgetting are driven by time, not by a release that could wake it.
_MAX_WAIT = 0.25


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
    """One route's leases, adaptive limit and waiters.

    ``held`` maps token -> expiry in expiry order (every lease lives the same
    TTL and ``renew`` re-inserts), so expired leases are always at its front.
    """

    __slots__ = ("cond", "cut_at", "held", "limit", "oks", "touched", "waiters")

    def __init__(self, limit: int | None) -> None:
        self.held: dict[int | str, float] = {}
        self.limit = limit
        self.cut_at = float("-inf")
        self.oks = 0
        self.touched = 0.0
        self.cond: threading.Condition | None = None
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


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


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class InProcessState(RouterState):
    """Router state in this process's memory; thread- and asyncio-safe.

    One lock guards short dictionary updates and is never held across I/O or
    an ``await``. Async waiters on any event loop are woken through their own
    loop, so several loops (threads, repeated ``asyncio.run``) can share it.

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
        self.health = health or HealthSettings()
        self.concurrency = concurrency or ConcurrencySettings()
        self.budget = budget or BudgetSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._health: dict[str, _Health] = {}
        self._cooling: dict[str, float] = {}  # key -> until, only tripped keys
        self._slots: dict[str, _Slots] = {}
        self._budgets: dict[str, _Budget] = {}
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

    def acquire(self, key: str, hard_limit: int | None, deadline: float) -> Lease:
        """See :meth:`RouterState.acquire`."""
        check_hard_limit(hard_limit)
        with self._lock:
            while True:
                now = self._clock()
                slots = self._route(key, now)
                got = self._take(key, slots, hard_limit, now)
                if isinstance(got, Lease):
                    return got
                if now >= deadline:
                    raise SlotTimeoutError(key, got)
                if slots.cond is None:
                    slots.cond = threading.Condition(self._lock)
                slots.cond.wait(min(deadline - now, _MAX_WAIT))

    async def aacquire(
        self, key: str, hard_limit: int | None, deadline: float
    ) -> Lease:
        """See :meth:`RouterState.aacquire`."""
        check_hard_limit(hard_limit)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                now = self._clock()
                slots = self._route(key, now)
                got = self._take(key, slots, hard_limit, now)
                if isinstance(got, Lease):
                    return got
                if now >= deadline:
                    raise SlotTimeoutError(key, got)
                waiter = (loop, loop.create_future())
                slots.waiters.append(waiter)
            try:
                # No slot is held while waiting, so cancellation here is safe.
                await asyncio.wait((waiter[1],), timeout=min(deadline - now, _MAX_WAIT))
            finally:
                with self._lock:
                    if waiter in slots.waiters:
                        slots.waiters.remove(waiter)

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
            if slots.cond is not None:
                slots.cond.notify_all()
            if slots.waiters:
                self._wake_async(slots)

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

    @staticmethod
    def _wake_async(slots: _Slots) -> None:
        for loop, future in slots.waiters:
            # A closed loop raises RuntimeError; its waiter is gone anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, future)
        slots.waiters.clear()

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
