"""Hedged attempts: a second attempt when the first is slow to answer.

The call driver's steps for a hedged call (async calls only: the interpreter
runs the attempts as tasks): the first attempt runs alone for the hedge's
delay; then, if the plan's next route (the same one too) has a free slot, a
second attempt starts there. The first to answer wins and the other is
abandoned at once, its slot given back and its cost counted against the
budget (its usage, else its input at its route's price). Mixed into
:class:`~._driver.CallDriver`, whose state these steps share.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.router._effects import (
    Abandon,
    Await,
    Effect,
    Failure,
    Finish,
    Outcome,
    Reserve,
    RouteRun,
    Settle,
    Start,
    TryAcquire,
)
from langchain_wandb_router.router._strategy import hedge_delay
from langchain_wandb_router.state._interface import Lease
from langchain_wandb_router.state._stats import Observation

if TYPE_CHECKING:
    from langchain_wandb_router.router._attempts import Attempts
    from langchain_wandb_router.router._driver import CallShape
    from langchain_wandb_router.router._strategy import Hedge, HedgeAllowance
    from langchain_wandb_router.state._interface import Reservation
    from langchain_wandb_router.state._stats import RouteStats

__all__ = ["HedgedAttempts", "Runner"]


@dataclass(frozen=True)
class Runner:
    """An attempt of a hedged call: its route, result, slot and start."""

    route: RouteRun
    result: Any
    lease: Lease | None
    started: float
    hedge: bool


class HedgedAttempts:
    """The hedging steps of :class:`~._driver.CallDriver` (see the module docstring)."""

    if TYPE_CHECKING:
        routes: list[RouteRun]
        budget: tuple[str, int, int] | None
        hedge: Hedge | None
        allowance: HedgeAllowance | None
        shape: CallShape
        clock: Callable[[], float]
        cost_of: Callable[[str, Any], int]
        attempts: Attempts
        hedged: bool
        figures: Mapping[str, RouteStats]
        _extra: Reservation | None
        _abandoned: list[dict[str, Any]]

        def _bounded(self, seconds: float) -> float: ...
        def _failed(
            self, route: RouteRun, error: Exception, started: float
        ) -> tuple[Outcome, Exception | None]: ...

    def _race(
        self, route: RouteRun, lease: Lease | None, started: float
    ) -> Generator[Effect, Any, Runner]:
        """One attempt, hedged if it is slow; the runner that answered last.

        The first attempt runs alone for the hedge's delay. If it has not
        answered by then and the plan's next route (the same one too) has a
        free slot, a second attempt starts there; the first to answer wins and
        the other is abandoned at once (its slot given back, its cost
        counted). A failure while the other still runs is counted and the
        other awaited. Returns the winner, or the last failure for the
        caller's usual handling; everything else is finished here.
        """
        assert self.hedge is not None  # only called for hedged calls
        first = yield Start(route)
        stats = self.figures.get(route.key)
        delay = hedge_delay(self.hedge, stats, stream=self.shape.stream)
        done = yield Await((first,), self._bounded(delay))
        runners = {first: Runner(route, None, lease, started, False)}
        if not done:
            spare = yield from self._spare(route)
            if spare is not None:
                self.hedged = True
                second = yield Start(spare.route)
                runners[second] = spare
            done = yield Await(tuple(runners), None)
        while True:
            handle, result = done[0]
            ended = replace(runners.pop(handle), result=result)
            if not runners or not isinstance(result, Failure):
                for other, loser in runners.items():
                    late = yield Abandon(other)
                    yield from self._lost(loser, late)
                return ended
            yield from self._fell(ended)
            done = done[1:] or (yield Await(tuple(runners), None))

    def _spare(self, route: RouteRun) -> Generator[Effect, Any, Runner | None]:
        """A second attempt's route with its slot (and reserve), if any may start."""
        if self.allowance is not None and not self.allowance.may():
            return None
        now = self.clock()
        plan = [*self.routes[self.routes.index(route) + 1 :], route]
        for spare in plan:
            if spare.done or spare.not_before > now:
                continue
            lease = None
            if spare.slots:
                # Only a free slot: a hedge never waits, never causes a 429.
                lease = yield TryAcquire(spare.key, spare.limit)
                if lease is None:
                    continue
            if self.budget is not None:
                scope, estimate, budget = self.budget
                self._extra = yield Reserve(scope, estimate, budget + estimate - 1)
                if self._extra is None:
                    yield Finish(lease, spare.key, "other")
                    return None
            # Counted only when a hedge starts: a refused one takes no share.
            if self.allowance is not None and not self.allowance.take():
                yield from self._settle_extra(0)
                yield Finish(lease, spare.key, "other")
                return None
            return Runner(spare, None, lease, self.clock(), True)
        return None

    def _fell(self, runner: Runner) -> Generator[Effect, Any, None]:
        """A raced attempt failed while the other still runs: count it."""
        assert isinstance(runner.result, Failure)
        outcome, _ = self._failed(runner.route, runner.result.error, runner.started)
        seen = Observation(outcome, self.clock() - runner.started, hedge=runner.hedge)
        yield Finish(runner.lease, runner.route.key, outcome, seen)
        yield from self._settle_extra(0)

    def _lost(self, runner: Runner, late: Any) -> Generator[Effect, Any, None]:
        """The race's loser, abandoned: give its slot back and count its cost."""
        self.attempts.abandoned(runner.route.cand.label, runner.started)
        self._abandoned.append(self.attempts.records[-1])
        seen = Observation("other", self.clock() - runner.started, hedge=runner.hedge)
        yield Finish(runner.lease, runner.route.key, "other", seen)
        yield from self._settle_extra(self.cost_of(runner.route.cand.label, late))

    def _settle_extra(self, micro: int) -> Generator[Effect, Any, None]:
        if self._extra is not None:
            extra, self._extra = self._extra, None
            yield Settle(extra, micro)
