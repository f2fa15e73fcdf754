"""What the call driver asks for, and what it is told back.

The driver (``_driver``) decides; it never does I/O. Each step it wants done
is an *effect* here (try a route, take or wait for a slot, give one back,
reserve or settle budget, sleep); the interpreters (``_interpreters``) carry
them out with sync or async I/O and send back the result (a lease, a
reservation, an attempt's value or its :class:`Failure`).

The effects are alike by design: one small dataclass each, a plain record
of what is asked, so the driver's steps read as the decisions they are and
the interpreter looks its way of carrying one out up by the class. They are
slotted, not frozen (a frozen one costs a guarded ``__setattr__`` per field,
and a call makes several); nothing changes an effect once yielded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from langchain_core.runnables import Runnable

from langchain_wandb_router.router._routing import Candidate
from langchain_wandb_router.state._interface import Lease, Reservation, Want
from langchain_wandb_router.state._stats import Observation

__all__ = [
    "Abandon",
    "Attempt",
    "Await",
    "Committed",
    "Cooling",
    "Effect",
    "Failure",
    "Finish",
    "Outcome",
    "Pin",
    "Pinned",
    "Reserve",
    "RouteRun",
    "Settle",
    "Sleep",
    "Spent",
    "Start",
    "Stats",
    "TryAcquire",
    "WaitSlot",
]

T = TypeVar("T")
Outcome = Literal["ok", "limited", "failed", "other"]


@dataclass(slots=True)
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
    reason: str = ""
    """Why the plan put the route where it is (set by the strategy)."""
    score: float | None = None
    """The strategy's score (lower is better; ``None``: not scored)."""
    not_before: float = 0.0
    limited: int = 0
    no_room: bool = False
    done: bool = False


@dataclass(slots=True)
class Cooling:
    """Ask the state which keys are cooling (seconds left each)."""

    keys: list[str]
    """The health keys of the call's candidate routes."""


@dataclass(slots=True)
class TryAcquire:
    """Take a slot if one is free now; ``None`` if not."""

    key: str
    limit: int | None
    """The route's hard cap (``max_in_flight``), under the adaptive limit."""


@dataclass(slots=True)
class WaitSlot:
    """Wait for a slot of any of ``wants`` until ``deadline`` (monotonic)."""

    wants: tuple[Want, ...]
    deadline: float
    """Answered ``None`` when it passes: the driver then gives up on the wait."""


@dataclass(slots=True)
class Finish:
    """Release a slot (if any) and record the outcome for health and limits."""

    lease: Lease | None
    key: str
    outcome: Outcome
    """``ok``/``failed`` count for health; ``limited`` lowers the slot limit."""
    seen: Observation | None = None
    """The attempt as the route's live statistics count it (``None``: not)."""


@dataclass(slots=True)
class Stats:
    """Ask the state for the live figures of ``keys`` (a strategy's input)."""

    keys: list[str]


@dataclass(slots=True)
class Reserve:
    """Reserve ``micro`` micro-dollars of ``budget`` before the call."""

    scope: str
    """The budget's state key, shared by every router with the same scope."""
    micro: int
    """The call's estimated cost: its input and its largest possible output."""
    budget: int


@dataclass(slots=True)
class Spent:
    """Ask what has been spent under ``scope`` (micro-dollars)."""

    scope: str
    """The budget's state key; the answer explains a refused reservation."""


@dataclass(slots=True)
class Settle:
    """Replace a reservation by what the call really cost."""

    reservation: Reservation
    micro: int
    """The cost from the answer's usage (0: nothing was billed)."""


@dataclass(slots=True)
class Sleep:
    """Wait; nothing else can be tried before then."""

    seconds: float
    """Until the soonest route's backoff ends (never past the deadline)."""


@dataclass(slots=True)
class Attempt:
    """Call this route (invoke it, or open its stream and read a first chunk)."""

    route: RouteRun


@dataclass(slots=True)
class Pinned:
    """Ask which route (its label) served this conversation last, if any."""

    key: str
    """The conversation's state key (a digest, never its text)."""


@dataclass(slots=True)
class Pin:
    """Remember the route that served this conversation, for an idle TTL."""

    key: str
    label: str
    ttl: float


@dataclass(slots=True)
class Start:
    """Start an attempt on ``route`` without waiting for it (async calls).

    Answered with a handle for :class:`Await` and :class:`Abandon`.
    """

    route: RouteRun


@dataclass(slots=True)
class Await:
    """Wait until one of ``handles`` is done, or ``timeout`` seconds.

    Answered with ``[(handle, value or Failure), ...]`` for those done
    (empty when the time passed first).
    """

    handles: tuple[Any, ...]
    timeout: float | None


@dataclass(slots=True)
class Abandon:
    """Cancel a started attempt at once and close what it opened.

    Answered with its value or :class:`Failure` if it was done before it
    could be cancelled, else ``None``.
    """

    handle: Any


Effect = (
    Cooling
    | Pinned
    | Pin
    | Start
    | Await
    | Abandon
    | Stats
    | TryAcquire
    | WaitSlot
    | Finish
    | Reserve
    | Spent
    | Settle
    | Sleep
    | Attempt
)


@dataclass(slots=True)
class Failure:
    """What an attempt raised, handed back to the driver."""

    error: Exception


@dataclass(slots=True)
class Committed(Generic[T]):
    """The attempt that served the call, and what must happen when it ends."""

    route: RouteRun
    value: T
    lease: Lease | None
    reservation: Reservation | None
    record: dict[str, Any]
    started: float = 0.0
    """When the serving attempt was sent (the driver's clock)."""
    first: float | None = None
    """Seconds to its first chunk, for a stream."""
    hedged: bool = False
    """The serving attempt was a hedge (it answered before the first)."""
