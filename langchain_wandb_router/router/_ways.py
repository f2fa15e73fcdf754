"""How each of the call driver's effects is carried out: blocking or awaiting.

Every effect class has one :class:`Way` in :data:`WAYS`: its blocking form,
which calls the state's blocking method (or the sync attempt) and returns the
answer, and its awaiting form, which awaits the state's async method (or the
async attempt). The two forms of an effect stand side by side and share what
they note in :class:`~._held.Held`; the interpreters' one loop
(``_interpreters``) picks the form its call needs. A blocking drive calls
each form directly, without a coroutine per effect: the routed call's own
cost is mostly these few calls.

A state that does I/O (Redis) may be cancelled mid-answer, so the awaiting
forms shield what hands out or gives back slots and money; in-process state
answers at once and needs no shield. Hedged attempts (async calls only) run
as tasks of the call; their effects have no blocking form.
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from langchain_wandb_router.router import _effects as fx
from langchain_wandb_router.router._held import Held
from langchain_wandb_router.state._interface import (
    Lease,
    Outcome,
    Reservation,
    RouterState,
    SlotTimeoutError,
)
from langchain_wandb_router.transport._retry import aclose

__all__ = ["WAYS", "Means", "Way", "afinish", "completed", "never"]

T = TypeVar("T")


class Means:
    """What one drive carries effects out with, and the record of what is held.

    ``attempt`` and ``sleep`` block in a blocking drive and return awaitables
    in an awaiting one.
    """

    __slots__ = ("at_once", "attempt", "held", "sleep", "state")

    def __init__(
        self,
        state: RouterState,
        sleep: Callable[[float], Any],
        attempt: Callable[[fx.RouteRun], Any],
        held: Held,
    ) -> None:
        self.state = state
        self.sleep = sleep
        self.attempt = attempt
        self.held = held
        # In-process state answers at once: nothing to shield from a cancel.
        self.at_once = state.answers_at_once


class Way(NamedTuple):
    """An effect's blocking form and its awaiting form."""

    now: Callable[[Means, Any], Any]
    later: Callable[[Means, Any], Awaitable[Any]]


def never(*args: Any) -> Any:
    """The blocking form of what only an event loop can do (hedged attempts)."""
    msg = "hedged attempts run on an event loop; sync calls are never hedged"
    raise TypeError(msg)


# ------------------------------------------------------------------ attempts


def _attempt_now(means: Means, effect: fx.Attempt) -> Any:
    held = means.held
    held.sending = True
    try:
        value = means.attempt(effect.route)
    except Exception as exc:  # handed to the driver to classify
        value = fx.Failure(exc)
    held.sending = False
    return value


async def _attempt(means: Means, effect: fx.Attempt) -> Any:
    held = means.held
    held.sending = True
    try:
        value = await means.attempt(effect.route)
    except Exception as exc:
        value = fx.Failure(exc)
    held.sending = False
    return value


# --------------------------------------------------------------------- slots


def _try_acquire_now(means: Means, effect: fx.TryAcquire) -> Lease | None:
    lease = means.state.try_acquire(effect.key, effect.limit)
    means.held.took(lease)
    return lease


async def _try_acquire(means: Means, effect: fx.TryAcquire) -> Lease | None:
    taking = means.state.atry_acquire(effect.key, effect.limit)
    lease = await (taking if means.at_once else _handed_out(taking))
    means.held.took(lease)
    return lease


def _wait_slot_now(means: Means, effect: fx.WaitSlot) -> Lease | None:
    try:
        lease = means.state.acquire_any(effect.wants, effect.deadline)
    except SlotTimeoutError:
        return None
    means.held.took(lease)
    return lease


async def _wait_slot(means: Means, effect: fx.WaitSlot) -> Lease | None:
    try:
        lease = await means.state.aacquire_any(effect.wants, effect.deadline)
    except SlotTimeoutError:
        return None
    means.held.took(lease)
    return lease


def _slot_outcome(outcome: fx.Outcome) -> Outcome:
    # The adaptive limit learns from 429s and successes only.
    return "other" if outcome == "failed" else outcome


def _finish_now(means: Means, effect: fx.Finish) -> None:
    means.held.gives_back(effect)
    state = means.state
    if effect.lease is not None:
        state.release(effect.lease, _slot_outcome(effect.outcome))
    if effect.outcome in ("ok", "failed"):
        state.report(effect.key, effect.outcome == "failed")
    if effect.seen is not None:
        state.observe(effect.key, effect.seen)


def _finish(means: Means, effect: fx.Finish) -> Awaitable[None]:
    means.held.gives_back(effect)
    finishing = afinish(means.state, effect)
    return finishing if means.at_once else completed(finishing)


async def afinish(state: RouterState, effect: fx.Finish) -> None:
    """Give a finished attempt's slot back and count it (awaiting, unshielded)."""
    if effect.lease is not None:
        await state.arelease(effect.lease, _slot_outcome(effect.outcome))
    if effect.outcome in ("ok", "failed"):
        await state.areport(effect.key, effect.outcome == "failed")
    if effect.seen is not None:
        await state.aobserve(effect.key, effect.seen)


