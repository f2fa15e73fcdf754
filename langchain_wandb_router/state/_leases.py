"""The heartbeat that keeps the leases of calls in progress alive.

A concurrency lease expires after its state's ``lease_ttl_seconds`` so that a
crashed worker's slots come back. A call that lives longer than that (a
reasoning model streaming for minutes) must not lose its slot meanwhile, or
``max_in_flight`` stops holding. :data:`KEEPER` renews every lease a call
holds, a third of its TTL after it was taken or last renewed, until the call
gives it back.

One daemon thread serves the whole process, whatever event loops or threads
the calls run on: renewing is a short state operation, and a thread keeps it
independent of any loop being busy, blocked or closed. It starts with the
first lease and is started again in a child after ``fork``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from langchain_wandb_router.state._interface import Lease

__all__ = ["KEEPER", "LeaseKeeper"]

logger = logging.getLogger("langchain_wandb_router")

# Renew when this share of the TTL has passed: two more tries fit before expiry.
_RENEW_AT = 1 / 3
# The thread looks again at least this often while it has nothing to do.
_IDLE_WAIT = 30.0


class LeaseKeeper:
    """Renews held leases from one daemon thread until they are discarded.

    Args:
        clock: Monotonic seconds (a test seam).
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        # A plain lock taken directly on every call's add and discard (a
        # Condition's own lock is entered through Python code); the thread
        # waits on a condition over the same lock.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # id(lease) -> (when to renew, lease); Lease is not hashable.
        self._due: dict[int, tuple[float, Lease]] = {}
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")  # when the thread looks next
        # A child process after fork() has none of the parent's threads: the
        # first lease it takes starts its own.
        forked = weakref.WeakMethod(self._forked)  # a hook must not keep it alive
        os.register_at_fork(after_in_child=lambda: _call_if_alive(forked))

    def __len__(self) -> int:
        return len(self._due)

    def add(self, lease: Lease) -> None:
        """Keep ``lease`` alive until :meth:`discard` is called for it."""
        when = self._clock() + _period(lease)
        with self._lock:
            self._due[id(lease)] = (when, lease)
            if self._thread is None:
                self._start()
            elif when < self._wakes_at:
                # Only then: waking the thread on every call would cost each
                # call a thread switch.
                self._cond.notify()

    def discard(self, lease: Lease) -> None:
        """Stop renewing ``lease`` (it was released, or is being released)."""
        with self._lock:
            self._due.pop(id(lease), None)

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._thread = None
        self._wakes_at = float("inf")

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="langchain-wandb-router-leases", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            # One batch per state: a Redis state renews a route's leases in
            # one round trip.
            by_owner: dict[int, list[Lease]] = {}
            for lease in self._take_due():
                by_owner.setdefault(id(lease.owner), []).append(lease)
            for batch in by_owner.values():
                self._renew(batch)

    def _take_due(self) -> list[Lease]:
        """Wait until some leases are due; reschedule and return them."""
        with self._cond:
            while True:
                now = self._clock()
                due = [lease for when, lease in self._due.values() if when <= now]
                if due:
                    for lease in due:
                        self._due[id(lease)] = (now + _period(lease), lease)
                    return due
                soonest = min((when for when, _ in self._due.values()), default=None)
                wait = _IDLE_WAIT if soonest is None else soonest - now
                wait = min(wait, _IDLE_WAIT)
                self._wakes_at = now + wait
                self._cond.wait(wait)
                self._wakes_at = float("-inf")  # awake: nobody needs to notify

    def _renew(self, leases: list[Lease]) -> None:
        try:
            alive = leases[0].owner.renew_many(leases)
        except Exception:  # a state must never stop the heartbeat of the others
            logger.warning("Renewing concurrency leases failed.", exc_info=True)
            return
        for lease, ok in zip(leases, alive, strict=True):
            if not ok:
                # Expired before it could be renewed (the process was stalled
                # for longer than the TTL): the slot is gone; stop asking.
                self.discard(lease)
                logger.warning(
                    "A concurrency lease for %s expired while its call was still "
                    "running; raise lease_ttl_seconds if calls stall this long.",
                    lease.key,
                )


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


def _period(lease: Lease) -> float:
    return float(lease.owner.concurrency.lease_ttl_seconds) * _RENEW_AT


KEEPER = LeaseKeeper()
"""The process's one keeper."""
