"""The one call driver of WandbRouter: plan, attempts, commit.

Every decision of a routed call is written once here, as a generator that
yields *effects* (try a route, take a concurrency slot, wait, release, reserve
budget) and receives their results. ``invoke``/``ainvoke``/``stream``/
``astream`` are small interpreters that carry the effects out with sync or
async I/O (:func:`drive` and :func:`adrive`), so the four paths cannot drift.

Decisions, in order of a call:

1. Budget: reserve an estimate of the call's cost before anything is sent.
2. Order: candidates keep the user's order; cooling routes go last, never out.
3. Pick: the first route that may be tried now (not backing off) and has a
   free concurrency slot. If none has room, wait for a slot of any of them at
   once (the state wakes one waiter per freed slot); if all are backing
   off, sleep until the first is due (bounded by the call's deadline). A
   route backing off after a ``Retry-After`` never holds the call while
   another route can serve.
4. Outcome: W&B's concurrency 429 is backpressure (the slot limit adapts, the
   route is retried when a slot frees, health is untouched); 5xx, timeouts and
   connection errors count against health and the route's retries; a 404 or a
   status in ``fallback_statuses`` moves on; other errors surface at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langchain_core.runnables import Runnable

from langchain_wandb_router.errors import (
    BudgetExceededError,
    NoRouteAvailableError,
    WandbError,
    WandbModelNotFoundError,
    WandbTimeoutError,
)
from langchain_wandb_router.router._attempts import Attempts, note_attempts
from langchain_wandb_router.router._routing import Candidate
from langchain_wandb_router.state._interface import (
    Lease,
    Reservation,
    RouterState,
    SlotTimeoutError,
    Want,
)
from langchain_wandb_router.state._leases import KEEPER, LeaseKeeper
from langchain_wandb_router.transport._retry import RetryPolicy, is_concurrency_limit

__all__ = [
    "Attempt",
    "CallDriver",
    "Committed",
    "Failure",
    "Held",
    "Outcome",
    "RouteRun",
    "adrive",
    "aundo",
    "drive",
    "undo",
    "within",
]

T = TypeVar("T")
Outcome = Literal["ok", "limited", "failed", "other"]

# A concurrency 429 costs no retry, but a call that meets nothing else must
# still end: this many in a row on one route and it is given up.
_MAX_LIMITED = 20
_LIMITED_BACKOFF_CAP = 1.0
# How often a call waiting for reserved budget to settle looks again.
_BUDGET_POLL = 0.05
_MAX_SLOT_WAIT = 600.0


@dataclass
class RouteRun:
    """One candidate's progress within a call."""

    cand: Candidate
    model: Runnable[Any, Any]
    """What is called: the route's chat model (with tools bound, if any)."""
    kwargs: dict[str, Any]
    """Call arguments for this route (``stop``, ``response_format``...)."""
    key: str
    """Health and concurrency key: (base URL, project, model) for W&B routes."""
    slots: bool
    """Whether the route takes concurrency slots (W&B routes do)."""
    limit: int | None
    """The hard in-flight cap (``max_in_flight``) for this route, if any."""
    retries_left: int
    not_before: float = 0.0
    limited: int = 0
    no_room: bool = False
    done: bool = False


# ------------------------------------------------------------------ effects


@dataclass(frozen=True)
class Cooling:
    """Ask the state which keys are cooling (seconds left each)."""

    keys: list[str]


@dataclass(frozen=True)
class TryAcquire:
    """Take a slot if one is free now; ``None`` if not."""

    key: str
    limit: int | None


@dataclass(frozen=True)
class WaitSlot:
    """Wait for a slot of any of ``wants`` until ``deadline`` (monotonic)."""

    wants: tuple[Want, ...]
    deadline: float


@dataclass(frozen=True)
class Finish:
    """Release a slot (if any) and record the outcome for health and limits."""

    lease: Lease | None
    key: str
    outcome: Outcome


