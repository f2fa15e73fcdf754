"""What a ``RedisState`` does while Redis is away, and what it keeps for it.

:class:`Outage` knows whether Redis is down (and when to try it again), logs
one warning per outage and one line when it is back, and holds:

- the in-process state answered from meanwhile (``on_error="open"``; with
  ``"closed"`` a :class:`StateUnavailableError` instead). It starts holding a
  stand-in for every lease Redis gave this process and it has not released,
  so ``max_in_flight`` holds per process; after the outage it is kept
  (*draining*) while calls it admitted still run, and they count against the
  cap Redis is asked for;
- the recording writes that failed (releases, settlements, reports), replayed
  in order once Redis answers again (:class:`Pending`; the oldest let go past
  10,000);
- the leases Redis gave this process and not yet released.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from langchain_wandb_router.state._interface import Lease, StateUnavailableError
from langchain_wandb_router.state._lua import ScriptCall
from langchain_wandb_router.state._memory import InProcessState

__all__ = ["OnError", "Outage", "Pending"]

logger = logging.getLogger("langchain_wandb_router")

OnError = Literal["open", "closed"]

# Failed writes kept for replay, at most (the oldest go first; their leases
# and reservations expire by TTL anyway).
_MAX_PENDING = 10_000


@dataclass
class Pending:
    """A recording write that failed; replayed once Redis answers again.

    Attributes:
        call: The script call to make.
        scope: For a settlement: the budget it adds to.
        spend: For a settlement: the micro-dollars it adds.
    """

    call: ScriptCall
    scope: str | None = None
    spend: int = 0


class Outage:
    """A Redis state's outages: whether Redis is away, and what stands in for it.

    Args:
        url: The state's URL as shown.
        on_error: ``"open"``: answer from in-process state; ``"closed"``: raise.
        retry_interval: Seconds after a failure before Redis is tried again.
        clock: Monotonic seconds.
        scrub: Masks the URL's passwords in an error message.
        new_fallback: Makes an empty in-process state to answer from.
    """

    def __init__(
        self,
        url: str,
        *,
        on_error: OnError,
        retry_interval: float,
        clock: Callable[[], float],
        scrub: Callable[[str], str],
        new_fallback: Callable[[], InProcessState],
    ) -> None:
        self._url, self._on_error = url, on_error
        self._retry_interval = retry_interval
        self._clock, self._scrub = clock, scrub
        self._new_fallback = new_fallback
        self._lock = threading.Lock()
        self._down = False
        self._down_until = 0.0
        self._last_error = ""
        self.fallback: InProcessState | None = None
        # The outage before the last, while calls it admitted may still run.
        self.draining: InProcessState | None = None
        self._local_leases = 0  # issued by a fallback and not yet released
        self._pending: list[Pending] = []
        # key -> tokens of the leases Redis gave this process, not yet released.
        self._held: defaultdict[str, set[int | str]] = defaultdict(set)
        # token -> the fallback lease standing in for it during an outage.
        self._stand_ins: dict[int | str, Lease] = {}

    # Availability ------------------------------------------------------------
    def resting(self) -> bool:
        """Whether an outage was seen so recently that Redis is not tried."""
        return self._down_until > 0 and self._clock() < self._down_until

    def recovering(self) -> bool:
        """Whether Redis answered after an outage, or writes wait for replay."""
        return self._down or bool(self._pending)

    def mark_down(self, exc: BaseException) -> None:
        """Redis failed with ``exc``: rest, and warn once per outage."""
        text = self._scrub(f"{type(exc).__name__}: {exc}")
        with self._lock:
            first = not self._down
            self._down = True
            self._down_until = self._clock() + self._retry_interval
            self._last_error = text
        if first:
            then = (
                "answering from per-process state until it is back"
                if self._on_error == "open"
                else "calls that need it fail with StateUnavailableError"
            )
            logger.warning(
                "Shared router state at %s is unavailable (%s); %s (trying "
                "again every %.0fs).",
                self._url,
                text,
                then,
                self._retry_interval,
            )

    def mark_up(self) -> list[Pending]:
        """Note Redis answered; return the writes to replay."""
        with self._lock:
            recovered = self._down
            self._down = False
            self._down_until = 0.0
            if self.fallback is not None:
                # Calls it admitted may still run: they count against the
                # cap until they end (see RedisState._try_op).
                self.draining = self.fallback
            self.fallback = None
            stand_ins = list(self._stand_ins.values())
            self._stand_ins.clear()
            pending, self._pending = self._pending, []
        for stand_in in stand_ins:  # Redis counts those leases itself again
            stand_in.owner.release(stand_in, "other")
        if recovered:
            logger.info("Shared router state at %s is reachable again.", self._url)
        return pending

    def unavailable(self) -> StateUnavailableError:
        """The error a closed state raises while Redis is away."""
        return StateUnavailableError(
            f"Shared router state at {self._url} is unavailable "
            f"({self._last_error or 'recent outage'}). Check that Redis is "
            "running and reachable from here, or create the router with "
            "on_error='open' to fall back to per-process state during outages."
        )

    def local(self) -> InProcessState:
        """The state to answer from during an outage, or raise if closed.

        It starts holding a stand-in for every lease Redis gave this process
        and it has not released, so ``max_in_flight`` holds per process; the
        previous outage's state is reused while calls it admitted still run.
        """
        if self._on_error == "closed":
            raise self.unavailable()
        with self._lock:
            fallback = self.fallback
            if fallback is None:
                # Reused while its calls run (its earlier spend then counts
                # twice against this outage's share: the safe side).
                reuse = self.draining if self._local_leases else None
                fallback = reuse or self._new_fallback()
                self.fallback, self.draining = fallback, None
                for key, tokens in self._held.items():
                    for token in tokens:
                        stand_in = fallback.try_acquire(key, None)
                        if stand_in is not None:
                            self._stand_ins[token] = stand_in
            return fallback

    # Pending writes -------------------------------------------------------------
    def queue(self, item: Pending) -> None:
        """Keep a failed write for replay."""
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                del self._pending[0]
            self._pending.append(item)

    def requeue(self, items: list[Pending]) -> None:
        """Put writes a replay did not send back in front of the queue."""
        with self._lock:
            self._pending[:0] = items

    def queued_spend(self, scope: str) -> int:
        """The spend of ``scope``'s queued settlements."""
        with self._lock:
            return sum(p.spend for p in self._pending if p.scope == scope)

    # Leases ---------------------------------------------------------------------
    def hold(self, key: str, token: int | str) -> None:
        """Redis gave this process lease ``token`` of ``key``."""
        with self._lock:
            self._held[key].add(token)

    def forget(self, lease: Lease) -> Lease | None:
        """Stop tracking a lease Redis gave; the stand-in it had, if any."""
        with self._lock:
            tokens = self._held.get(lease.key)
            if tokens is not None:
                tokens.discard(lease.token)
                if not tokens:
                    del self._held[lease.key]
            return self._stand_ins.pop(lease.token, None)

    def stand_in(self, token: int | str) -> Lease | None:
        """The fallback lease standing in for lease ``token``, if any."""
        return self._stand_ins.get(token)

    def local_taken(self) -> None:
        """The fallback issued a lease."""
        with self._lock:
            self._local_leases += 1

    def local_released(self) -> None:
        """A lease the fallback issued came back."""
        with self._lock:
            self._local_leases = max(0, self._local_leases - 1)
            if self._local_leases == 0 and self.fallback is None:
                self.draining = None
