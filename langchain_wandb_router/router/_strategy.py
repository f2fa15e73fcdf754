"""Which equivalent route goes first: the strategies, and hedging's settings.

A strategy only orders the call's candidates that are not cooling down; every
other route stays a fallback in that order, and capability filtering, health,
limits and budgets apply as they do for ``"ordered"``. Everything here is a
pure function of the routes and their live figures (:class:`RouteStats`); the
driver asks the state for the figures and the interpreters do no deciding.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from langchain_wandb_router.catalog._models import get_model_info
from langchain_wandb_router.catalog._pricing import tokens_cost_usd
from langchain_wandb_router.router._routing import Route
from langchain_wandb_router.state._stats import RouteStats

__all__ = [
    "EXPLORE_SHARE",
    "STRATEGIES",
    "Hedge",
    "HedgeAllowance",
    "Placed",
    "Strategy",
    "check_strategy",
    "hedge_delay",
    "place",
]

Strategy = Literal["ordered", "weighted", "least_busy", "latency", "cost"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

EXPLORE_SHARE = 0.05
"""Share of calls the ``latency`` strategy sends to a route that is not the
fastest, so every route's figures stay fresh."""

# A route with fewer successful samples than this is measured first.
_MIN_SAMPLES = 3
# Output expected from a call that sets no max_tokens, before a route has
# reported any (cost strategy).
_DEFAULT_OUTPUT = 512

# Hedge delay without figures, and the least delay while figures are few.
_HEDGE_DELAY_UNKNOWN = 2.0
_HEDGE_DELAY_FLOOR = 0.1
_HEDGE_SAMPLES = 10
# The default hedge delay is the route's p95, but at most this many medians.
_HEDGE_MEDIANS = 3.0
# Calls over which hedges are counted against Hedge.max_extra.
_ALLOWANCE_WINDOW = 200


@dataclass(frozen=True)
class Hedge:
    """Hedged requests: a second attempt when the first is slow to answer.

    When the first attempt has produced nothing (no first token for a stream,
    no answer for an invoke) after ``delay`` seconds, a second attempt starts
    on the next route of the plan (the same model is allowed), but only if
    that route has a free slot: a hedge never causes a concurrency 429 and
    never exceeds ``max_in_flight``. The first to answer wins; the other is
    cancelled at once and its slot and reservation released.

    Attributes:
        delay: Seconds to wait before hedging; ``None``: the route's live
            95th percentile (time to first token for streams, latency for
            invokes), never under a floor while it has few samples.
        max_extra: The most hedges, as a share of the router's calls.
    """

    delay: float | None = None
    max_extra: float = 0.1

    def __post_init__(self) -> None:
        if self.delay is not None and not self.delay > 0:
            msg = f"Hedge(delay=...) must be > 0 seconds or None, got {self.delay!r}."
            raise ValueError(msg)
        if not 0 < self.max_extra <= 1:
            msg = (
                "Hedge(max_extra=...) is a share of calls, in (0, 1]; got "
                f"{self.max_extra!r}."
            )
            raise ValueError(msg)


def check_strategy(strategy: str) -> None:
    """Refuse an unknown strategy name, listing the known ones."""
    if strategy not in STRATEGIES:
        known = ", ".join(map(repr, STRATEGIES))
        msg = f"strategy must be one of {known}; got {strategy!r}."
        raise ValueError(msg)


@dataclass(frozen=True)
class Placed:
    """A route's place in the plan: its score (lower is better) and why."""

    index: int
    """The route's position among the candidates as given."""
    score: float | None
    reason: str
    first: bool = False
    """Goes before every scored route (a route that must be measured)."""