@dataclass(frozen=True)
class Reserve:
    """Reserve ``micro`` micro-dollars of ``budget`` before the call."""

    scope: str
    micro: int
    budget: int


@dataclass(frozen=True)
class Spent:
    """Ask what has been spent under ``scope`` (micro-dollars)."""

    scope: str


@dataclass(frozen=True)
class Settle:
    """Replace a reservation by what the call really cost."""

    reservation: Reservation
    micro: int


@dataclass(frozen=True)
class Sleep:
    """Wait; nothing else can be tried before then."""

    seconds: float


@dataclass(frozen=True)
class Attempt:
    """Call this route (invoke it, or open its stream and read a first chunk)."""

    route: RouteRun


Effect = (
    Cooling
    | TryAcquire
    | WaitSlot
    | Finish
    | Reserve
    | Spent
    | Settle
    | Sleep
    | Attempt
)


@dataclass(frozen=True)
class Failure:
    """What an attempt raised, handed back to the driver."""

    error: Exception


@dataclass
class Committed(Generic[T]):
    """The attempt that served the call, and what must happen when it ends."""

    route: RouteRun
    value: T
    lease: Lease | None
    reservation: Reservation | None
    record: dict[str, Any]


@dataclass
class CallDriver:
    """The decisions of one routed call (see the module docstring)."""

    routes: list[RouteRun]
    excluded: dict[str, str]
    policy: RetryPolicy
    fallback_statuses: frozenset[int]
    deadline: float | None = None
    """Monotonic time by which the whole call must be done."""
    budget: tuple[str, int, int] | None = None
    """(scope, estimate, budget) in micro-dollars when a budget is set."""
    clock: Callable[[], float] = time.monotonic
    attempts: Attempts = field(init=False)
    _slots_until: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.attempts = Attempts(self.excluded)

    def run(self) -> Generator[Effect, Any, Committed[Any]]:
        """Drive the call to its first success (or raise what ended it)."""
        # Nothing here undoes what the call holds when it fails: the
        # interpreters track the slot and reservation (:class:`Held`) and
        # give them back in their ``finally`` paths, so a cancelled or
        # abandoned call never needs this generator to yield again.
        reservation = None
        if self.budget is not None:
            reservation = yield from self._reserve(*self.budget)
        yield from self._order()
        return (yield from self._attempts(reservation))

    def _reserve(
        self, scope: str, estimate: int, budget: int
    ) -> Generator[Effect, Any, Reservation]:
        """Hold an estimate of the call's cost against the budget.

        A call is admitted while what is spent and reserved is under the
        budget, so it may pass the budget by at most its own cost, never by
        everyone's. While calls in flight hold what is left, wait for them to
        settle rather than refuse money that may come back.
        """
        while True:
            reservation = yield Reserve(scope, estimate, budget + estimate - 1)
            if reservation is not None:
                return reservation  # type: ignore[no-any-return]
            spent = yield Spent(scope)
            if spent >= budget:
                raise BudgetExceededError(
                    f"Budget of ${budget / 1e6:.6f} reached (spent "
                    f"${spent / 1e6:.6f}); raise budget_usd or use a new "
                    "budget_scope."
                )
            self._check_deadline(self.clock())
            self._slot_deadline()  # bounded like a wait for a slot
            yield Sleep(_BUDGET_POLL)

    def finish(
        self, done: Committed[Any], outcome: Outcome, cost_micro: int
    ) -> Generator[Effect, Any, None]:
        """Close a committed call: release its slot, count its cost."""
        yield Finish(done.lease, done.route.key, outcome)
        if done.reservation is not None:
            yield Settle(done.reservation, cost_micro)

    # -------------------------------------------------------------- steps

    def _order(self) -> Generator[Effect, Any, None]:
        cooling: dict[str, float] = yield Cooling([r.key for r in self.routes])
        if not cooling:
            return
        ready = [r for r in self.routes if r.key not in cooling]
        waiting = sorted(
            (r for r in self.routes if r.key in cooling), key=lambda r: cooling[r.key]
        )
        for route in waiting:
            # Reported, and still tried last: health never costs availability.
            self.excluded[route.cand.label] = (
                f"cooling down ({cooling[route.key]:.1f}s left); tried last"
            )
        self.routes = ready + waiting

    def _attempts(
        self, reservation: Reservation | None
    ) -> Generator[Effect, Any, Committed[Any]]:
        while True:
            live = [r for r in self.routes if not r.done]
            if not live:
                raise self._exhausted()
            now = self.clock()
            self._check_deadline(now)
            route, lease = None, None
            for candidate in live:
                if candidate.not_before > now or candidate.no_room:
                    continue
                if candidate.slots:
                    lease = yield TryAcquire(candidate.key, candidate.limit)
                    if lease is None:
                        candidate.no_room = True
                        continue
                route = candidate
                break
            if route is None:
                crowded = [r for r in live if r.no_room]
                if crowded:
                    # Wait on every crowded route at once (the first slot any
                    # of them frees is this call's), until the deadline or
                    # until a route backing off is due again.
                    until = self._slot_deadline()
                    for other in live:
                        if not other.no_room:
                            until = min(until, other.not_before)
                    wants = tuple((r.key, r.limit) for r in crowded)
                    lease = yield WaitSlot(wants, until)
                    for other in live:
                        other.no_room = False
                    if lease is None:
                        continue
                    route = next(r for r in crowded if r.key == lease.key)
                else:
                    due = min(r.not_before for r in live)
                    yield Sleep(self._bounded(due - now))
                    # Due now, whatever the clock says (tests inject sleeps).
                    for waiting in live:
                        if waiting.not_before <= due:
                            waiting.not_before = 0.0
                    continue
            for other in live:
                other.no_room = False
            started = self.clock()
            result = yield Attempt(route)
            if isinstance(result, Failure):
                outcome, fatal = self._failed(route, result.error, started)
                yield Finish(lease, route.key, outcome)
                if fatal is not None:
                    raise fatal
                continue
            return Committed(
                route, result, lease, reservation, self._record(route, started)
            )

    def _failed(
        self, route: RouteRun, error: Exception, started: float
    ) -> tuple[Outcome, Exception | None]:
        """Classify a failed attempt; return its outcome and a final error."""
        self.attempts.failed(route.cand.label, error, started)
        now = self.clock()
        if is_concurrency_limit(error):
            # Backpressure: a slot frees soon; the retry waits for it, and a
            # Retry-After hint only delays this route, not the others.
            route.limited += 1
            route.done = route.limited > _MAX_LIMITED
            hint = self.policy.retry_after(error)
            if hint is None and route.limited > 1:
                # Refused again: the slots are held elsewhere (other workers),
                # so back off briefly instead of asking in a tight loop.
                hint = min(self.policy.delay(route.limited - 1), _LIMITED_BACKOFF_CAP)
            route.not_before = now + (hint or 0.0)
            return "limited", None
        if self.policy.is_retryable(error):
            route.retries_left -= 1
            route.done = route.retries_left < 0
            attempt = len(
                [a for a in self.attempts.records if a["model"] == route.cand.label]
            )
            route.not_before = now + self.policy.delay(attempt, error)
            return "failed", None
        status = getattr(error, "status_code", None)
        if (
            isinstance(error, WandbModelNotFoundError)
            or status in self.fallback_statuses
        ):
            route.done = True
            return "other", None
        note_attempts(error, self.attempts)
        return "other", error

    def _record(self, route: RouteRun, started: float) -> dict[str, Any]:
        self.attempts.succeeded(route.cand.label, started)
        reason = route.cand.reason
        records = self.attempts.records
        if len(records) > 1 and records[-2]["error"]:
            reason = f"{reason}; after {records[-2]['model']} failed"
        return {
            "model": route.cand.label,
            "reason": reason,
            "attempts": records,
            "excluded": self.excluded,
        }

    def _exhausted(self) -> BaseException:
        error = self.attempts.last_error
        if error is not None:
            note_attempts(error, self.attempts)
            return error
        return NoRouteAvailableError(
            "No W&B model could be tried.", reasons=self.excluded
        )

    def _check_deadline(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            error: WandbError = WandbTimeoutError(
                "The router's deadline passed before any model answered; raise "
                "deadline= or check the attempts below."
            )
            note_attempts(error, self.attempts)
            raise error

    def _slot_deadline(self) -> float:
        if self.deadline is not None:
            return self.deadline
        if self._slots_until is None:
            # Without a deadline a slot wait is still bounded: W&B frees slots
            # within one request's time, so minutes mean something is stuck.
            self._slots_until = self.clock() + _MAX_SLOT_WAIT
        elif self.clock() >= self._slots_until:
            error = WandbTimeoutError(
                f"No concurrency slot came free in {_MAX_SLOT_WAIT:.0f}s; check "
                "max_in_flight and what else uses this W&B project."
            )
            note_attempts(error, self.attempts)
            raise error
        return self._slots_until

    def _bounded(self, seconds: float) -> float:
        if self.deadline is None:
            return max(seconds, 0.0)
        return max(min(seconds, self.deadline - self.clock()), 0.0)


# ---------------------------------------------------------------- interpreters


@dataclass(slots=True)
class Held:
    """What a call holds right now: slots, a budget reservation, a request.

    The interpreters note every slot and reservation an effect hands out or
    gives back, so that whatever ends a call (an error, ``task.cancel()``,
    ``asyncio.wait_for``, a stream closed early, ``KeyboardInterrupt``) the
    call path's ``finally`` returns what is still held (:func:`undo`,
    :func:`aundo`) without asking the driver generator to run again. Leases
    are kept alive by the lease keeper while held.

    Attributes:
        leases: Slots taken and not yet given back.
        reservation: The budget reservation not yet settled.
        sending: A request may be at W&B now (an attempt or a committed
            stream is under way): if the call ends here, W&B may bill it.
        bill: What to settle if the call ends while sending (micro-dollars);
            ``None``: the reservation's estimate.
    """

    keeper: LeaseKeeper = field(default=KEEPER, repr=False)
    leases: list[Lease] = field(default_factory=list)
    reservation: Reservation | None = None
    sending: bool = False
    bill: int | None = None

    def __bool__(self) -> bool:
        return bool(self.leases) or self.reservation is not None

    def took(self, lease: Lease | None) -> None:
        """A slot was handed out (``None``: none was)."""
        if lease is not None:
            self.leases.append(lease)
            self.keeper.add(lease)

    def gives_back(self, effect: Effect) -> None:
        """``effect`` is about to return a slot or settle the reservation."""
        if isinstance(effect, Finish) and effect.lease is not None:
            self._drop(effect.lease)
        elif isinstance(effect, Settle) and effect.reservation is self.reservation:
            self.reservation = None

    def _drop(self, lease: Lease) -> None:
        self.keeper.discard(lease)
        for i, held in enumerate(self.leases):
            if held is lease:
                del self.leases[i]
                return

    def undo_effects(self) -> list[Finish | Settle]:
        """What gives everything back, as effects; empties the record."""
        effects: list[Finish | Settle] = [
            Finish(lease, lease.key, "other") for lease in self.leases
        ]
        for lease in self.leases:
            self.keeper.discard(lease)
        self.leases = []
        if self.reservation is not None:
            reservation, self.reservation = self.reservation, None
            cost = 0
            if self.sending:
                # The request may have reached W&B, which may bill it.
                cost = reservation.micro if self.bill is None else self.bill
            effects.append(Settle(reservation, cost))
        return effects


def drive(
    steps: Generator[Effect, Any, T],
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[RouteRun], Any],
    held: Held,
) -> T:
    """Carry out a driver's effects with blocking I/O; return its result.

    ``held`` records the slots and reservation the effects hand out; the
    caller gives back what is left with :func:`undo`.
    """
    value: Any = None
    try:
        while True:
            try:
                effect = steps.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            value = _carry_out(effect, state, policy, attempt, held)
    finally:
        steps.close()  # a driver left suspended holds nothing of its own


