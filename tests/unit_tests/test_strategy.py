"""The routing strategies, hedging's settings and the live statistics, as pure code.

``place`` orders routes from their figures, ``hedge_delay`` and
``HedgeAllowance`` decide when and how often a call may hedge, and
``StatsWindow`` keeps a route's figures in a process. Randomness is seeded;
shares are asserted over many draws with wide bounds.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from langchain_wandb_router import Route
from langchain_wandb_router.router._strategy import (
    _ALLOWANCE_WINDOW,
    _HEDGE_DELAY_FLOOR,
    _HEDGE_DELAY_UNKNOWN,
    _HEDGE_SAMPLES,
    EXPLORE_SHARE,
    STRATEGIES,
    Hedge,
    HedgeAllowance,
    Placed,
    check_strategy,
    hedge_delay,
    place,
)
from langchain_wandb_router.state._stats import (
    EWMA_WEIGHT,
    WINDOW,
    Observation,
    RouteStats,
    StatsWindow,
    percentile,
)

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"  # $0.10 in, $0.10 out
DSV31 = "deepseek-ai/DeepSeek-V3.1"  # $0.55 in, $1.65 out
KIMI = "moonshotai/Kimi-K2.5"  # $0.60 in, $3.00 out, $0.10 cache read
GLM = "zai-org/GLM-5.2"  # $0.76 in, $2.42 out, $0.14 cache read


def order(
    strategy: str,
    routes: list[Route],
    stats: dict[str, RouteStats] | None = None,
    *,
    stream: bool = False,
    input_tokens: int = 1000,
    max_tokens: int | None = None,
    limits: list[int | None] | None = None,
    rng: random.Random | None = None,
) -> list[Placed]:
    return place(
        strategy,
        routes,
        stats or {},
        stream=stream,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        limits=limits or [None] * len(routes),
        rng=rng or random.Random(0),
    )


def labels(routes: list[Route], placed: list[Placed]) -> list[str]:
    return [routes[p.index].label for p in placed]


def measured(**figures: float) -> RouteStats:
    """Figures of a route with enough samples to be ranked."""
    return RouteStats(samples=10, requests=10, **figures)  # type: ignore[arg-type]


# ---------------------------------------------------------------- settings


def test_unknown_strategy_is_refused_with_the_known_names() -> None:
    for name in STRATEGIES:
        check_strategy(name)
    with pytest.raises(ValueError, match=r"'ordered'.*'cost'.*got 'fastest'"):
        check_strategy("fastest")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delay": 0}, "delay"),
        ({"delay": -1.0}, "delay"),
        ({"max_extra": 0}, "max_extra"),
        ({"max_extra": 1.5}, "max_extra"),
    ],
)
def test_hedge_refuses_settings_out_of_range(
    kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        Hedge(**kwargs)  # type: ignore[arg-type]


def test_route_weight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="weight"):
        Route(QWEN, weight=0)


# ---------------------------------------------------------------- ordered


def test_ordered_keeps_the_given_order_whatever_the_figures() -> None:
    routes = [Route(KIMI), Route(DSV31), Route(QWEN)]
    stats = {
        KIMI: measured(latency_recent=9.0, in_flight=5),
        QWEN: measured(latency_recent=0.1),
    }
    placed = order("ordered", routes, stats)
    assert labels(routes, placed) == [KIMI, DSV31, QWEN]
    assert all(p.score is None for p in placed)


# ---------------------------------------------------------------- weighted


def test_weighted_puts_each_route_first_by_its_share_of_the_weights() -> None:
    routes = [Route(QWEN, weight=6), Route(DSV31, weight=3), Route(KIMI, weight=1)]
    rng = random.Random(17)
    firsts: Counter[str] = Counter()
    draws = 4000
    for _ in range(draws):
        placed = order("weighted", routes, rng=rng)
        assert sorted(p.index for p in placed) == [0, 1, 2]  # all kept as fallbacks
        firsts[labels(routes, placed)[0]] += 1
    assert firsts[QWEN] / draws == pytest.approx(0.6, abs=0.04)
    assert firsts[DSV31] / draws == pytest.approx(0.3, abs=0.04)
    assert firsts[KIMI] / draws == pytest.approx(0.1, abs=0.03)


def test_weighted_with_equal_weights_spreads_evenly_and_says_why() -> None:
    routes = [Route(QWEN), Route(DSV31)]
    rng = random.Random(3)
    firsts = Counter(
        labels(routes, order("weighted", routes, rng=rng))[0] for _ in range(2000)
    )
    assert 0.42 < firsts[QWEN] / 2000 < 0.58
    placed = order("weighted", [Route(QWEN, weight=2.5)], rng=rng)
    assert placed[0].reason == "weight 2.5"


# ---------------------------------------------------------------- least busy


def test_least_busy_orders_by_in_flight_relative_to_the_route_limit() -> None:
    routes = [Route(QWEN), Route(DSV31), Route(KIMI)]
    stats = {
        QWEN: RouteStats(in_flight=3),  # 3 of 4
        DSV31: RouteStats(in_flight=5),  # 5 of 20
        KIMI: RouteStats(in_flight=1),  # 1 of 2
    }
    placed = order("least_busy", routes, stats, limits=[4, 20, 2])
    assert labels(routes, placed) == [DSV31, KIMI, QWEN]
    assert placed[0].score == pytest.approx(0.25)
    assert placed[0].reason == "5 of 20 in flight"


def test_least_busy_takes_the_tighter_of_max_in_flight_and_the_learned_limit() -> None:
    routes = [Route(QWEN), Route(DSV31)]
    # QWEN: 2 in flight, max_in_flight 10 but W&B taught a limit of 2: full.
    stats = {QWEN: RouteStats(in_flight=2, limit=2), DSV31: RouteStats(in_flight=3)}
    placed = order("least_busy", routes, stats, limits=[10, 6])
    assert labels(routes, placed) == [DSV31, QWEN]
    assert placed[1].reason == "2 of 2 in flight"


def test_least_busy_without_any_cap_counts_and_ties_keep_the_order() -> None:
    routes = [Route(QWEN), Route(DSV31), Route(KIMI)]
    stats = {QWEN: RouteStats(in_flight=2), DSV31: RouteStats(in_flight=0)}
    placed = order("least_busy", routes, stats)
    # DSV31 and KIMI both have nothing in flight: the given order breaks the tie.
    assert labels(routes, placed) == [DSV31, KIMI, QWEN]


# ---------------------------------------------------------------- latency


def test_latency_puts_the_fastest_recent_route_first() -> None:
    routes = [Route(QWEN), Route(DSV31), Route(KIMI)]
    stats = {
        QWEN: measured(latency_recent=2.0, ttft_recent=0.1),
        DSV31: measured(latency_recent=0.5, ttft_recent=0.9),
        KIMI: measured(latency_recent=1.0, ttft_recent=0.5),
    }
    rng = random.Random(1)
    invoke = [
        labels(routes, order("latency", routes, stats, rng=rng)) for _ in range(50)
    ]
    assert Counter(o[0] for o in invoke).most_common(1)[0][0] == DSV31
    # Streams are ranked by time to first token, invokes by latency.
    placed = order("latency", routes, stats, stream=True, rng=random.Random(2))
    assert labels(routes, placed) == [QWEN, KIMI, DSV31]
    assert placed[0].reason == "recent time to first token 0.100s"
    placed = order("latency", routes, stats, rng=random.Random(2))
    assert labels(routes, placed) == [DSV31, KIMI, QWEN]
    assert placed[0].reason == "recent latency 0.500s"


def test_latency_uses_the_other_figure_when_a_route_has_only_that_one() -> None:
    routes = [Route(QWEN), Route(DSV31)]
    stats = {QWEN: measured(latency_recent=0.3), DSV31: measured(ttft_recent=0.2)}
    placed = order("latency", routes, stats, stream=True, rng=random.Random(2))
    assert labels(routes, placed) == [DSV31, QWEN]
    assert placed[1].reason == "recent latency 0.300s"


def test_latency_measures_routes_with_fewer_than_three_samples_first() -> None:
    routes = [Route(QWEN), Route(DSV31), Route(KIMI)]
    stats = {
        QWEN: measured(latency_recent=0.1),
        DSV31: RouteStats(samples=2, latency_recent=5.0),
        # KIMI: never seen.
    }
    for seed in range(30):  # no exploration while a route is unmeasured
        placed = order("latency", routes, stats, rng=random.Random(seed))
        assert labels(routes, placed) == [DSV31, KIMI, QWEN]
    assert placed[0].reason == "no figures yet: measured first"
    assert placed[0].score is None


def test_latency_explores_a_small_share_of_calls() -> None:
    routes = [Route(QWEN), Route(DSV31), Route(KIMI)]
    stats = {
        QWEN: measured(latency_recent=1.0),
        DSV31: measured(latency_recent=0.2),
        KIMI: measured(latency_recent=3.0),
    }
    rng = random.Random(11)
    draws = 4000
    explored: Counter[str] = Counter()
    for _ in range(draws):
        placed = order("latency", routes, stats, rng=rng)
        assert sorted(p.index for p in placed) == [0, 1, 2]
        first = labels(routes, placed)[0]
        if first != DSV31:
            explored[first] += 1
            assert placed[0].reason.endswith("; exploring")
            # The rest keep their ranking behind the explored route.
            assert labels(routes, placed)[1] == DSV31
        else:
            assert labels(routes, placed) == [DSV31, QWEN, KIMI]
    share = sum(explored.values()) / draws
    assert EXPLORE_SHARE / 2 < share < EXPLORE_SHARE * 2
    assert explored[QWEN] > 0 and explored[KIMI] > 0  # every other route


# ---------------------------------------------------------------- cost


def test_cost_puts_the_cheapest_expected_call_first() -> None:
    routes = [Route(KIMI), Route(DSV31), Route(QWEN)]
    placed = order("cost", routes, input_tokens=2000, max_tokens=100)
    assert labels(routes, placed) == [QWEN, DSV31, KIMI]
    # 2000 x $0.10/M + 100 x $0.10/M.
    assert placed[0].score == pytest.approx(2100 * 0.1 / 1e6)
    assert placed[0].reason.startswith("expected $")


def test_cost_expects_the_output_a_route_has_been_producing() -> None:
    # Without figures, output is max_tokens; KIMI's output price is higher.
    routes = [Route(KIMI), Route(GLM)]
    placed = order("cost", routes, input_tokens=1000, max_tokens=1000)
    assert labels(routes, placed) == [GLM, KIMI]
    assert placed[1].score == pytest.approx((1000 * 0.6 + 1000 * 3.0) / 1e6)
    # KIMI has been answering in 10 tokens: now its expected cost is lower.
    stats = {KIMI: measured(output_tokens=10.0)}
    placed = order("cost", routes, stats, input_tokens=1000, max_tokens=1000)
    assert labels(routes, placed) == [KIMI, GLM]
    assert placed[0].score == pytest.approx((1000 * 0.6 + 10 * 3.0) / 1e6)


def test_cost_counts_cached_input_at_the_cache_read_price() -> None:
    routes = [Route(DSV31), Route(KIMI)]  # DSV31 has no cache-read price
    base = order("cost", routes, input_tokens=10_000, max_tokens=10)
    assert labels(routes, base) == [DSV31, KIMI]
    stats = {KIMI: measured(cached_share=0.9)}
    placed = order("cost", routes, stats, input_tokens=10_000, max_tokens=10)
    assert labels(routes, placed) == [KIMI, DSV31]
    expected = (1000 * 0.6 + 9000 * 0.1 + 10 * 3.0) / 1e6
    assert placed[0].score == pytest.approx(expected)


def test_cost_puts_routes_of_unknown_price_last_in_the_given_order() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    fake = Route(FakeListChatModel(responses=["x"]))
    routes = [Route("acme/unpriced-model"), fake, Route(KIMI)]
    placed = order("cost", routes)
    assert [p.index for p in placed] == [2, 0, 1]
    assert placed[1].reason == "price unknown" and placed[1].score is None


# ---------------------------------------------------------------- hedge delay


def test_hedge_delay_is_the_given_one_or_the_routes_p95() -> None:
    many = RouteStats(samples=_HEDGE_SAMPLES, ttft_p95=0.05, latency_p95=0.8)
    assert hedge_delay(Hedge(delay=0.3), many, stream=True) == 0.3
    assert hedge_delay(Hedge(), None, stream=True) == _HEDGE_DELAY_UNKNOWN
    assert hedge_delay(Hedge(), RouteStats(), stream=False) == _HEDGE_DELAY_UNKNOWN
    assert hedge_delay(Hedge(), many, stream=True) == 0.05
    assert hedge_delay(Hedge(), many, stream=False) == 0.8
    # One figure only: used for both kinds of call.
    assert (
        hedge_delay(Hedge(), RouteStats(samples=50, latency_p95=0.7), stream=True)
        == 0.7
    )


def test_hedge_delay_is_never_more_than_a_few_medians() -> None:
    # A 1-in-20 tail puts p95 inside the tail: hedging there would be too late.
    tail = RouteStats(samples=100, latency_p50=0.05, latency_p95=0.5)
    assert hedge_delay(Hedge(), tail, stream=False) == pytest.approx(0.15)
    tight = RouteStats(samples=100, latency_p50=0.05, latency_p95=0.08)
    assert hedge_delay(Hedge(), tight, stream=False) == 0.08


def test_latency_sends_a_burst_to_measured_routes_while_one_is_measured() -> None:
    measured = RouteStats(samples=10, latency_recent=0.1)
    pending = RouteStats(samples=1, in_flight=2)  # its measurements are out
    unknown = RouteStats()
    routes = [Route("wandb/a/one"), Route("wandb/a/two"), Route("wandb/a/three")]
    figures = {"a/one": pending, "a/two": measured, "a/three": unknown}
    placed = place(
        "latency",
        routes,
        figures,
        stream=False,
        input_tokens=10,
        max_tokens=None,
        limits=[None] * 3,
        rng=random.Random(0),
    )
    assert [p.index for p in placed] == [2, 1, 0]
    assert placed[-1].reason == "being measured"


def test_hedge_delay_has_a_floor_while_samples_are_few() -> None:
    few = RouteStats(samples=3, latency_p95=0.01)
    assert hedge_delay(Hedge(), few, stream=False) == _HEDGE_DELAY_FLOOR
    slow = RouteStats(samples=3, latency_p95=1.5)
    assert hedge_delay(Hedge(), slow, stream=False) == 1.5


# ---------------------------------------------------------------- allowance


def test_allowance_lets_a_cold_router_hedge_once_then_keeps_the_share() -> None:
    allowance = HedgeAllowance(0.1)
    allowance.called()
    assert allowance.take()  # the first slow call may hedge
    assert not allowance.take()
    taken = 1
    for _ in range(_ALLOWANCE_WINDOW * 3):
        allowance.called()
        taken += allowance.take()
    # Over the last window, never more than max_extra of the calls hedged.
    assert sum(allowance._recent) <= 0.1 * _ALLOWANCE_WINDOW
    assert taken >= 0.1 * _ALLOWANCE_WINDOW  # and the share is used


def test_allowance_of_one_lets_every_call_hedge() -> None:
    allowance = HedgeAllowance(1.0)
    for _ in range(50):
        allowance.called()
        assert allowance.take()


# ---------------------------------------------------------------- statistics


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 101)]
    random.Random(0).shuffle(values)
    assert percentile(values, 0.5) in (50.0, 51.0)
    assert percentile(values, 0.95) in (95.0, 96.0)
    assert percentile([3.0], 0.95) == 3.0


def test_window_counts_outcomes_and_measures_only_successes() -> None:
    window = StatsWindow()
    window.observe(Observation("ok", 1.0, None, output_tokens=50, input_tokens=100))
    window.observe(
        Observation(
            "ok", 2.0, 0.4, output_tokens=80, input_tokens=300, cached_tokens=200
        )
    )
    window.observe(Observation("failed", 9.0))
    window.observe(Observation("limited", 0.01))
    window.observe(Observation("other", 0.5, hedge=True))
    window.observe(Observation("ok", 0.3, None, hedge=True, won=True))
    stats = window.stats(in_flight=2, limit=8)
    assert stats.requests == 6
    assert stats.errors == 1 and stats.limited == 1
    assert stats.hedges == 2 and stats.hedges_won == 1
    assert stats.in_flight == 2 and stats.limit == 8
    assert stats.samples == 3  # successes only
    assert stats.ttft_p50 == 0.4 and stats.ttft_recent == 0.4
    assert stats.latency_p50 in (0.3, 1.0) and stats.latency_p95 == 1.0
    assert stats.latency_recent == pytest.approx(1.0 + EWMA_WEIGHT * (0.3 - 1.0))
    assert stats.cached_share == pytest.approx(200 / 400)
    assert stats.output_tokens == pytest.approx(50 + EWMA_WEIGHT * (80 - 50))
    # Speed: output after the first token (after sending, for an invoke).
    assert sorted([50 / 1.0, 80 / 1.6])[0] == stats.tokens_per_second


def test_recent_figures_react_within_a_few_calls() -> None:
    window = StatsWindow()
    for _ in range(50):
        window.observe(Observation("ok", 0.1))
    for _ in range(6):
        window.observe(Observation("ok", 2.0))
    stats = window.stats(0, None)
    assert stats.latency_recent is not None and stats.latency_recent > 1.5
    assert stats.latency_p50 == 0.1  # the percentiles move slower


def test_window_memory_is_bounded() -> None:
    window = StatsWindow()
    for i in range(WINDOW * 5):
        window.observe(Observation("ok", float(i), float(i) / 2, output_tokens=5))
        window.observe(Observation("ok", float(i)))
    assert len(window.ttft) == len(window.latency) == len(window.speed) == WINDOW
    assert len(window.counters) <= 12
    stats = window.stats(0, None)
    assert stats.requests == WINDOW * 10
    assert stats.latency_p50 is not None and stats.latency_p50 >= WINDOW * 4
    assert stats.as_dict()["requests"] == WINDOW * 10
