"""Live route statistics: how each route's recent calls went.

The router records one :class:`Observation` per finished attempt (its time to
first token, latency, tokens, outcome, and whether it was a hedge) and reads
back one :class:`RouteStats` per route: counters, percentiles over the last
:data:`WINDOW` samples, and exponentially weighted recent figures that react
within a few calls. Memory is bounded per route (fixed windows here, and in
Redis capped lists and counters under a TTL).

:class:`StatsWindow` is the in-process record; Redis keeps the same figures
(``_lua``'s stats scripts), and both answer through :func:`route_stats`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "EWMA_WEIGHT",
    "WINDOW",
    "Observation",
    "RouteStats",
    "StatsWindow",
    "percentile",
    "route_stats",
]

WINDOW = 128
"""Samples per route the percentiles are taken over."""

EWMA_WEIGHT = 0.3
"""Weight of the newest sample in the recent figures: a route that slows
down shows it within a few calls, one odd sample does not swing it."""

Kind = Literal["ok", "failed", "limited", "other"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One finished attempt, as the statistics see it.

    Attributes:
        outcome: ``ok``; ``failed`` (5xx, timeout, connection); ``limited``
            (W&B's concurrency 429); ``other`` (anything else, a cancelled
            hedge included).
        seconds: From sending to the whole answer (a stream's end).
        first: From sending to the first token, for streams.
        output_tokens: Tokens generated, when the answer reported usage.
        input_tokens: Prompt tokens, when reported.
        cached_tokens: Prompt tokens W&B served from its prefix cache.
        hedge: This attempt was a hedge (a second attempt of a slow call).
        won: The hedge answered first.
    """

    outcome: Kind
    seconds: float = 0.0
    first: float | None = None
    output_tokens: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    hedge: bool = False
    won: bool = False

    @property
    def tokens_per_second(self) -> float | None:
        """Output speed after the first token (after sending, for an invoke)."""
        busy = self.seconds - (self.first or 0.0)
        if self.outcome != "ok" or self.output_tokens <= 0 or busy <= 0:
            return None
        return self.output_tokens / busy


@dataclass(frozen=True)
class RouteStats:
    """A route's live figures (seconds; ``None`` while there is no sample).

    Attributes:
        requests: Attempts finished.
        errors: Of which failed server-side (5xx, timeouts, connections).
        limited: Of which W&B's concurrency 429.
        in_flight: Requests holding a slot now.
        limit: The adaptive in-flight limit now (``None``: none learned).
        ttft_p50: Median time to first token (streams).
        ttft_p95: 95th percentile of it.
        latency_p50: Median time to the whole answer (invokes).
        latency_p95: 95th percentile of it.
        ttft_recent: Recent time to first token (weighted to the last calls).
        latency_recent: Recent latency (weighted to the last calls).
        tokens_per_second: Median output speed.
        output_tokens: Recent output length (weighted), for cost estimates.
        hedges: Hedges started on this route.
        hedges_won: Of which answered first.
        cached_share: Share of input tokens served from W&B's prefix cache.
        samples: Successful attempts in the window.
    """

    requests: int = 0
    errors: int = 0
    limited: int = 0
    in_flight: int = 0
    limit: int | None = None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    ttft_recent: float | None = None
    latency_recent: float | None = None
    tokens_per_second: float | None = None
    output_tokens: float | None = None
    hedges: int = 0
    hedges_won: int = 0
    cached_share: float | None = None
    samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (``router.stats()``'s values)."""
        return asdict(self)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` quantile of ``values`` (nearest rank), ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * (len(ordered) - 1))))
    return ordered[rank]


def ewma(previous: float | None, sample: float) -> float:
    """The recent figure after ``sample``."""
    if previous is None:
        return sample
    return previous + EWMA_WEIGHT * (sample - previous)


def route_stats(
    counters: Mapping[str, float],
    ttft: Sequence[float],
    latency: Sequence[float],
    speed: Sequence[float],
    in_flight: int,
    limit: int | None,
) -> RouteStats:
    """Assemble a :class:`RouteStats` from what a state keeps for one route."""

    def count(name: str) -> int:
        return int(counters.get(name, 0))

    def recent(name: str) -> float | None:
        value = counters.get(name)
        return None if value is None else float(value)

    input_tokens = count("input_tokens")
    return RouteStats(
        requests=count("requests"),
        errors=count("errors"),
        limited=count("limited"),
        in_flight=in_flight,
        limit=limit,
        ttft_p50=percentile(ttft, 0.5),
        ttft_p95=percentile(ttft, 0.95),
        latency_p50=percentile(latency, 0.5),
        latency_p95=percentile(latency, 0.95),
        ttft_recent=recent("ttft_recent"),
        latency_recent=recent("latency_recent"),
        tokens_per_second=percentile(speed, 0.5),
        output_tokens=recent("output_recent"),
        hedges=count("hedges"),
        hedges_won=count("hedges_won"),
        cached_share=count("cached_tokens") / input_tokens if input_tokens else None,
        samples=len(ttft) + len(latency),
    )


class StatsWindow:
    """One route's figures in this process (bounded: :data:`WINDOW` samples)."""

    __slots__ = ("counters", "latency", "speed", "ttft")

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.ttft: deque[float] = deque(maxlen=WINDOW)
        self.latency: deque[float] = deque(maxlen=WINDOW)
        self.speed: deque[float] = deque(maxlen=WINDOW)

    def observe(self, seen: Observation) -> None:
        """Count one finished attempt."""
        counters = self.counters
        counters["requests"] = counters.get("requests", 0) + 1
        if seen.hedge:
            self._add("hedges", 1)
            self._add("hedges_won", seen.won)
        if seen.outcome != "ok":
            self._add("errors", seen.outcome == "failed")
            self._add("limited", seen.outcome == "limited")
            return
        self._add("input_tokens", seen.input_tokens)
        self._add("cached_tokens", seen.cached_tokens)
        if seen.first is not None:
            self.ttft.append(seen.first)
            counters["ttft_recent"] = ewma(counters.get("ttft_recent"), seen.first)
        else:
            self.latency.append(seen.seconds)
            counters["latency_recent"] = ewma(
                counters.get("latency_recent"), seen.seconds
            )
        if seen.output_tokens > 0:
            counters["output_recent"] = ewma(
                counters.get("output_recent"), seen.output_tokens
            )
        speed = seen.tokens_per_second
        if speed is not None:
            self.speed.append(speed)

    def _add(self, name: str, amount: float) -> None:
        if amount:
            self.counters[name] = self.counters.get(name, 0) + amount

    def stats(self, in_flight: int, limit: int | None) -> RouteStats:
        """The figures now."""
        return route_stats(
            self.counters, self.ttft, self.latency, self.speed, in_flight, limit
        )