def _carry_out(
    effect: Effect,
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[RouteRun], Any],
    held: Held,
) -> Any:
    if isinstance(effect, Attempt):
        held.sending = True
        try:
            value = attempt(effect.route)
        except Exception as exc:  # handed to the driver to classify
            value = Failure(exc)
        held.sending = False
        return value
    if isinstance(effect, TryAcquire):
        lease = state.try_acquire(effect.key, effect.limit)
        held.took(lease)
        return lease
    if isinstance(effect, WaitSlot):
        try:
            lease = state.acquire_any(effect.wants, effect.deadline)
        except SlotTimeoutError:
            return None
        held.took(lease)
        return lease
    if isinstance(effect, Finish):
        held.gives_back(effect)
        _finish(state, effect)
        return None
    if isinstance(effect, Cooling):
        return state.cooling(effect.keys)
    if isinstance(effect, Reserve):
        reservation = state.reserve(effect.scope, effect.micro, effect.budget)
        held.reservation = reservation or held.reservation
        return reservation
    if isinstance(effect, Spent):
        return state.spent(effect.scope)
    if isinstance(effect, Settle):
        held.gives_back(effect)
        state.settle(effect.reservation, effect.micro)
        return None
    policy.sleep(effect.seconds)
    return None


async def adrive(
    steps: Generator[Effect, Any, T],
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[RouteRun], Awaitable[Any]],
    held: Held,
) -> T:
    """Async :func:`drive`; give back what is left with :func:`aundo`."""
    value: Any = None
    try:
        while True:
            try:
                effect = steps.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            value = await _acarry_out(effect, state, policy, attempt, held)
    finally:
        steps.close()


