"""Router state: model health, concurrency leases, adaptive limits and budget.

:class:`RouterState` is what WandbRouter consults and updates around every call.
This module holds that interface, its settings, leases, reservations, errors
(re-exported from ``errors``), key helpers and argument checks; the default
multi-route wait (steps taking turns over the routes, see ``_steps``); and
:class:`QueuedState`, the base of states whose callers queue for every route
at once. ``InProcessState`` (``_memory``) keeps the state in this process (the
default); ``RedisState`` (``_redis``) shares it across processes and machines;
``_factory`` turns the router's ``state=`` setting into one.

Keys are plain strings built by :func:`route_key` and :func:`budget_key`; both
embed a Redis hash tag so every key one script touches lands in the same
Redis Cluster slot.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, Literal, NamedTuple

# Defined with every other error; re-exported here, where they were first published.
from langchain_wandb_router.errors import SlotTimeoutError, StateUnavailableError
from langchain_wandb_router.state._routes import RouteMemory
from langchain_wandb_router.state._steps import adrive, drive

__all__ = [
    "BudgetSettings",
    "ConcurrencySettings",
    "HealthSettings",
    "Lease",
    "Outcome",
    "QueuedState",
    "Reservation",
    "RouterState",
    "SlotTimeoutError",
    "StateUnavailableError",
    "Want",
    "account_fingerprint",
    "affinity_key",
    "budget_key",
    "route_key",
]

Outcome = Literal["ok", "limited", "other"]
"""How a call that held a lease ended: ``"ok"`` (answered), ``"limited"``
(W&B's concurrency 429) or ``"other"`` (any other failure)."""

OUTCOMES: frozenset[str] = frozenset({"ok", "limited", "other"})

# Health counts outcomes in this many buckets spanning the window, so memory
# per model is constant however many calls it serves.
HEALTH_BUCKETS = 6


Want = tuple[str, int | None]
"""A route a waiting caller can use: its key and hard in-flight limit."""

# How long the default multi-route wait watches one key before the next.
_SLICE = 0.1


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
    """Leases and the adaptive limit learned from W&B's 429s.

    A concurrency 429 sets the limit to the number of this key's requests
    still in flight (what W&B just admitted; at least 1); every
    ``limit * increase_after`` successes add one, probing for room again.

    Attributes:
        initial_limit: Adaptive limit before any 429; ``None`` is unlimited.
        decrease_interval_seconds: At most one decrease per interval (0: each
            429 counts).
        increase_after: Successes per unit of the limit before it grows by
            one (higher: fewer probing 429s, slower to use new room).
        lease_ttl_seconds: A lease not renewed or released within this time
            expires, so a crashed worker's slots come back.
        forget_after_seconds: With no outcome reported for this long, the
            learned limit resets to ``initial_limit``.
    """

    initial_limit: int | None = None
    decrease_interval_seconds: float = 0.0
    increase_after: int = 4
    lease_ttl_seconds: float = 120.0
    forget_after_seconds: float = 600.0

    def __post_init__(self) -> None:
        _check(
            self.initial_limit is None or self.initial_limit >= 1,
            "initial_limit must be None or >= 1",
        )
        _check(self.decrease_interval_seconds >= 0, "decrease_interval must be >= 0")
        _check(self.increase_after >= 1, "increase_after must be >= 1")
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


def account_fingerprint(api_key: str) -> str:
    """A short, non-reversible name for the account an API key belongs to.

    State keys include it so two keys (two accounts) never share limits or
    budget by accident; the key itself never reaches Redis.
    """
    digest = hashlib.sha256(b"langchain-wandb-router|account|" + api_key.encode())
    return digest.hexdigest()[:16]


def route_key(base_url: str, project: str | None, model: str, account: str = "") -> str:
    """The state key of one model route (compute it once per route).

    W&B limits concurrency per project and model, so the key is exactly that,
    within one account (``account`` is :func:`account_fingerprint`'s answer,
    never the key). The braces are a Redis hash tag shared by every key of one
    ``(base_url, account, project)`` scope, so multi-key scripts work on Redis
    Cluster.
    """
    return f"{_scope(base_url, project, account)}:m:{model}"


def affinity_key(
    base_url: str, project: str | None, conversation: str, account: str = ""
) -> str:
    """The state key of a conversation's route (``conversation``: a digest).

    In the scope of that (base URL, account, project)'s routes, so one
    account's conversations never meet another's.
    """
    return f"{_scope(base_url, project, account)}:c:{conversation}"


def _scope(base_url: str, project: str | None, account: str) -> str:
    scope = base_url.rstrip("/") + "|" + (project or "")
    if account:
        scope = f"{scope}|{account}"
    return f"wbr:{{{_tag(scope)}}}"


def budget_key(name: str) -> str:
    """The state key of a named budget (e.g. one router's ``budget_scope``)."""
    return f"wbr:{{{_tag('budget|' + name)}}}:b:{name}"


class _Look(NamedTuple):
    """A step of the default wait: try ``key`` now, or wait for it ``until``."""

    key: str
    hard_limit: int | None
    until: float | None = None


def _taking_turns(
    wants: Sequence[Want], deadline: float
) -> Generator[_Look, Lease | None, Lease]:
    """The default wait's steps: try every key, then wait a slice on the next."""
    turn = 0
    while True:
        for key, hard_limit in wants:
            lease = yield _Look(key, hard_limit)
            if lease is not None:
                return lease
        now = time.monotonic()
        if now >= deadline:
            raise SlotTimeoutError(*wants[0])
        key, hard_limit = wants[turn % len(wants)]
        turn += 1
        try:
            got = yield _Look(key, hard_limit, min(deadline, now + _SLICE))
        except SlotTimeoutError:
            continue
        assert got is not None  # an acquire answers a lease or raises
        return got


class RouterState(RouteMemory, ABC):
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

    answers_at_once: ClassVar[bool] = False
    """True when the async methods never suspend (no I/O): a cancellation
    cannot land in the middle of one, so callers need not shield them."""

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

        ``"limited"`` sets the limit to what is still in flight (at least 1,
        never raising it); ``"ok"`` adds one per ``limit * increase_after``
        successes;
        ``"other"`` leaves it alone.
        """

    @abstractmethod
    def renew(self, lease: Lease) -> bool:
        """Push back the lease's expiry (long streams); False if it expired."""

    def renew_many(self, leases: Sequence[Lease]) -> list[bool]:
        """:meth:`renew` each of ``leases`` (the heartbeat's batch), in order.

        A state that can renew many leases in one round trip overrides this.
        """
        return [self.renew(lease) for lease in leases]

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

    # Waiting on several routes at once --------------------------------------
    def acquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """Take a slot of whichever of ``wants`` has room first.

        Waits until ``deadline`` (monotonic clock) at most. This default takes
        turns over the keys in short slices; a state that learns of releases
        overrides it to wait on every key at once and wake one waiter per
        freed slot.

        Args:
            wants: ``(key, hard_limit)`` of each route the caller can use.
            deadline: When to give up.

        Raises:
            SlotTimeoutError: No slot came free in time.
        """
        return drive(_taking_turns(wants, deadline), self._look)

    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        """Async :meth:`acquire_any`; cancelling it never leaves a slot taken."""
        return await adrive(_taking_turns(wants, deadline), self._alook)

    # The interpreters of a _Look: blocking or awaited (a twin by nature).
    def _look(self, step: _Look) -> Lease | None:
        if step.until is None:
            return self.try_acquire(step.key, step.hard_limit)
        return self.acquire(step.key, step.hard_limit, step.until)

    async def _alook(self, step: _Look) -> Lease | None:
        if step.until is None:
            return await self.atry_acquire(step.key, step.hard_limit)
        return await self.aacquire(step.key, step.hard_limit, step.until)

    def close(self) -> None:
        """Free connections (nothing to do for in-process state)."""

    async def aclose(self) -> None:
        """Free the running event loop's connections."""
        self.close()


class QueuedState(RouterState):
    """A state whose callers queue for all their routes at once.

    It overrides :meth:`acquire_any` and :meth:`aacquire_any` (waiting on
    every key, woken per freed slot); waiting for one route is the case of one.

    Args:
        health: When models cool down (default settings if ``None``).
        concurrency: Lease lifetime and adaptive limit behaviour (likewise).
        budget: Lifetimes of budget records (likewise).
    """

    def __init__(
        self,
        *,
        health: HealthSettings | None = None,
        concurrency: ConcurrencySettings | None = None,
        budget: BudgetSettings | None = None,
    ) -> None:
        self.health = health or HealthSettings()
        self.concurrency = concurrency or ConcurrencySettings()
        self.budget = budget or BudgetSettings()

    def acquire(self, key: str, hard_limit: int | None, deadline: float) -> Lease:
        """See :meth:`RouterState.acquire`."""
        return self.acquire_any(((key, hard_limit),), deadline)

    async def aacquire(
        self, key: str, hard_limit: int | None, deadline: float
    ) -> Lease:
        """See :meth:`RouterState.aacquire`."""
        return await self.aacquire_any(((key, hard_limit),), deadline)


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
