"""The interpreters of the call driver: its effects carried out, sync or async.

:func:`drive` and :func:`adrive` run a driver's generator, doing each effect
it yields with blocking or async I/O; :class:`Held` records what the effects
hand out (slots, a reservation) so that whatever ends a call, the call path's
``finally`` gives it back (:func:`undo`, :func:`aundo`) without the driver
having to run again. :func:`within` cuts an async attempt at the deadline;
a stream's first chunk, where a failure may still fall back, is read with the
transport's ``open_first``/``aopen_first``.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import FIRST_COMPLETED
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
)
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_wandb_router.errors import WandbTimeoutError
from langchain_wandb_router.router import _effects as fx
from langchain_wandb_router.router._blocking import (
    AwaitedState,
    Blocking,
    SlotOutcome,
    blocking,
)
from langchain_wandb_router.state._interface import (
    Lease,
    Reservation,
    RouterState,
    SlotTimeoutError,
)
from langchain_wandb_router.state._leases import KEEPER, LeaseKeeper
from langchain_wandb_router.transport._loops import run_at_once
from langchain_wandb_router.transport._retry import RetryPolicy, aclose

__all__ = [
    "Held",
    "adrive",
    "aundo",
    "drive",
    "undo",
    "within",
]

T = TypeVar("T")


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
        extra: A hedge's own reservation, not yet settled.
        tasks: Attempts started and not yet done or abandoned (hedged
            calls): cancelled if the call ends first.
    """

    keeper: LeaseKeeper = field(default=KEEPER, repr=False)
    leases: list[Lease] = field(default_factory=list)
    reservation: Reservation | None = None
    sending: bool = False
    bill: int | None = None
    extra: Reservation | None = None
    tasks: set[asyncio.Future[Any]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.leases or self.tasks) or (
            self.reservation is not None or self.extra is not None
        )

    def reserved(self, reservation: Reservation | None) -> None:
        """A reservation was handed out (the call's, then a hedge's)."""
        if reservation is None:
            return
        if self.reservation is None:
            self.reservation = reservation
        else:
            self.extra = reservation

    def took(self, lease: Lease | None) -> None:
        """A slot was handed out (``None``: none was)."""
        if lease is not None:
            self.leases.append(lease)
            self.keeper.add(lease)

    def gives_back(self, effect: fx.Effect) -> None:
        """``effect`` is about to return a slot or settle the reservation."""
        if isinstance(effect, fx.Finish) and effect.lease is not None:
            self._drop(effect.lease)
        elif isinstance(effect, fx.Settle):
            if effect.reservation is self.reservation:
                self.reservation = None
            elif effect.reservation is self.extra:
                self.extra = None

    def _drop(self, lease: Lease) -> None:
        self.keeper.discard(lease)
        for i, held in enumerate(self.leases):
            if held is lease:
                del self.leases[i]
                return

    def undo_effects(self) -> list[fx.Finish | fx.Settle]:
        """What gives everything back, as effects; empties the record."""
        effects: list[fx.Finish | fx.Settle] = [
            fx.Finish(lease, lease.key, "other") for lease in self.leases
        ]
        for lease in self.leases:
            self.keeper.discard(lease)
        self.leases = []
        for task in self.tasks:
            task.cancel()  # a hedged call's attempts end with it
        self.tasks = set()
        if self.reservation is not None:
            reservation, self.reservation = self.reservation, None
            cost = 0
            if self.sending:
                # The request may have reached W&B, which may bill it.
                cost = reservation.micro if self.bill is None else self.bill
            effects.append(fx.Settle(reservation, cost))
        if self.extra is not None:
            extra, self.extra = self.extra, None
            effects.append(fx.Settle(extra, extra.micro if self.sending else 0))
        return effects


def drive(
    steps: Generator[fx.Effect, Any, T],
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[fx.RouteRun], Any],
    held: Held,
) -> T:
    """Carry out a driver's effects with blocking I/O; return its result.

    The one interpreter (:func:`adrive`) run to its end at once: the state's
    and the policy's blocking methods stand in for the awaited ones, so no
    await suspends and no event loop is needed. ``held`` records the slots and
    reservation the effects hand out; the caller gives back what is left with
    :func:`undo`.
    """
    sleep = blocking(policy.sleep)
    return run_at_once(adrive(steps, Blocking(state), sleep, blocking(attempt), held))