# -------------------------------------------------------------------- budget


def _reserve_now(means: Means, effect: fx.Reserve) -> Reservation | None:
    reservation = means.state.reserve(effect.scope, effect.micro, effect.budget)
    means.held.reserved(reservation)
    return reservation


async def _reserve(means: Means, effect: fx.Reserve) -> Reservation | None:
    state = means.state
    reserving = state.areserve(effect.scope, effect.micro, effect.budget)
    reservation = await (reserving if means.at_once else _handed_out(reserving))
    means.held.reserved(reservation)
    return reservation


def _settle_now(means: Means, effect: fx.Settle) -> None:
    means.held.gives_back(effect)
    means.state.settle(effect.reservation, effect.micro)


def _settle(means: Means, effect: fx.Settle) -> Awaitable[None]:
    means.held.gives_back(effect)
    settling = means.state.asettle(effect.reservation, effect.micro)
    return settling if means.at_once else completed(settling)


# Questions to the state and sleeps need nothing noted: their forms (in the
# table below) hand the state's answer, or its own awaitable, straight back.


def _race(means: Means, effect: fx.Start | fx.Await | fx.Abandon) -> Awaitable[Any]:
    return _race_step(effect, means.attempt, means.held)


WAYS: dict[type[Any], Way] = {
    fx.Attempt: Way(_attempt_now, _attempt),
    fx.TryAcquire: Way(_try_acquire_now, _try_acquire),
    fx.WaitSlot: Way(_wait_slot_now, _wait_slot),
    fx.Finish: Way(_finish_now, _finish),
    fx.Reserve: Way(_reserve_now, _reserve),
    fx.Settle: Way(_settle_now, _settle),
    fx.Cooling: Way(
        lambda m, e: m.state.cooling(e.keys), lambda m, e: m.state.acooling(e.keys)
    ),
    fx.Stats: Way(
        lambda m, e: m.state.stats(e.keys), lambda m, e: m.state.astats(e.keys)
    ),
    fx.Pinned: Way(
        lambda m, e: m.state.pinned(e.key), lambda m, e: m.state.apinned(e.key)
    ),
    fx.Pin: Way(
        lambda m, e: m.state.pin(e.key, e.label, e.ttl),
        lambda m, e: m.state.apin(e.key, e.label, e.ttl),
    ),
    fx.Spent: Way(
        lambda m, e: m.state.spent(e.scope), lambda m, e: m.state.aspent(e.scope)
    ),
    fx.Sleep: Way(lambda m, e: m.sleep(e.seconds), lambda m, e: m.sleep(e.seconds)),
    fx.Start: Way(never, _race),
    fx.Await: Way(never, _race),
    fx.Abandon: Way(never, _race),
}
"""How each effect is carried out, by its class (every effect has one)."""


# ------------------------------------------------------------ hedged attempts
# A hedged call's attempts run as tasks of the call; ``held.tasks`` has those
# not yet done, so a call that ends early cancels them with everything else.

_ABANDON_WAIT = 5.0
"""How long an abandoned attempt may take to unwind after its cancellation."""


async def _race_step(
    effect: fx.Start | fx.Await | fx.Abandon,
    attempt: Callable[[fx.RouteRun], Awaitable[Any]],
    held: Held,
) -> Any:
    if isinstance(effect, fx.Start):
        task = asyncio.ensure_future(_attempted(attempt, effect.route))
        held.tasks.add(task)
        held.sending = True
        return task
    if isinstance(effect, fx.Await):
        done, _ = await asyncio.wait(
            effect.handles, timeout=effect.timeout, return_when=FIRST_COMPLETED
        )
        held.tasks.difference_update(done)
        held.sending = bool(held.tasks)  # what is done is no longer at W&B
        return [
            (handle, handle.result()) for handle in effect.handles if handle in done
        ]
    handle: asyncio.Future[Any] = effect.handle
    late = handle.result() if handle.done() else None
    handle.cancel()
    held.tasks.discard(handle)
    held.sending = bool(held.tasks)
    if late is None:
        await asyncio.wait({handle}, timeout=_ABANDON_WAIT)
    elif isinstance(late, tuple):
        await aclose(late[1])  # an opened stream nobody will read
    return late


async def _attempted(
    attempt: Callable[[fx.RouteRun], Awaitable[Any]], route: fx.RouteRun
) -> Any:
    try:
        return await attempt(route)
    except Exception as exc:  # handed to the driver to classify
        return fx.Failure(exc)


# Work that must finish even if the call is cancelled meanwhile; kept here so
# the tasks are not garbage-collected before they are done.
_BACKGROUND: set[asyncio.Future[Any]] = set()


def _background(work: Awaitable[T]) -> asyncio.Future[T]:
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def completed(work: Awaitable[None]) -> None:
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
