"""Router state: model health, concurrency leases, adaptive limits and budget.

:class:`RouterState` is what WandbRouter consults and updates around every call.
:class:`InProcessState` keeps it in this process (the default; every method is
a few dictionary operations under one lock). ``RedisState`` (in
``_redis_state``) shares it across processes and machines. :func:`state_from`
turns the router's ``state=`` setting into one of them.

Keys are plain strings built by :func:`route_key` and :func:`budget_key`; both
embed a Redis hash tag so every key one script touches lands in the same
Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from langchain_wandb_router.errors import WandbConnectionError

__all__ = [
    "BudgetSettings",
    "ConcurrencySettings",
    "HealthSettings",
    "InProcessState",
    "Lease",
    "Outcome",
    "Reservation",
    "RouterState",
    "SlotTimeoutError",
    "StateUnavailableError",
    "budget_key",
    "route_key",
    "state_from",
]

Outcome = Literal["ok", "limited", "other"]
"""How a call that held a lease ended: ``"ok"`` (answered), ``"limited"``
(W&B's concurrency 429) or ``"other"`` (any other failure)."""

OUTCOMES: frozenset[str] = frozenset({"ok", "limited", "other"})

# Health counts outcomes in this many buckets spanning the window, so memory
# per model is constant however many calls it serves.
HEALTH_BUCKETS = 6

# Longest a waiter sleeps before looking again: lease expiry and limit
# forgetting are driven by time, not by a release that could wake it.
_MAX_WAIT = 0.25


class SlotTimeoutError(TimeoutError):
    """No concurrency slot for a route came free before the caller's deadline.

    Attributes:
        key: The route key that was full.
        limit: The limit in force when the wait gave up (hard or adaptive).
    """

    def __init__(self, key: str, limit: int | None) -> None:
        super().__init__(
            f"No concurrency slot for {key} came free before the deadline "
            f"(limit {limit}); raise max_in_flight or the deadline, or add routes."
        )
        self.key = key
        self.limit = limit


class StateUnavailableError(WandbConnectionError):
    """Shared router state (Redis) could not be reached and ``on_error="closed"``.

    Not retryable: sending the model request again does not bring Redis back.
    """

    is_retryable = False


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """When a model cools down (moves to the end of the plan).

    A model cools when, within the last ``window_seconds``, it has at least
    ``failures`` failures making up at least ``failure_ratio`` of its calls, or
    when its last ``failures`` calls all failed. A success reported after the
    cooldown ended clears the record.

    Attributes:
        failures: The failure count that trips a cooldown; 0 disables health.
        failure_ratio: Share of failed calls in the window needed with
            ``failures`` (consecutive failures trip regardless).
        window_seconds: How far back outcomes count.
        cooldown_seconds: How long a tripped model stays cooling.
    """

    failures: int = 3
    failure_ratio: float = 0.5
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        _check(self.failures >= 0, "failures must be >= 0")
        _check(0.0 <= self.failure_ratio <= 1.0, "failure_ratio must be in [0, 1]")
        _check(self.window_seconds > 0, "window_seconds must be > 0")
        _check(self.cooldown_seconds >= 0, "cooldown_seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class ConcurrencySettings:
    """Leases and the adaptive (AIMD) limit learned from W&B's 429s.

    Attributes:
        initial_limit: Adaptive limit before any 429; ``None`` is unlimited.
        decrease_interval_seconds: At most one halving per interval, so one
            wave of 429s counts once.
        lease_ttl_seconds: A lease not renewed or released within this time
            expires, so a crashed worker's slots come back.
        forget_after_seconds: With no outcome reported for this long, the
            learned limit resets to ``initial_limit``.
    """

    initial_limit: int | None = None
    decrease_interval_seconds: float = 2.0
    lease_ttl_seconds: float = 120.0
    forget_after_seconds: float = 600.0

    def __post_init__(self) -> None:
        _check(
            self.initial_limit is None or self.initial_limit >= 1,
            "initial_limit must be None or >= 1",
        )
        _check(self.decrease_interval_seconds >= 0, "decrease_interval must be >= 0")
        _check(self.lease_ttl_seconds > 0, "lease_ttl_seconds must be > 0")
        _check(self.forget_after_seconds > 0, "forget_after_seconds must be > 0")


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """Lifetimes of budget records.

    Attributes:
        reservation_ttl_seconds: A reservation never settled stops counting
            after this time.
        spent_ttl_seconds: Redis only: a scope's spend is forgotten after this
            long without a settlement (every Redis key has a TTL).
    """

    reservation_ttl_seconds: float = 600.0
    spent_ttl_seconds: float = 30 * 86400.0

    def __post_init__(self) -> None:
        _check(self.reservation_ttl_seconds > 0, "reservation_ttl must be > 0")
        _check(self.spent_ttl_seconds > 0, "spent_ttl_seconds must be > 0")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# Leases and reservations are made on every call: plain slotted dataclasses
# (a frozen one costs several times more to build). Treat them as read-only.
@dataclass(slots=True)
class Lease:
    """One held concurrency slot; give it back with ``release``.

    Attributes:
        key: The route key the slot belongs to.
        token: Identifies the slot within the state that issued it.
        owner: The state that issued it (a Redis state's fallback may own it).
    """

    key: str
    token: int | str
    owner: RouterState = field(repr=False, compare=False)


@dataclass(slots=True)
class Reservation:
    """Budget set aside for one call; replace it by the real cost with ``settle``.

    Attributes:
        scope: The budget key.
        token: Identifies the reservation within the state that issued it.
        micro: The reserved estimate in micro-dollars.
        owner: The state that issued it.
    """

    scope: str
    token: int | str
    micro: int
    owner: RouterState = field(repr=False, compare=False)


@lru_cache(maxsize=4096)
def _tag(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def route_key(base_url: str, project: str | None, model: str) -> str:
    """The state key of one model route (compute it once per route).

    W&B limits concurrency per project and model, so the key is exactly that.
    The braces are a Redis hash tag shared by every key of one
    ``(base_url, project)``, so multi-key scripts work on Redis Cluster.
    """
    return f"wbr:{{{_tag(base_url.rstrip('/') + '|' + (project or ''))}}}:m:{model}"


def budget_key(name: str) -> str:
    """The state key of a named budget (e.g. one router's ``budget_usd``)."""
    return f"wbr:{{{_tag('budget|' + name)}}}:b:{name}"


class RouterState(ABC):
    """What the router keeps between calls; see the module docstring.

    Every method has an ``a``-prefixed async twin. Methods that record what
    happened (``report``, ``release``, ``settle``) never raise because the
    state is unavailable.

    Attributes:
        health: When models cool down.
        concurrency: Lease lifetime and the adaptive limit's behaviour.
        budget: Lifetimes of budget records.
    """

    health: HealthSettings
    concurrency: ConcurrencySettings
    budget: BudgetSettings

    # Health --------------------------------------------------------------
    @abstractmethod
    def report(self, key: str, failed: bool) -> None:
        """Record one outcome for health.

        Args:
            key: The route key.
            failed: True for a retryable server-side failure (5xx, timeout,
                connection); False for a success. Request errors and W&B's
                concurrency 429s are not reported.
        """

    @abstractmethod
    def cooling(self, keys: Iterable[str]) -> dict[str, float]:
        """Seconds of cooldown left, for those of ``keys`` that are cooling."""

    # Concurrency ---------------------------------------------------------
    @abstractmethod
    def try_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """Take a slot if fewer than min(hard_limit, adaptive limit) are held."""

    @abstractmethod
    def acquire(self, key: str, hard_limit: int | None, deadline: float) -> Lease:
        """Take a slot, waiting until ``deadline`` (monotonic clock) at most.

        Raises:
            SlotTimeoutError: No slot came free in time.
        """

    @abstractmethod
    def release(self, lease: Lease, outcome: Outcome) -> None:
        """Give a slot back and feed ``outcome`` to the adaptive limit.

        ``"limited"`` halves the limit (at most once per decrease interval;
        the first one sets it to half of what was in flight); ``"ok"`` adds
        one per ``limit`` successes; ``"other"`` leaves it alone.
        """

    @abstractmethod
    def renew(self, lease: Lease) -> bool:
        """Push back the lease's expiry (long streams); False if it expired."""

    @abstractmethod
    def limit(self, key: str) -> int | None:
        """The adaptive limit now in force for ``key`` (``None``: unlimited)."""

    @abstractmethod
    def in_flight(self, key: str) -> int:
        """How many unexpired leases ``key`` has."""

    # Budget ---------------------------------------------------------------
    @abstractmethod
    def reserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """Set aside ``estimate_micro``; None if spent + reserved would pass budget."""

    @abstractmethod
    def settle(self, reservation: Reservation, actual_micro: int) -> None:
        """Replace a reservation by the call's real cost (call exactly once)."""

    @abstractmethod
    def spent(self, scope: str) -> int:
        """Micro-dollars settled under ``scope``."""

    # Async twins ------------------------------------------------------------
    @abstractmethod
    async def areport(self, key: str, failed: bool) -> None:
        """Async :meth:`report`."""

    @abstractmethod
    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        """Async :meth:`cooling`."""

    @abstractmethod
    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """Async :meth:`try_acquire`."""

    @abstractmethod
    async def aacquire(
        self, key: str, hard_limit: int | None, deadline: float
    ) -> Lease:
        """Async :meth:`acquire`; cancelling it never leaves a slot taken."""

    @abstractmethod
    async def arelease(self, lease: Lease, outcome: Outcome) -> None:
        """Async :meth:`release`."""

    @abstractmethod
    async def arenew(self, lease: Lease) -> bool:
        """Async :meth:`renew`."""

    @abstractmethod
    async def alimit(self, key: str) -> int | None:
        """Async :meth:`limit`."""

    @abstractmethod
    async def ain_flight(self, key: str) -> int:
        """Async :meth:`in_flight`."""

    @abstractmethod
    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """Async :meth:`reserve`."""

    @abstractmethod
    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        """Async :meth:`settle`."""

    @abstractmethod
    async def aspent(self, scope: str) -> int:
        """Async :meth:`spent`."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to free here
        """Free connections (nothing to do for in-process state)."""

    async def aclose(self) -> None:
        """Free the running event loop's connections."""
        self.close()


def check_hard_limit(hard_limit: int | None) -> None:
    """Reject a hard limit that could never admit a call."""
    if hard_limit is not None and hard_limit < 1:
        raise ValueError(f"hard_limit must be None or >= 1, got {hard_limit}")


def check_outcome(outcome: str) -> None:
    """Reject an outcome that is not one of :data:`Outcome`."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {outcome!r}")


def check_micro(*amounts: int) -> None:
    """Reject negative money amounts."""
    for amount in amounts:
        if amount < 0:
            raise ValueError(f"amounts are micro-dollars >= 0, got {amount}")


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
            in_flight = len(slots.held)
            slots.held.pop(lease.token, None)
            if outcome == "limited":
                self._decrease(slots, in_flight, now)
            elif outcome == "ok" and slots.limit is not None:
                slots.touched = now
                slots.oks += 1
                if slots.oks >= slots.limit:
                    slots.limit += 1
                    slots.oks = 0
            if slots.cond is not None:
                slots.cond.notify_all()
            if slots.waiters:
                self._wake_async(slots)

    def _decrease(self, slots: _Slots, in_flight: int, now: float) -> None:
        slots.touched = now
        if now - slots.cut_at < self.concurrency.decrease_interval_seconds:
            return  # the same wave of 429s: count it once
        base = in_flight if slots.limit is None else min(slots.limit, in_flight)
        slots.limit = max(1, base // 2)
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


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def state_from(
    spec: RouterState | str | None,
    *,
    health: HealthSettings | None = None,
    concurrency: ConcurrencySettings | None = None,
    budget: BudgetSettings | None = None,
    on_error: Literal["open", "closed"] = "open",
) -> RouterState:
    """The router state a ``state=`` setting names.

    Args:
        spec: ``None`` (a new :class:`InProcessState`), a :class:`RouterState`
            (used as is, with its own settings), or a ``redis://``,
            ``rediss://`` or ``unix://`` URL (a shared ``RedisState``).
        health: Settings for a new state.
        concurrency: Settings for a new state.
        budget: Settings for a new state.
        on_error: What a new Redis state does while Redis is unreachable:
            ``"open"`` (per-process state, one warning) or ``"closed"``
            (raise :class:`StateUnavailableError`).

    Raises:
        ImportError: A Redis URL was given but redis-py is not installed.
        ValueError: ``spec`` is a string of another kind.
    """
    if isinstance(spec, RouterState):
        return spec
    if spec is None:
        return InProcessState(health=health, concurrency=concurrency, budget=budget)
    if isinstance(spec, str) and spec.lower().startswith(_REDIS_SCHEMES):
        try:
            from langchain_wandb_router._redis_state import RedisState
        except ImportError as exc:
            raise ImportError(
                "state='redis://…' needs redis-py: "
                "pip install 'langchain-wandb-router[redis]'"
            ) from exc
        return RedisState.from_url(
            spec,
            health=health,
            concurrency=concurrency,
            budget=budget,
            on_error=on_error,
        )
    # Name only the scheme: the string may carry a password.
    if isinstance(spec, str):
        kind = spec.split("://", 1)[0] + "://…" if "://" in spec else "a plain string"
    else:
        kind = type(spec).__name__
    raise ValueError(
        f"Unsupported router state ({kind}): pass None (in-process), a "
        "RouterState, or a redis://, rediss:// or unix:// URL."
    )