async def adrive(
    steps: Generator[fx.Effect, Any, T],
    state: AwaitedState,
    sleep: Callable[[float], Awaitable[None]],
    attempt: Callable[[fx.RouteRun], Awaitable[Any]],
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
            value = await _acarry_out(effect, state, sleep, attempt, held)
    finally:
        steps.close()


async def _acarry_out(
    effect: fx.Effect,
    state: AwaitedState,
    sleep: Callable[[float], Awaitable[None]],
    attempt: Callable[[fx.RouteRun], Awaitable[Any]],
    held: Held,
) -> Any:
    if isinstance(effect, fx.Attempt):
        held.sending = True
        try:
            value = await attempt(effect.route)
        except Exception as exc:
            value = fx.Failure(exc)
        held.sending = False
        return value
    # A state that does I/O (Redis) may be cancelled mid-answer: shield what
    # hands out or gives back slots and money. In-process state cannot be.
    at_once = state.answers_at_once
    if isinstance(effect, fx.TryAcquire):
        taking = state.atry_acquire(effect.key, effect.limit)
        lease = await (taking if at_once else _handed_out(taking))
        held.took(lease)
        return lease
    if isinstance(effect, fx.WaitSlot):
        try:
            lease = await state.aacquire_any(effect.wants, effect.deadline)
        except SlotTimeoutError:
            return None
        held.took(lease)
        return lease
    if isinstance(effect, fx.Finish):
        held.gives_back(effect)
        finishing = _afinish(state, effect)
        await (finishing if at_once else _completed(finishing))
        return None
    if isinstance(effect, fx.Cooling):
        return await state.acooling(effect.keys)
    if isinstance(effect, fx.Stats):
        return await state.astats(effect.keys)
    if isinstance(effect, fx.Pinned):
        return await state.apinned(effect.key)
    if isinstance(effect, fx.Pin):
        return await state.apin(effect.key, effect.label, effect.ttl)
    if isinstance(effect, fx.Start | fx.Await | fx.Abandon):
        return await _race_step(effect, attempt, held)
    if isinstance(effect, fx.Reserve):
        reserving = state.areserve(effect.scope, effect.micro, effect.budget)
        reservation = await (reserving if at_once else _handed_out(reserving))
        held.reserved(reservation)
        return reservation
    if isinstance(effect, fx.Spent):
        return await state.aspent(effect.scope)
    if isinstance(effect, fx.Settle):
        held.gives_back(effect)
        settling = state.asettle(effect.reservation, effect.micro)
        await (settling if at_once else _completed(settling))
        return None
    await sleep(effect.seconds)
    return None


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
    run_at_once(aundo(Blocking(state), held))


async def aundo(state: AwaitedState, held: Held) -> None:
    """Async :func:`undo`: completes even if the caller is cancelled again."""
    effects = held.undo_effects()
    if effects and state.answers_at_once:
        await _aundo_effects(state, effects)  # never suspends: nothing to shield
    elif effects:
        await _completed(_aundo_effects(state, effects))


async def _aundo_effects(
    state: AwaitedState, effects: list[fx.Finish | fx.Settle]
) -> None:
    for effect in effects:
        if isinstance(effect, fx.Finish):
            await _afinish(state, effect)
        else:
            await state.asettle(effect.reservation, effect.micro)


def _slot_outcome(outcome: fx.Outcome) -> SlotOutcome:
    # The adaptive limit learns from 429s and successes only.
    return "other" if outcome == "failed" else outcome


async def _afinish(state: AwaitedState, effect: fx.Finish) -> None:
    if effect.lease is not None:
        await state.arelease(effect.lease, _slot_outcome(effect.outcome))
    if effect.outcome in ("ok", "failed"):
        await state.areport(effect.key, effect.outcome == "failed")
    if effect.seen is not None:
        await state.aobserve(effect.key, effect.seen)


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