async def _acarry_out(
    effect: Effect,
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[RouteRun], Awaitable[Any]],
    held: Held,
) -> Any:
    if isinstance(effect, Attempt):
        held.sending = True
        try:
            value = await attempt(effect.route)
        except Exception as exc:
            value = Failure(exc)
        held.sending = False
        return value
    # A state that does I/O (Redis) may be cancelled mid-answer: shield what
    # hands out or gives back slots and money. In-process state cannot be.
    at_once = state.answers_at_once
    if isinstance(effect, TryAcquire):
        taking = state.atry_acquire(effect.key, effect.limit)
        lease = await (taking if at_once else _handed_out(taking))
        held.took(lease)
        return lease
    if isinstance(effect, WaitSlot):
        try:
            lease = await state.aacquire_any(effect.wants, effect.deadline)
        except SlotTimeoutError:
            return None
        held.took(lease)
        return lease
    if isinstance(effect, Finish):
        held.gives_back(effect)
        finishing = _afinish(state, effect)
        await (finishing if at_once else _completed(finishing))
        return None
    if isinstance(effect, Cooling):
        return await state.acooling(effect.keys)
    if isinstance(effect, Reserve):
        reserving = state.areserve(effect.scope, effect.micro, effect.budget)
        reservation = await (reserving if at_once else _handed_out(reserving))
        held.reservation = reservation or held.reservation
        return reservation
    if isinstance(effect, Spent):
        return await state.aspent(effect.scope)
    if isinstance(effect, Settle):
        held.gives_back(effect)
        settling = state.asettle(effect.reservation, effect.micro)
        await (settling if at_once else _completed(settling))
        return None
    await policy.asleep(effect.seconds)
    return None