def place(
    strategy: str,
    routes: Sequence[Route],
    stats: Mapping[str, RouteStats],
    *,
    stream: bool,
    input_tokens: int,
    max_tokens: int | None,
    limits: Sequence[int | None],
    rng: random.Random,
    warm: tuple[str, int] | None = None,
) -> list[Placed]:
    """Order ``routes`` by ``strategy``; ``stats`` is keyed by route label.

    Args:
        strategy: One of :data:`STRATEGIES`.
        routes: The candidates not cooling down, in the user's order.
        stats: Live figures per route label (missing: no figures yet).
        stream: Whether the call streams (time to first token matters).
        input_tokens: The call's estimated prompt size.
        max_tokens: The call's output cap, if any.
        limits: Each route's hard in-flight cap (``max_in_flight``).
        rng: Randomness for ``weighted`` and ``latency``'s exploration.
        warm: The label of the route that served this conversation last, and
            the prompt tokens it would read from its cache (``cost`` prices
            them at its cache-read price).

    Returns:
        Every route once, best first; ties keep the user's order.
    """
    scorer = _SCORERS.get(strategy)
    if scorer is None:
        return [Placed(i, None, "in the given order") for i in range(len(routes))]
    placed = [
        scorer(
            i,
            route,
            stats.get(route.label),
            _Call(
                stream,
                input_tokens,
                max_tokens,
                limits[i],
                rng,
                warm[1] if warm is not None and warm[0] == route.label else 0,
            ),
        )
        for i, route in enumerate(routes)
    ]
    ordered = sorted(placed, key=_sort_key)
    return _explore(ordered, rng) if strategy == "latency" else ordered


@dataclass(frozen=True)
class _Call:
    stream: bool
    input_tokens: int
    max_tokens: int | None
    limit: int | None
    rng: random.Random
    warm_tokens: int = 0


def _sort_key(placed: Placed) -> tuple[bool, bool, float, int]:
    # Routes to measure first; then scored ones, best first; routes without
    # a score last; the user's order breaks ties.
    return (not placed.first, placed.score is None, placed.score or 0.0, placed.index)


def _weighted(i: int, route: Route, stats: RouteStats | None, call: _Call) -> Placed:
    # Weighted sampling without replacement (Efraimidis-Spirakis): sorting by
    # -log(u)/w puts each route first with probability weight / total.
    u = 1.0 - call.rng.random()  # in (0, 1]
    return Placed(i, -math.log(u) / route.weight, f"weight {route.weight:g}")


def _least_busy(i: int, route: Route, stats: RouteStats | None, call: _Call) -> Placed:
    in_flight = stats.in_flight if stats else 0
    limits = [n for n in (call.limit, stats.limit if stats else None) if n]
    if limits:
        cap = min(limits)
        return Placed(i, in_flight / cap, f"{in_flight} of {cap} in flight")
    # No known cap: the count itself, scaled to sort after any route below its cap.
    return Placed(i, float(in_flight), f"{in_flight} in flight")


def _latency(i: int, route: Route, stats: RouteStats | None, call: _Call) -> Placed:
    if stats is None or stats.samples + stats.in_flight < _MIN_SAMPLES:
        return Placed(i, None, "no figures yet: measured first", first=True)
    if stats.samples < _MIN_SAMPLES:
        # Its measurements are in flight: until they are back, the routes
        # with figures serve (not every call of a burst on an unknown route).
        return Placed(i, None, "being measured")
    first, second = ("ttft_recent", "latency_recent")
    if not call.stream:
        first, second = second, first
    value = getattr(stats, first)
    name = "time to first token" if first == "ttft_recent" else "latency"
    if value is None:
        value = getattr(stats, second)
        name = "latency" if name == "time to first token" else "time to first token"
    if value is None:
        return Placed(i, None, "no figures yet: measured first", first=True)
    return Placed(i, float(value), f"recent {name} {value:.3f}s")


