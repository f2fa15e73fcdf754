"""The deadline of the call in progress, shared by the router and the transport.

A call's deadline is a point on the monotonic clock. Whoever bounds a call (the
router's ``deadline=``, ChatWandb's own ``deadline=``) enters :func:`bounded`
around each blocking step; the transport reads :func:`current` and never lets
a connect, write or read wait past it, so a server that trickles bytes cannot
stretch a call beyond its deadline.

The value lives in a context variable, so it follows the call into threads
started with ``contextvars.copy_context()`` and into asyncio tasks, and never
leaks to unrelated work: :func:`bounded` always restores what it found.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

__all__ = ["CALL_DEADLINE", "bounded", "current", "in_force"]

CALL_DEADLINE: ContextVar[float | None] = ContextVar(
    "langchain_wandb_router_call_deadline", default=None
)


def current() -> float | None:
    """The deadline (monotonic seconds) in force here, or ``None``."""
    return CALL_DEADLINE.get()


def in_force(deadline: float | None) -> float | None:
    """The deadline :func:`bounded` would put in force here, without entering it."""
    outer = CALL_DEADLINE.get()
    return outer if _outer_holds(outer, deadline) else deadline


def _outer_holds(outer: float | None, deadline: float | None) -> bool:
    """Whether the outer deadline stays in force: no own one, or not earlier."""
    return deadline is None or (outer is not None and outer <= deadline)


class bounded:
    """Bound the enclosed step by ``deadline`` as well as any outer deadline.

    Entering gives the deadline now in force (the earlier of the two).
    ``None`` adds no bound of its own. A class rather than a generator-based
    context manager: every routed attempt enters one.
    """

    __slots__ = ("_deadline", "_token")

    def __init__(self, deadline: float | None) -> None:
        self._deadline = deadline
        self._token: Token[float | None] | None = None

    def __enter__(self) -> float | None:
        outer = CALL_DEADLINE.get()
        deadline = self._deadline
        if _outer_holds(outer, deadline):
            return outer
        self._token = CALL_DEADLINE.set(deadline)
        return deadline

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            CALL_DEADLINE.reset(self._token)
            self._token = None
