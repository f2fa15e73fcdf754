"""What a router remembers about routes beyond their slots: figures, affinity.

:class:`RouteMemory` is the part of :class:`~._interface.RouterState` that
every state gets for free, kept in this process: each route's live figures
(:mod:`._stats`) and which route served each conversation (so its next turn
reads W&B's warm prompt cache). Both are bounded: windows per route, and at
most :data:`MAX_CONVERSATIONS` conversations, each forgotten after its idle
TTL. A shared state (Redis) overrides every method, so a fleet shares them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from langchain_wandb_router.state._stats import Observation, RouteStats, StatsWindow

__all__ = ["MAX_CONVERSATIONS", "RouteMemory"]

MAX_CONVERSATIONS = 100_000
"""Conversations remembered per state in this process (oldest forgotten)."""


class _Kept:
    """The in-process records, made on first use (no base ``__init__`` needed)."""

    __slots__ = ("lock", "routes", "windows")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, StatsWindow] = {}
        # conversation key -> (route label, monotonic expiry), oldest first
        self.routes: OrderedDict[str, tuple[str, float]] = OrderedDict()


class RouteMemory:
    """Live figures and conversation affinity, kept in this process by default."""

    if TYPE_CHECKING:

        def in_flight(self, key: str) -> int: ...
        def limit(self, key: str) -> int | None: ...

    # Live statistics ---------------------------------------------------------
    def observe(self, key: str, seen: Observation) -> None:
        """Count one finished attempt in route ``key``'s live figures."""
        kept = self._kept()
        with kept.lock:
            window = kept.windows.get(key)
            if window is None:
                window = kept.windows[key] = StatsWindow()
            window.observe(seen)

    def stats(self, keys: Iterable[str]) -> dict[str, RouteStats]:
        """The live figures of each of ``keys`` (zeros where nothing was seen)."""
        kept = self._kept()
        out = {}
        for key in keys:
            in_flight, limit = self.in_flight(key), self.limit(key)
            with kept.lock:
                window = kept.windows.get(key)
                out[key] = (
                    window.stats(in_flight, limit)
                    if window is not None
                    else RouteStats(in_flight=in_flight, limit=limit)
                )
        return out

    async def aobserve(self, key: str, seen: Observation) -> None:
        """Async :meth:`observe`."""
        self.observe(key, seen)

    async def astats(self, keys: Iterable[str]) -> dict[str, RouteStats]:
        """Async :meth:`stats`."""
        return self.stats(keys)

    # Conversation affinity ---------------------------------------------------
    def pinned(self, key: str) -> str | None:
        """The route (its label) that served conversation ``key`` last, if any."""
        kept = self._kept()
        with kept.lock:
            found = kept.routes.get(key)
            if found is None:
                return None
            if found[1] <= time.monotonic():
                del kept.routes[key]
                return None
            return found[0]

    def pin(self, key: str, label: str, ttl: float) -> None:
        """Remember ``label`` served conversation ``key`` (``ttl``: idle seconds)."""
        kept = self._kept()
        with kept.lock:
            kept.routes[key] = (label, time.monotonic() + ttl)
            kept.routes.move_to_end(key)
            while len(kept.routes) > MAX_CONVERSATIONS:
                kept.routes.popitem(last=False)

    async def apinned(self, key: str) -> str | None:
        """Async :meth:`pinned`."""
        return self.pinned(key)

    async def apin(self, key: str, label: str, ttl: float) -> None:
        """Async :meth:`pin`."""
        self.pin(key, label, ttl)

    def _kept(self) -> _Kept:
        kept = self.__dict__.get("_route_memory")
        if kept is None:
            kept = self.__dict__.setdefault("_route_memory", _Kept())
        return kept  # type: ignore[no-any-return]
