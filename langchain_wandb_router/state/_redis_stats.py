"""Live route statistics and conversation affinity shared by a fleet through Redis.

``RedisState``'s part of :class:`~._routes.RouteMemory`. Recording an attempt
is one ``observe`` script call; reading figures is one ``stats`` call per
Cluster slot (a scope's routes share one); a conversation's route is one key
with an idle TTL (``pin``/``pinned``). While Redis is
unavailable, both fall back to the outage's in-process state, like every other
record: figures are kept locally and the shared ones resume afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.state._lua import ScriptCall, hash_tag, reply_text
from langchain_wandb_router.state._lua_stats import (
    observe_args,
    observe_keys,
    stats_keys,
)
from langchain_wandb_router.state._runner import DOWN, Op, Step, down, ignore
from langchain_wandb_router.state._stats import Observation, RouteStats, route_stats
from langchain_wandb_router.state._steps import Steps

if TYPE_CHECKING:
    from langchain_wandb_router.state._interface import ConcurrencySettings
    from langchain_wandb_router.state._outage import Outage
    from langchain_wandb_router.state._runner import Runner

__all__ = ["RedisStats"]


class RedisStats:
    """``observe``/``stats`` (and async twins) on Redis; mixed into RedisState."""

    if TYPE_CHECKING:
        _runner: Runner
        _outage: Outage
        concurrency: ConcurrencySettings

    def _observe_op(self, key: str, seen: Observation) -> Op[None]:
        call = ScriptCall("observe", observe_keys(key), observe_args(seen))
        return Op(call, ignore, lambda: self._outage.local().observe(key, seen))

    def _stats(self, keys: Iterable[str]) -> Steps[Step, dict[str, RouteStats]]:
        keys = list(keys)
        groups: dict[str, list[str]] = {}  # one script call per Cluster slot
        for key in keys:
            groups.setdefault(hash_tag(key), []).append(key)
        out: dict[str, RouteStats] = {}
        initial = self.concurrency.initial_limit
        for group in groups.values():
            call = ScriptCall(
                "stats", [k for key in group for k in stats_keys(key)], []
            )
            got: Any = yield Op(call, lambda raw: raw, down)
            if got is DOWN:
                return self._outage.local().stats(keys)
            out.update(
                (key, stats_of(raw, initial))
                for key, raw in zip(group, got, strict=True)
            )
        return out

    def observe(self, key: str, seen: Observation) -> None:
        """See :meth:`RouterState.observe`."""
        self._runner.run(self._observe_op(key, seen))

    async def aobserve(self, key: str, seen: Observation) -> None:
        """See :meth:`RouterState.aobserve`."""
        await self._runner.arun(self._observe_op(key, seen))

    def stats(self, keys: Iterable[str]) -> dict[str, RouteStats]:
        """See :meth:`RouterState.stats`."""
        return self._runner.drive(self._stats(keys))

    async def astats(self, keys: Iterable[str]) -> dict[str, RouteStats]:
        """See :meth:`RouterState.astats`."""
        return await self._runner.adrive(self._stats(keys))

    def _pin_op(self, key: str, label: str, ttl: float) -> Op[None]:
        call = ScriptCall("pin", [key], [label, max(1, int(ttl * 1000))])
        return Op(call, ignore, lambda: self._outage.local().pin(key, label, ttl))

    def _pinned_op(self, key: str) -> Op[str | None]:
        return Op(
            ScriptCall("pinned", [key], []),
            lambda got: None if got is None else reply_text(got),
            lambda: self._outage.local().pinned(key),
        )

    def pin(self, key: str, label: str, ttl: float) -> None:
        """See :meth:`RouterState.pin`."""
        self._runner.run(self._pin_op(key, label, ttl))

    async def apin(self, key: str, label: str, ttl: float) -> None:
        """See :meth:`RouterState.apin`."""
        await self._runner.arun(self._pin_op(key, label, ttl))

    def pinned(self, key: str) -> str | None:
        """See :meth:`RouterState.pinned`."""
        return self._runner.run(self._pinned_op(key))

    async def apinned(self, key: str) -> str | None:
        """See :meth:`RouterState.apinned`."""
        return await self._runner.arun(self._pinned_op(key))


def stats_of(raw: Sequence[Any], initial_limit: int | None) -> RouteStats:
    """One route's :class:`RouteStats` from its part of the ``stats`` answer."""
    fields, ttft, latency, speed, in_flight, limit = raw
    pairs = [reply_text(x) for x in fields]
    counters = {pairs[i]: float(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    learned = int(reply_text(limit))
    return route_stats(
        counters,
        [float(x) for x in ttft],
        [float(x) for x in latency],
        [float(x) for x in speed],
        int(in_flight),
        initial_limit if learned < 0 else learned,
    )
