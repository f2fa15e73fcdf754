"""The interpreter of the call driver: its effects carried out, sync or async.

:func:`drive` and :func:`adrive` run a driver's generator, carrying out each
effect it yields with the effect's blocking or awaiting form (``_ways``) and
sending the answer back. There is one loop: :func:`drive` runs the async one
to its end at once (nothing in a blocking form suspends, so no event loop is
needed). :class:`~._held.Held` records what the effects hand out (slots, a
reservation) so that whatever ends a call, the call path's ``finally`` gives
it back (:func:`undo`, :func:`aundo`) without the driver having to run again.
:func:`within` cuts an async attempt at the deadline; a stream's first chunk,
where a failure may still fall back, is read with the transport's
``open_first``/``aopen_first``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from langchain_wandb_router.errors import WandbTimeoutError
from langchain_wandb_router.router import _effects as fx
from langchain_wandb_router.router._held import Held
from langchain_wandb_router.router._ways import WAYS, Means, afinish, completed, never
from langchain_wandb_router.state._interface import RouterState
from langchain_wandb_router.transport._loops import run_at_once
from langchain_wandb_router.transport._retry import RetryPolicy

__all__ = [
    "Held",
    "adrive",
    "aundo",
    "drive",
    "undo",
    "within",
]

T = TypeVar("T")


def drive(
    steps: Generator[fx.Effect, Any, T],
    state: RouterState,
    policy: RetryPolicy,
    attempt: Callable[[fx.RouteRun], Any],
    held: Held,
) -> T:
    """Carry out a driver's effects with blocking I/O; return its result.

    ``held`` records the slots and reservation the effects hand out; the
    caller gives back what is left with :func:`undo`.
    """
    means = Means(state, policy.sleep, attempt, held)
    return run_at_once(_carried(steps, means, blocking=True))


async def adrive(
    steps: Generator[fx.Effect, Any, T],
    state: RouterState,
    sleep: Callable[[float], Awaitable[None]],
    attempt: Callable[[fx.RouteRun], Awaitable[Any]],
    held: Held,
) -> T:
    """Async :func:`drive`; give back what is left with :func:`aundo`."""
    return await _carried(steps, Means(state, sleep, attempt, held), blocking=False)


async def _carried(
    steps: Generator[fx.Effect, Any, T], means: Means, *, blocking: bool
) -> T:
    """The one loop: each effect by its way (one table lookup on its class)."""
    ways = WAYS
    value: Any = None
    try:
        while True:
            try:
                effect = steps.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            way = ways[type(effect)]
            if blocking:
                value = way.now(means, effect)
            else:
                value = await way.later(means, effect)
    finally:
        steps.close()


def undo(state: RouterState, held: Held) -> None:
    """Give back every slot and reservation ``held`` still records."""
    means = Means(state, never, never, held)
    for effect in held.undo_effects():
        WAYS[type(effect)].now(means, effect)


async def aundo(state: RouterState, held: Held) -> None:
    """Async :func:`undo`: completes even if the caller is cancelled again."""
    effects = held.undo_effects()
    if effects and state.answers_at_once:
        await _aundo_effects(state, effects)  # never suspends: nothing to shield
    elif effects:
        await completed(_aundo_effects(state, effects))


async def _aundo_effects(
    state: RouterState, effects: list[fx.Finish | fx.Settle]
) -> None:
    for effect in effects:
        if isinstance(effect, fx.Finish):
            await afinish(state, effect)
        else:
            await state.asettle(effect.reservation, effect.micro)


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