# Work that must finish even if the call is cancelled meanwhile; kept here so
# the tasks are not garbage-collected before they are done.
_BACKGROUND: set[asyncio.Future[Any]] = set()


def _background(work: Awaitable[T]) -> asyncio.Future[T]:
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def _completed(work: Awaitable[None]) -> None:
    """Await ``work``; cancelled meanwhile, it still completes, then re-raise.

    Giving back a slot or settling spend is never left half done by a
    cancellation (a Redis round trip may be under way).
    """
    await asyncio.shield(_background(work))


async def _handed_out(work: Awaitable[T]) -> T:
    """Await what hands out a slot or a reservation, cancellation-safely.

    If the call is cancelled while the state is answering (a Redis round
    trip), whatever the state hands out afterwards belongs to nobody: it is
    given back as soon as it arrives.
    """
    task = _background(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_give_back_late)
        raise


def _give_back_late(task: asyncio.Future[Any]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    got = task.result()
    if isinstance(got, Lease):
        _background(got.owner.arelease(got, "other"))
    elif isinstance(got, Reservation):
        _background(got.owner.asettle(got, 0))


def undo(state: RouterState, held: Held) -> None:
    """Give back every slot and reservation ``held`` still records."""
    undo_effects(state, held.undo_effects())


def undo_effects(state: RouterState, effects: list[Finish | Settle]) -> None:
    """Carry out :meth:`Held.undo_effects` with blocking I/O."""
    for effect in effects:
        if isinstance(effect, Finish):
            _finish(state, effect)
        else:
            state.settle(effect.reservation, effect.micro)


async def aundo(state: RouterState, held: Held) -> None:
    """Async :func:`undo`: completes even if the caller is cancelled again."""
    effects = held.undo_effects()
    if effects and state.answers_at_once:
        undo_effects(state, effects)
    elif effects:
        await _completed(_aundo_effects(state, effects))


async def _aundo_effects(state: RouterState, effects: list[Finish | Settle]) -> None:
    for effect in effects:
        if isinstance(effect, Finish):
            await _afinish(state, effect)
        else:
            await state.asettle(effect.reservation, effect.micro)


def _slot_outcome(outcome: Outcome) -> Literal["ok", "limited", "other"]:
    # The adaptive limit learns from 429s and successes only.
    return "other" if outcome == "failed" else outcome


def _finish(state: RouterState, effect: Finish) -> None:
    if effect.lease is not None:
        state.release(effect.lease, _slot_outcome(effect.outcome))
    if effect.outcome in ("ok", "failed"):
        state.report(effect.key, effect.outcome == "failed")


async def _afinish(state: RouterState, effect: Finish) -> None:
    if effect.lease is not None:
        await state.arelease(effect.lease, _slot_outcome(effect.outcome))
    if effect.outcome in ("ok", "failed"):
        await state.areport(effect.key, effect.outcome == "failed")


async def within(deadline: float | None, work: Awaitable[T], label: str) -> T:
    """Await one attempt, cut off at the call's deadline (async calls only).

    Sync attempts cannot be interrupted from outside; for them the deadline
    bounds the waits between attempts and each attempt keeps its timeout.
    """
    if deadline is None:
        return await work
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
            return await work
    except TimeoutError:
        raise WandbTimeoutError(
            f"'{label}' was still answering when the router's deadline passed; "
            "raise deadline= or timeout=.",
            model=label,
        ) from None


# ----------------------------------------------------------- opening streams


def open_stream(
    chunks: Iterator[T],
) -> tuple[T, Iterator[T]] | None:
    """Read a stream's first chunk (where failures may still fall back)."""
    for first in chunks:
        return first, chunks
    return None


async def aopen_stream(
    chunks: AsyncIterator[T],
) -> tuple[T, AsyncIterator[T]] | None:
    """Async :func:`open_stream`; closes the stream if the first read fails."""
    try:
        async for first in chunks:
            return first, chunks
    except BaseException:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
        raise
    return None
