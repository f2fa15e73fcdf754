"""The one call driver of WandbRouter: plan, attempts, commit.

Every decision of a routed call is written once here, as a generator that
yields *effects* (try a route, take a concurrency slot, wait, release, reserve
budget; ``_effects``) and receives their results. ``invoke``/``ainvoke``/
``stream``/``astream`` carry the effects out with sync or async I/O through
the interpreters of ``_interpreters``, so the four paths cannot drift.

Decisions, in order of a call:

1. Budget: reserve an estimate of the call's cost before anything is sent.
2. Order: the strategy orders the candidates (``"ordered"`` keeps the user's
   order; see ``_strategy``); cooling routes go last, never out.
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

import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_wandb_router.errors import (
    BudgetExceededError,
    NoRouteAvailableError,
    WandbError,
    WandbModelNotFoundError,
    WandbTimeoutError,
)
from langchain_wandb_router.router._affinity import Conversation
from langchain_wandb_router.router._attempts import Attempts, note_attempts
from langchain_wandb_router.router._budget import to_usd
from langchain_wandb_router.router._effects import (
    Attempt,
    Committed,
    Cooling,
    Effect,
    Failure,
    Finish,
    Outcome,
    Pin,
    Pinned,
    Reserve,
    RouteRun,
    Settle,
    Sleep,
    Spent,
    Stats,
    TryAcquire,
    WaitSlot,
)
from langchain_wandb_router.router._hedging import HedgedAttempts
from langchain_wandb_router.router._strategy import Hedge, HedgeAllowance, place
from langchain_wandb_router.state._interface import Reservation
from langchain_wandb_router.state._stats import Observation, RouteStats
from langchain_wandb_router.transport._retry import RetryPolicy, is_concurrency_limit

__all__ = ["CallDriver", "CallShape", "observed"]

# How often a call waiting for reserved budget to settle looks again.
_BUDGET_POLL = 0.05
_MAX_SLOT_WAIT = 600.0


@dataclass(slots=True)
class CallShape:
    """What a strategy and the statistics need to know about a call."""

    stream: bool = False
    input_tokens: int = 0
    max_tokens: int | None = None


def observed(
    outcome: Outcome,
    seconds: float,
    first: float | None,
    usage: Mapping[str, Any] | None,
) -> Observation:
    """A finished attempt as the statistics count it (usage where reported)."""
    if not usage:
        return Observation(outcome, seconds, first)
    details = usage.get("input_token_details") or {}
    return Observation(  # by position: made once per attempt
        outcome,
        seconds,
        first,
        int(usage.get("output_tokens") or 0),
        int(usage.get("input_tokens") or 0),
        int(details.get("cache_read") or 0),
    )


@dataclass
class CallDriver(HedgedAttempts):
    """The decisions of one routed call (see the module docstring)."""

    routes: list[RouteRun]
    excluded: dict[str, str]
    policy: RetryPolicy
    fallback_statuses: frozenset[int]
    deadline: float | None = None
    """Monotonic time by which the whole call must be done."""
    budget: tuple[str, int, int] | None = None
    """(scope, estimate, budget) in micro-dollars when a budget is set."""
    hedge: Hedge | None = None
    """Hedge slow attempts (async calls only: the interpreter starts tasks)."""
    allowance: HedgeAllowance | None = None
    strategy: str = "ordered"
    conversation: Conversation | None = None
    """The call's conversation: its last route goes first (``None``: off)."""
    affinity_ttl: float = 600.0
    warm_tokens: int = 0
    """Prompt tokens a warm route would read from its cache (cost strategy)."""
    shape: CallShape = field(default_factory=lambda: CallShape())
    """What the strategy and the statistics need to know about the call."""
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    cost_of: Callable[[str, Any], int] = lambda label, value: 0
    """Micro-dollars an abandoned attempt costs (its value if it answered)."""
    attempts: Attempts = field(init=False)
    hedged: bool = field(init=False, default=False)
    """Whether this call started a hedge."""
    _extra: Reservation | None = field(init=False, default=None)
    warm: str | None = field(init=False, default=None)
    """The route that served this conversation last, when it was looked up."""
    figures: Mapping[str, RouteStats] = field(init=False, default_factory=dict)
    """The routes' live figures, when the plan read them."""
    _slots_until: float | None = field(init=False, default=None)
    _abandoned: list[dict[str, Any]] = field(init=False, default_factory=list)
    """The attempt records of race losers (slow, not failed)."""

    def __post_init__(self) -> None:
        self.attempts = Attempts(self.excluded)

    def run(self) -> Generator[Effect, Any, Committed[Any]]:
        """Drive the call to its first success (or raise what ended it)."""
        # Nothing here undoes what the call holds when it fails: the
        # interpreters track the slot and reservation (:class:`Held`) and
        # give them back in their ``finally`` paths, so a cancelled or
        # abandoned call never needs this generator to yield again.
        if self.allowance is not None:
            self.allowance.called()
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
                    f"Budget of ${to_usd(budget):.6f} reached (spent "
                    f"${to_usd(spent):.6f}); raise budget_usd or use a new "
                    "budget_scope."
                )
            self._check_deadline(self.clock())
            self._slot_deadline()  # bounded like a wait for a slot
            yield Sleep(_BUDGET_POLL)

    def finish(
        self,
        done: Committed[Any],
        outcome: Outcome,
        cost_micro: int,
        usage: Mapping[str, Any] | None = None,
    ) -> Generator[Effect, Any, None]:
        """Close a committed call: release its slot, count it and its cost."""
        seen = observed(outcome, self.clock() - done.started, done.first, usage)
        if done.hedged:
            seen = replace(seen, hedge=True, won=True)
        yield Finish(done.lease, done.route.key, outcome, seen)
        if done.reservation is not None:
            yield Settle(done.reservation, cost_micro)

    def plan(self) -> Generator[Effect, Any, list[dict[str, Any]]]:
        """The order the call would try its routes in, read-only (a dry run)."""
        yield from self._order()
        return [
            {
                "model": route.cand.label,
                "score": route.score,
                "reason": self.excluded.get(route.cand.label) or route.reason,
            }
            for route in self.routes
        ]

    # -------------------------------------------------------------- steps

    def _order(self) -> Generator[Effect, Any, None]:
        keys = [r.key for r in self.routes]
        cooling: dict[str, float] = yield Cooling(keys)
        ready = (
            [r for r in self.routes if r.key not in cooling]
            if cooling
            else [*self.routes]
        )
        if self.hedge is not None and self.hedge.delay is None:
            self.figures = yield Stats(keys)  # the hedge's delay is the route's p95
        warm = self.warm = None
        talk = self.conversation
        if talk is not None and len(self.routes) > 1 and talk.continues():
            key = talk.key()
            if key is not None:
                warm = self.warm = yield Pinned(key)
        if self.strategy != "ordered" and len(ready) > 1:
            if not self.figures:
                self.figures = yield Stats([r.key for r in ready])
            ready = self._placed(ready, self.figures, warm)
        else:
            for route in ready:
                route.reason = route.cand.reason
        if warm is not None and self.strategy != "cost":
            # The cost strategy weighs the warm cache itself; every other
            # keeps the conversation where its prompt is cached.
            ready = _stick(ready, warm)
        if not cooling:
            self.routes = ready
            return
        waiting = sorted(
            (r for r in self.routes if r.key in cooling), key=lambda r: cooling[r.key]
        )
        for route in waiting:
            # Reported, and still tried last: health never costs availability.
            route.reason = route.cand.reason
            self.excluded[route.cand.label] = (
                f"cooling down ({cooling[route.key]:.1f}s left); tried last"
            )
        self.routes = ready + waiting

    def _remembers(self, route: RouteRun) -> bool:
        """Whether the conversation's route must be written after this turn.

        Always when it had one (the idle TTL restarts) or a strategy chose;
        with the given order, only when another route than the first served:
        otherwise the next turn starts where this one did anyway.
        """
        if len(self.routes) < 2:
            return False
        if self.warm is not None or self.strategy != "ordered":
            return True
        return route is not self.routes[0]

    def _placed(
        self,
        ready: list[RouteRun],
        figures: Mapping[str, RouteStats],
        warm: str | None = None,
    ) -> list[RouteRun]:
        """``ready`` in the strategy's order, each with its score and reason."""
        placed = place(
            self.strategy,
            [r.cand.route for r in ready],
            {r.cand.label: figures[r.key] for r in ready if r.key in figures},
            stream=self.shape.stream,
            input_tokens=self.shape.input_tokens,
            max_tokens=self.shape.max_tokens,
            limits=[r.limit for r in ready],
            rng=self.rng,
            warm=(warm, self.warm_tokens) if warm is not None else None,
        )
        ordered = []
        for rank, where in enumerate(placed):
            route = ready[where.index]
            route.score = where.score
            route.reason = f"{self.strategy}: {where.reason}"
            if rank:
                route.reason += "; fallback"
            ordered.append(route)
        return ordered

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
            hedged = False
            if self.hedge is None:
                result = yield Attempt(route)
            else:
                last = yield from self._race(route, lease, started)
                route, result, lease = last.route, last.result, last.lease
                started, hedged = last.started, last.hedge
            if isinstance(result, Failure):
                outcome, fatal = self._failed(route, result.error, started)
                seen = Observation(outcome, self.clock() - started, hedge=hedged)
                yield Finish(lease, route.key, outcome, seen)
                if fatal is not None:
                    raise fatal
                continue
            first = self.clock() - started if self.shape.stream else None
            record = self._record(route, started, hedged)
            record["hedged"] = self.hedged
            if self.conversation is not None and self._remembers(route):
                key = self.conversation.key()
                if key is not None:
                    yield Pin(key, route.cand.label, self.affinity_ttl)
            return Committed(
                route, result, lease, reservation, record, started, first, hedged
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
            # The one rule (shared with ChatWandb's own loop): refused again,
            # the slots are held elsewhere, so back off briefly; past a count,
            # give the route up.
            route.limited += 1
            wait = self.policy.limited_delay(route.limited, error)
            route.done = wait is None
            route.not_before = now + (wait or 0.0)
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

    def _record(
        self, route: RouteRun, started: float, hedge_won: bool
    ) -> dict[str, Any]:
        self.attempts.succeeded(route.cand.label, started)
        reason = route.reason or route.cand.reason
        records = self.attempts.records
        # An attempt abandoned by a race was slow, not failed.
        earlier = [r for r in records[:-1] if not _is_abandoned(r, self._abandoned)]
        if hedge_won:
            slow = self._abandoned[-1]["model"] if self._abandoned else None
            reason = f"{reason}; hedge" + (f" ({slow} was slow)" if slow else "")
        if earlier and earlier[-1]["error"]:
            reason = f"{reason}; after {earlier[-1]['model']} failed"
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


def _is_abandoned(record: dict[str, Any], abandoned: list[dict[str, Any]]) -> bool:
    return any(record is lost for lost in abandoned)


def _stick(ready: list[RouteRun], warm: str) -> list[RouteRun]:
    """``ready`` with the conversation's last route first, if it is there."""
    for i, route in enumerate(ready):
        if route.cand.label == warm:
            route.reason = "affinity: this conversation's route (its prompt is cached)"
            return [route, *ready[:i], *ready[i + 1 :]]
    return ready
