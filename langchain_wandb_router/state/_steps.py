"""The state's one sync/async strategy: steps, and the driver that runs them.

What a state does with I/O or waiting in it (run a Redis script, wait for a
wake-up, try the next route) is written once, as a generator of *steps*. Each
``yield`` hands out a plain description of one thing to do and receives its
answer; an error that thing raised is thrown back in at the ``yield``, so the
steps' ``try``/``except``/``finally`` see it as if they had done it themselves.

The thin interpreters are the functions that do one step: a blocking one for
the sync methods, an awaiting one for the async methods. :func:`adrive` runs
steps with an awaiting interpreter; :func:`drive` runs them with a blocking
one through the same loop (its coroutine never suspends, so
:func:`~langchain_wandb_router.transport._loops.run_at_once` steps it to the
end), so there is one driver, not a sync and an async copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from langchain_wandb_router.transport._loops import run_at_once

__all__ = ["Steps", "adrive", "drive"]

S = TypeVar("S")
T = TypeVar("T")

Steps = Generator[S, Any, T]
"""Steps of type ``S`` ending in an answer of type ``T``."""


async def adrive(steps: Steps[S, T], do: Callable[[S], Awaitable[Any]]) -> T:
    """Run ``steps`` to their answer, awaiting ``do`` on each step."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                step = steps.send(reply)
            else:
                thrown, error = error, None
                step = steps.throw(thrown)
        except StopIteration as stop:
            answer: T = stop.value
            return answer
        try:
            reply = await do(step)
        except BaseException as exc:  # the steps' to handle (or let through)
            reply, error = None, exc


def drive(steps: Steps[S, T], do: Callable[[S], Any]) -> T:
    """Run ``steps`` to their answer on this thread, ``do`` blocking on each step."""

    async def done_at_once(step: S) -> Any:
        return do(step)

    return run_at_once(adrive(steps, done_at_once))
