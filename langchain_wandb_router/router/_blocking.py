"""The state as the interpreter awaits it, and its blocking stand-in.

There is one interpreter of the call driver's effects (``_interpreters``'s
``adrive``). Async calls run it on their event loop against the state's
async methods; sync calls run it to its end at once (``run_at_once``)
against :class:`Blocking`, which answers each awaited method with the
state's blocking one, so nothing suspends and no loop is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal, Protocol, TypeVar

from langchain_wandb_router.state._interface import (
    Lease,
    Reservation,
    RouterState,
    Want,
)
from langchain_wandb_router.state._stats import Observation, RouteStats

__all__ = ["AwaitedState", "Blocking", "SlotOutcome", "blocking"]

A = TypeVar("A")
R = TypeVar("R")
SlotOutcome = Literal["ok", "limited", "other"]


class AwaitedState(Protocol):
    """What the interpreter awaits of a state (a RouterState, or :class:`Blocking`)."""

    @property
    def answers_at_once(self) -> bool: ...
    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None: ...
    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease: ...
    async def arelease(self, lease: Lease, outcome: SlotOutcome) -> None: ...
    async def areport(self, key: str, failed: bool) -> None: ...
    async def aobserve(self, key: str, seen: Observation) -> None: ...
    async def acooling(self, keys: Iterable[str]) -> dict[str, float]: ...
    async def apinned(self, key: str) -> str | None: ...
    async def apin(self, key: str, label: str, ttl: float) -> None: ...
    async def astats(self, keys: Iterable[str]) -> dict[str, RouteStats]: ...
    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None: ...
    async def asettle(self, reservation: Reservation, actual_micro: int) -> None: ...
    async def aspent(self, scope: str) -> int: ...


class Blocking:
    """A state's blocking methods under the names the interpreter awaits.

    Each answers at once (it blocks this thread instead of suspending), so
    :func:`adrive` run by :func:`run_at_once` is the blocking interpreter.
    """

    __slots__ = ("state",)
    answers_at_once = True  # nothing to shield: no await can be cancelled

    def __init__(self, state: RouterState) -> None:
        self.state = state

    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        return self.state.try_acquire(key, hard_limit)

    async def aacquire_any(self, wants: Sequence[Want], deadline: float) -> Lease:
        return self.state.acquire_any(wants, deadline)

    async def arelease(self, lease: Lease, outcome: SlotOutcome) -> None:
        self.state.release(lease, outcome)

    async def areport(self, key: str, failed: bool) -> None:
        self.state.report(key, failed)

    async def aobserve(self, key: str, seen: Observation) -> None:
        self.state.observe(key, seen)

    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        return self.state.cooling(keys)

    async def astats(self, keys: Iterable[str]) -> dict[str, RouteStats]:
        return self.state.stats(keys)

    async def apinned(self, key: str) -> str | None:
        return self.state.pinned(key)

    async def apin(self, key: str, label: str, ttl: float) -> None:
        self.state.pin(key, label, ttl)

    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        return self.state.reserve(scope, estimate_micro, budget_micro)

    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        self.state.settle(reservation, actual_micro)

    async def aspent(self, scope: str) -> int:
        return self.state.spent(scope)


def blocking(call: Callable[[A], R]) -> Callable[[A], Awaitable[R]]:
    """``call`` under an awaitable name; it blocks instead of suspending."""

    async def at_once(arg: A) -> R:
        return call(arg)

    return at_once
