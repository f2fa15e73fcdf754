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

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["CALL_DEADLINE", "bounded", "current"]

CALL_DEADLINE: ContextVar[float | None] = ContextVar(
    "langchain_wandb_router_call_deadline", default=None
)


def current() -> float | None:
    """The deadline (monotonic seconds) in force here, or ``None``."""
    return CALL_DEADLINE.get()


@contextmanager
def bounded(deadline: float | None) -> Iterator[float | None]:
    """Bound the enclosed step by ``deadline`` as well as any outer deadline.

    Yields the deadline now in force (the earlier of the two). ``None`` adds
    no bound of its own.
    """
    outer = CALL_DEADLINE.get()
    if deadline is None or (outer is not None and outer <= deadline):
        yield outer
        return
    token = CALL_DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        CALL_DEADLINE.reset(token)