def _cost(i: int, route: Route, stats: RouteStats | None, call: _Call) -> Placed:
    info = get_model_info(route.label) if isinstance(route.model, str) else None
    if info is None or not info.pricing.known:
        return Placed(i, None, "price unknown")
    cached = int(call.input_tokens * (stats.cached_share or 0.0)) if stats else 0
    usd = tokens_cost_usd(
        info.pricing,
        call.input_tokens,
        _expected_output(call.max_tokens, stats, info.max_output_tokens),
        max(cached, call.warm_tokens),
    )
    if usd is None:
        return Placed(i, None, "price unknown")
    warm = " with this conversation's cached prompt" if call.warm_tokens else ""
    return Placed(i, usd, f"expected ${usd:.6f}{warm}")


def _expected_output(
    max_tokens: int | None, stats: RouteStats | None, model_max: int | None
) -> int:
    """The output a call is likely to produce: what the route has been producing."""
    recent = stats.output_tokens if stats is not None else None
    if recent:
        return int(min(recent, max_tokens or recent))
    return max_tokens or min(model_max or _DEFAULT_OUTPUT, _DEFAULT_OUTPUT)


_SCORERS: dict[str, Callable[[int, Route, RouteStats | None, _Call], Placed]] = {
    "weighted": _weighted,
    "least_busy": _least_busy,
    "latency": _latency,
    "cost": _cost,
}


def _explore(ordered: list[Placed], rng: random.Random) -> list[Placed]:
    """Now and then, try another route first so its figures stay fresh."""
    if ordered[0].first or ordered[0].score is None or len(ordered) < 2:
        return ordered  # a route without figures is being measured anyway
    if rng.random() >= EXPLORE_SHARE:
        return ordered
    pick = rng.randrange(1, len(ordered))
    chosen = ordered[pick]
    explored = Placed(chosen.index, chosen.score, f"{chosen.reason}; exploring")
    return [explored, *ordered[:pick], *ordered[pick + 1 :]]


def hedge_delay(hedge: Hedge, stats: RouteStats | None, *, stream: bool) -> float:
    """Seconds before hedging a call on a route with ``stats``."""
    if hedge.delay is not None:
        return hedge.delay
    if stats is None:
        return _HEDGE_DELAY_UNKNOWN
    p95 = stats.ttft_p95 if stream else stats.latency_p95
    if p95 is None:
        p95 = stats.latency_p95 if stream else stats.ttft_p95
    if p95 is None:
        return _HEDGE_DELAY_UNKNOWN
    median = stats.ttft_p50 if stream else stats.latency_p50
    if median is not None:
        # A tail as common as 1 in 20 puts p95 inside the tail itself, where
        # hedging comes too late to help: never wait past a few medians.
        p95 = min(p95, _HEDGE_MEDIANS * median)
    if stats.samples < _HEDGE_SAMPLES:
        return max(p95, _HEDGE_DELAY_FLOOR)
    return p95


class HedgeAllowance:
    """How many hedges the router may still start: ``max_extra`` of its calls.

    Counted over the last :data:`_ALLOWANCE_WINDOW` hedge-eligible calls of
    this process; at least one hedge is allowed in any window, so a cold
    router can hedge its first slow call.
    """

    __slots__ = ("_lock", "_recent", "max_extra")

    def __init__(self, max_extra: float) -> None:
        self.max_extra = max_extra
        self._recent: deque[bool] = deque(maxlen=_ALLOWANCE_WINDOW)
        self._lock = threading.Lock()

    def called(self) -> None:
        """A hedge-eligible call started."""
        with self._lock:
            self._recent.append(False)

    def may(self) -> bool:
        """Whether a hedge may start now (nothing counted: see :meth:`take`)."""
        with self._lock:
            return self._room()

    def take(self) -> bool:
        """Whether a hedge may start now (and count it if so)."""
        with self._lock:
            if not self._room():
                return False
            for i in range(len(self._recent) - 1, -1, -1):
                if not self._recent[i]:
                    self._recent[i] = True
                    break
            else:
                self._recent.append(True)
            return True

    def _room(self) -> bool:
        hedged = sum(self._recent)
        return hedged + 1 <= max(1.0, self.max_extra * len(self._recent))
