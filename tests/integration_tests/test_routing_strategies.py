"""WandbRouter's strategies and dry runs against the emulator.

Each strategy orders the candidates and leaves every other route a fallback;
capability filtering, health and limits apply as for ``"ordered"``.
Randomness is the runtime's seeded ``rng``; shares are asserted over many
calls with wide bounds. ``router.plan()`` is checked to send, hold, reserve
and record nothing.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.tools import tool

from langchain_wandb_router import Route, WandbRouter
from langchain_wandb_router.catalog._models import ModelInfo, Pricing, register_model
from langchain_wandb_router.state._interface import HealthSettings
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.testing import Latency, WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"  # $0.10 in, $0.10 out
DSV31 = "deepseek-ai/DeepSeek-V3.1"  # $0.55 in, $1.65 out, no cache price
KIMI = "moonshotai/Kimi-K2.5"  # $0.60 in, $3.00 out, $0.10 cache read
NO_TOOLS = "acme/cheap-no-tools-1"  # registered below: cheapest, cannot call tools

Factory = Callable[..., WandbRouter]


@pytest.fixture(autouse=True)
def _no_tools_model(emulator: WandbEmulator) -> None:
    register_model(
        ModelInfo(
            id=NO_TOOLS,
            tool_calling=False,
            context_window=100_000,
            pricing=Pricing(input=0.01, output=0.01),
        )
    )
    emulator.add_model(NO_TOOLS)


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


def served(emulator: WandbEmulator) -> list[str]:
    return [r.model or "" for r in emulator.chat_requests()]


def seeded(router: WandbRouter, seed: int) -> WandbRouter:
    router._rt().rng = random.Random(seed)
    return router


def key(router: WandbRouter, model: str) -> str:
    return router._rt().key_for(Route(model))


def first_choices(router: WandbRouter, n: int, **kwargs: Any) -> Counter[str]:
    return Counter(
        router.plan("hi", **kwargs)["candidates"][0]["model"] for _ in range(n)
    )


# ------------------------------------------------------------ ordered


def test_ordered_is_the_default_and_keeps_the_given_order(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory([KIMI, QWEN, DSV31])
    assert router.strategy == "ordered"
    plan = router.plan("hi")
    assert [c["model"] for c in plan["candidates"]] == [KIMI, QWEN, DSV31]
    assert [c["reason"] for c in plan["candidates"]] == [
        "first choice",
        "fallback",
        "fallback",
    ]
    for _ in range(3):
        router.invoke("hi")
    assert served(emulator) == [KIMI] * 3


def test_an_unknown_strategy_is_refused(router_factory: Factory) -> None:
    with pytest.raises(ValueError, match="strategy"):
        router_factory([QWEN, DSV31], strategy="fastest")


# ------------------------------------------------------------ weighted


def test_weighted_sends_each_route_its_share_of_first_choices(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = seeded(
        router_factory(
            [Route(QWEN, weight=3), Route(DSV31, weight=1)], strategy="weighted"
        ),
        5,
    )
    calls = 120
    for _ in range(calls):
        router.invoke("hi")
    counts = Counter(served(emulator))
    assert counts[QWEN] + counts[DSV31] == calls  # one request per call
    assert 0.6 < counts[QWEN] / calls < 0.9  # 3 / (3 + 1) expected
    plan = router.plan("hi")
    assert {c["model"] for c in plan["candidates"]} == {QWEN, DSV31}
    assert any(c["reason"].startswith("weighted: weight 3") for c in plan["candidates"])


def test_weighted_falls_back_to_the_other_route(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.outage(QWEN, seconds=None)
    router = seeded(
        router_factory(
            [Route(QWEN, weight=1000), Route(DSV31, weight=1)],
            strategy="weighted",
            max_retries=0,
        ),
        1,
    )
    message = router.invoke("hi")
    routing = message.response_metadata["routing"]
    assert routing["model"] == DSV31
    assert [a["model"] for a in routing["attempts"]] == [QWEN, DSV31]
    assert "fallback" in routing["reason"]


# ------------------------------------------------------------ least busy


async def test_least_busy_prefers_the_route_with_the_most_room(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    caps = {QWEN: 4, DSV31: 8}
    router = router_factory([QWEN, DSV31], strategy="least_busy", max_in_flight=caps)
    state = router._rt().state
    held = [state.try_acquire(key(router, QWEN), 4) for _ in range(2)]  # 2 of 4
    held += [state.try_acquire(key(router, DSV31), 8) for _ in range(3)]  # 3 of 8
    try:
        plan = router.plan("hi")
        assert [c["model"] for c in plan["candidates"]] == [DSV31, QWEN]
        assert plan["candidates"][0]["reason"] == "least_busy: 3 of 8 in flight"
        assert plan["candidates"][1]["score"] == pytest.approx(0.5)
        await router.ainvoke("hi")
        assert served(emulator) == [DSV31]
        held.append(state.try_acquire(key(router, DSV31), 8))  # now 4 of 8
        held.append(state.try_acquire(key(router, DSV31), 8))  # 5 of 8: busier
        await router.ainvoke("hi")
        assert served(emulator) == [DSV31, QWEN]
    finally:
        for lease in held:
            assert lease is not None
            state.release(lease, "ok")


# ------------------------------------------------------------ latency


def test_latency_measures_each_route_then_prefers_the_fastest(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.set_latency(Latency(ttft=0.12), model=QWEN)
    emulator.set_latency(Latency(ttft=0.01), model=DSV31)
    router = seeded(router_factory([QWEN, DSV31], strategy="latency"), 2)

    for _ in range(6):
        router.invoke("hi")
    # Routes with fewer than 3 samples go first, in the given order.
    assert served(emulator) == [QWEN] * 3 + [DSV31] * 3
    plan = router.plan("hi")
    assert [c["model"] for c in plan["candidates"]] == [DSV31, QWEN]
    assert plan["candidates"][0]["reason"].startswith("latency: recent latency")
    assert plan["candidates"][0]["score"] < plan["candidates"][1]["score"]

    for _ in range(20):
        router.invoke("hi")
    counts = Counter(served(emulator)[6:])
    assert counts[DSV31] >= 15  # the fastest, with the odd exploration


async def test_latency_ranks_streams_by_time_to_first_token(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    # QWEN starts fast but streams slowly; DSV31 starts slowly.
    emulator.set_latency(Latency(ttft=0.01, per_token=0.01), model=QWEN)
    emulator.set_latency(Latency(ttft=0.08), model=DSV31)
    router = seeded(router_factory([DSV31, QWEN], strategy="latency"), 4)
    for _ in range(6):
        async for _chunk in router.astream("hi"):
            pass
    stats = router.stats()
    assert stats[QWEN]["ttft_p50"] < stats[DSV31]["ttft_p50"]
    plan = await router.aplan("hi", stream=True)
    assert plan["candidates"][0]["model"] == QWEN
    assert "time to first token" in plan["candidates"][0]["reason"]


def test_latency_explores_the_other_routes_now_and_then(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.set_latency(Latency(ttft=0.05), model=QWEN)
    router = seeded(router_factory([QWEN, DSV31, KIMI], strategy="latency"), 9)
    for _ in range(9):  # three samples each
        router.invoke("hi")
    assert Counter(served(emulator)) == {QWEN: 3, DSV31: 3, KIMI: 3}
    firsts = first_choices(router, 1000)
    fastest = max(firsts, key=lambda m: firsts[m])
    assert fastest != QWEN
    explored = 1000 - firsts[fastest]
    assert 15 < explored < 100  # EXPLORE_SHARE is 5%
    assert firsts[QWEN] > 0  # even the slowest route is tried now and then


# ------------------------------------------------------------ cost


def test_cost_prefers_the_cheapest_expected_call(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory([KIMI, DSV31, QWEN], strategy="cost")
    plan = router.plan("hi")
    assert [c["model"] for c in plan["candidates"]] == [QWEN, DSV31, KIMI]
    scores = [c["score"] for c in plan["candidates"]]
    assert scores == sorted(scores) and scores[0] > 0
    assert plan["candidates"][0]["reason"].startswith("cost: expected $")
    router.invoke("hi")
    assert served(emulator) == [QWEN]


def test_cost_counts_what_a_route_caches_at_the_cache_read_price(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    prompt = "word " * 3000
    router = router_factory([DSV31, KIMI], strategy="cost")
    assert [c["model"] for c in router.plan(prompt)["candidates"]] == [DSV31, KIMI]
    emulator.cached_tokens = 10**6  # W&B's prefix cache serves the whole prompt
    for _ in range(3):
        router.invoke(prompt, model=KIMI)
        router.invoke(prompt, model=DSV31)
    assert router.stats()[KIMI]["cached_share"] > 0.9
    # KIMI's cached input is cheap; DSV31 has no cache-read price.
    plan = router.plan(prompt)
    assert [c["model"] for c in plan["candidates"]] == [KIMI, DSV31]
    router.invoke(prompt)
    assert served(emulator)[-1] == KIMI


def test_capability_filtering_still_applies_under_a_strategy(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory([KIMI, NO_TOOLS, QWEN], strategy="cost")
    assert router.plan("hi")["candidates"][0]["model"] == NO_TOOLS
    plan = router.plan("hi", tools=[get_weather.tool_call_schema])
    assert [c["model"] for c in plan["candidates"]] == [QWEN, KIMI]
    assert NO_TOOLS in plan["excluded"]
    router.bind_tools([get_weather]).invoke("weather in Paris?")
    assert served(emulator) == [QWEN]


def test_a_cooling_route_goes_last_whatever_the_strategy(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    state = InProcessState(health=HealthSettings(failures=1, cooldown_seconds=600))
    emulator.fault(status=503, times=1, model=QWEN)
    router = router_factory([KIMI, QWEN], strategy="cost", max_retries=0, state=state)
    router.invoke("hi")  # QWEN (cheapest) fails and cools; KIMI answers
    plan = router.plan("hi")
    assert [c["model"] for c in plan["candidates"]] == [KIMI, QWEN]
    assert "cooling down" in plan["excluded"][QWEN]
    assert "cooling down" in plan["candidates"][1]["reason"]
    emulator.reset()
    router.invoke("hi")
    assert served(emulator) == [KIMI]


# ------------------------------------------------------------ dry runs


def _footprint(router: WandbRouter, emulator: WandbEmulator) -> Any:
    state = router._rt().state
    return (
        len(emulator.chat_requests()),
        [state.in_flight(key(router, m)) for m in (QWEN, DSV31, KIMI)],
        state.spent(router._budget_scope()),
        router.stats(),
    )


@pytest.mark.parametrize(
    "strategy", ["ordered", "weighted", "least_busy", "latency", "cost"]
)
async def test_plan_has_no_side_effects(
    emulator: WandbEmulator, router_factory: Factory, strategy: str
) -> None:
    budget = 0.01
    router = router_factory(
        [KIMI, DSV31, QWEN],
        strategy=strategy,
        budget_usd=budget,
        budget_scope=f"plan-{uuid.uuid4().hex}",
        max_in_flight=1,
    )
    router.invoke("hi")  # some figures to read
    before = _footprint(router, emulator)
    for _ in range(5):
        plan = router.plan("hi")
        assert len(plan["candidates"]) == 3
        plan = await router.aplan("hi", stream=True)
        assert {"model", "score", "reason"} <= set(plan["candidates"][0])
    assert _footprint(router, emulator) == before
    # Nothing reserved: the whole budget still admits a call needing all of it.
    state = router._rt().state
    reservation = state.reserve(
        router._budget_scope(), int(budget * 1e6) - before[2], int(budget * 1e6)
    )
    assert reservation is not None


def test_plan_reports_what_is_excluded_and_why(router_factory: Factory) -> None:
    router = router_factory([NO_TOOLS, QWEN], strategy="cost")
    plan = router.plan("hi", tools=[get_weather.tool_call_schema])
    assert [c["model"] for c in plan["candidates"]] == [QWEN]
    assert "tool" in plan["excluded"][NO_TOOLS]
    only = router_factory([NO_TOOLS])
    plan = only.plan("hi", tools=[get_weather.tool_call_schema])
    assert plan == {
        "candidates": [],
        "excluded": {NO_TOOLS: plan["excluded"][NO_TOOLS]},
    }
