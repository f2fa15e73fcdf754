"""Live route statistics: the state's contract on both backends, ``router.stats()``,
and a fleet of processes sharing one set of figures through Redis.

The contract tests feed the same observations to InProcessState, RedisState on
a single server and on a 3-master Cluster (``on_error="closed"``, so a Redis
problem fails the test) and expect the same figures from each.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

from langchain_wandb_router import Route, WandbRouter  # noqa: E402
from langchain_wandb_router.state._interface import RouterState, route_key  # noqa: E402
from langchain_wandb_router.state._lua_stats import (  # noqa: E402
    STATS_TTL_SECONDS,
    stats_keys,
)
from langchain_wandb_router.state._redis import RedisState  # noqa: E402
from langchain_wandb_router.state._stats import (  # noqa: E402
    WINDOW,
    Observation,
    RouteStats,
    StatsWindow,
)
from langchain_wandb_router.testing import Latency, WandbEmulator  # noqa: E402
from tests import redis_server  # noqa: E402
from tests.integration_tests import test_redis_state, test_router_fleet  # noqa: E402
from tests.integration_tests.test_emulator_latency import await_until  # noqa: E402

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url  # the session's 3-master cluster
# In-process, Redis and Redis Cluster states; a single server and a cluster.
make_state = test_redis_state.make_state
fleet_url = test_router_fleet.fleet_url

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
WORKER = Path(__file__).with_name("route_stats_worker.py")
ROOT = Path(__file__).parents[2]
BASE = "https://api.inference.wandb.ai/v1"
FIELDS = {
    "requests",
    "in_flight",
    "ttft_p50",
    "ttft_p95",
    "latency_p50",
    "latency_p95",
    "errors",
    "hedges",
    "hedges_won",
    "limited",
    "tokens_per_second",
    "cached_share",
}

Factory = Callable[..., RouterState]


def fresh_key(model: str = "a", project: str | None = None) -> str:
    return route_key(BASE, project or f"team/{uuid.uuid4().hex[:12]}", model)


def observations(seed: int, count: int) -> list[Observation]:
    """A mix of outcomes, streams and invokes, hedges and usage."""
    rng = random.Random(seed)
    seen = []
    for _ in range(count):
        outcome = rng.choice(["ok", "ok", "ok", "failed", "limited", "other"])
        stream = rng.random() < 0.5
        seconds = round(rng.uniform(0.05, 3.0), 6)
        hedge = rng.random() < 0.2
        seen.append(
            Observation(
                outcome,  # type: ignore[arg-type]
                seconds,
                round(seconds * rng.random(), 6) if stream else None,
                output_tokens=rng.randrange(0, 400),
                input_tokens=rng.randrange(1, 2000),
                cached_tokens=rng.randrange(0, 500),
                hedge=hedge,
                won=hedge and rng.random() < 0.5,
            )
        )
    return seen


def same(a: RouteStats, b: RouteStats) -> None:
    left, right = a.as_dict(), b.as_dict()
    assert left.keys() == right.keys()
    for name, value in left.items():
        if isinstance(value, float):
            assert right[name] == pytest.approx(value, rel=1e-9), name
        else:
            assert right[name] == value, name


# ------------------------------------------------------------ the contract


def test_a_state_keeps_the_figures_a_window_would(make_state: Factory) -> None:
    state = make_state()
    key, other = fresh_key("a"), fresh_key("b")
    window = StatsWindow()
    for seen in observations(7, 60):
        state.observe(key, seen)
        window.observe(seen)
    figures = state.stats([key, other])
    same(window.stats(in_flight=0, limit=None), figures[key])
    assert figures[key].requests == 60
    # A route never seen: zeros, not missing.
    assert figures[other] == RouteStats()


async def test_async_twins_keep_the_same_figures(make_state: Factory) -> None:
    state = make_state()
    key = fresh_key()
    window = StatsWindow()
    for seen in observations(8, 30):
        await state.aobserve(key, seen)
        window.observe(seen)
    figures = await state.astats([key])
    same(window.stats(0, None), figures[key])
    assert (await state.astats([key]))[key] == state.stats([key])[key]


def test_figures_include_slots_in_flight_and_the_learned_limit(
    make_state: Factory,
) -> None:
    state = make_state()
    key = fresh_key()
    leases = [state.try_acquire(key, 5) for _ in range(3)]
    assert all(leases)
    assert state.stats([key])[key].in_flight == 3
    for lease in leases:
        assert lease is not None
        state.release(lease, "ok")
    assert state.stats([key])[key].in_flight == 0


def test_routes_of_several_projects_are_read_together(make_state: Factory) -> None:
    # On a Cluster, each project's keys live in their own slot.
    state = make_state()
    keys = [fresh_key("m", f"team/p{i}-{uuid.uuid4().hex[:8]}") for i in range(4)]
    for n, key in enumerate(keys):
        for _ in range(n + 1):
            state.observe(key, Observation("ok", 0.1 * (n + 1)))
    figures = state.stats(keys)
    assert [figures[k].requests for k in keys] == [1, 2, 3, 4]
    assert [figures[k].latency_p50 for k in keys] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_figures_in_redis_stay_bounded_and_expire(redis_url: str) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    admin = redis.Redis.from_url(redis_url)
    try:
        key = fresh_key()
        for i in range(WINDOW * 3):
            state.observe(key, Observation("ok", 0.5, 0.1, output_tokens=10))
            state.observe(key, Observation("ok", float(i)))
        stats_hash, ttft, latency, speed = stats_keys(key)[:4]
        assert admin.llen(ttft) == admin.llen(latency) == admin.llen(speed) == WINDOW
        assert admin.hlen(stats_hash) <= 12
        for name in (stats_hash, ttft, latency, speed):
            assert 0 < admin.pttl(name) <= STATS_TTL_SECONDS * 1000
        figures = state.stats([key])[key]
        assert figures.requests == WINDOW * 6
        # The newest WINDOW latencies only.
        assert figures.latency_p50 is not None and figures.latency_p50 >= WINDOW * 2
    finally:
        admin.close()
        state.close()


# ------------------------------------------------------------ router.stats()


async def test_router_stats_are_keyed_by_model_and_count_calls(
    emulator: WandbEmulator, router_factory: Callable[..., WandbRouter]
) -> None:
    emulator.set_latency(Latency(ttft=0.02, per_token=0.001))
    emulator.fault(status=503, times=1, model=QWEN)
    router = router_factory([QWEN, DSV31], max_retries=0)
    await router.ainvoke("hi")  # QWEN fails, DSV31 answers
    await router.ainvoke("hi")
    async for _chunk in router.astream("hi"):
        pass

    stats = router.stats()
    assert set(stats) == {QWEN, DSV31}
    for figures in stats.values():
        assert set(figures) >= FIELDS
    assert stats[QWEN]["requests"] == 3 and stats[QWEN]["errors"] == 1
    assert stats[DSV31]["requests"] == 1 and stats[DSV31]["errors"] == 0
    assert stats[QWEN]["latency_p50"] is not None
    assert stats[QWEN]["ttft_p50"] is not None  # the stream
    assert stats[QWEN]["ttft_p50"] <= stats[QWEN]["ttft_p95"]
    assert stats[QWEN]["tokens_per_second"] > 0
    assert stats[QWEN]["in_flight"] == 0


async def test_router_stats_show_calls_in_flight(
    emulator: WandbEmulator, router_factory: Callable[..., WandbRouter]
) -> None:
    emulator.set_latency(Latency(ttft=30.0), model=QWEN)
    router = router_factory([QWEN])
    calls = [asyncio.ensure_future(router.ainvoke(f"hi {i}")) for i in range(3)]
    try:
        await await_until(lambda: emulator.stats().in_flight == 3, "3 calls sent")
        assert router.stats()[QWEN]["in_flight"] == 3
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    assert router.stats()[QWEN]["in_flight"] == 0


def test_router_stats_count_concurrency_429s_as_limited(
    emulator: WandbEmulator, router_factory: Callable[..., WandbRouter]
) -> None:
    emulator.fault(
        status=429,
        body={"error": {"message": "Concurrency limit reached for requests"}},
        times=1,
        model=QWEN,
    )
    router = router_factory([QWEN, DSV31])
    router.invoke("hi")
    stats = router.stats()
    assert stats[QWEN]["limited"] == 1 and stats[QWEN]["errors"] == 0


# ------------------------------------------------------------ a fleet


def test_a_fleet_shares_its_figures_through_redis(
    emulator: WandbEmulator, fleet_url: str
) -> None:
    emulator.set_latency(Latency(ttft=0.01), model=QWEN)
    emulator.set_latency(Latency(ttft=0.06), model=DSV31)
    project = f"team/stats-{uuid.uuid4().hex[:10]}"
    calls = 3
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                fleet_url,
                emulator.base_url,
                emulator.api_key,
                project,
                str(calls),
                *models,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for models in ([QWEN], [DSV31, QWEN])
    ]
    seen = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        seen.append(json.loads(out.strip().splitlines()[-1]))

    reader = WandbRouter(
        models=[DSV31, QWEN],
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        project=project,
        state=fleet_url,
        state_on_error="closed",
        strategy="latency",
    )
    reader._rt().rng = random.Random(0)
    stats = reader.stats()
    # Each worker ran calls invokes and calls streams per model.
    assert stats[QWEN]["requests"] == 4 * calls
    assert stats[DSV31]["requests"] == 2 * calls
    assert stats[QWEN]["samples"] == 4 * calls
    assert stats[QWEN]["ttft_p50"] is not None
    assert stats[QWEN]["latency_p50"] is not None
    # The last worker to finish saw everything the reader sees.
    assert max(s[QWEN]["requests"] for s in seen) == stats[QWEN]["requests"]
    # The reader, which never called anything, plans from the fleet's figures.
    plan = reader.plan("hi")
    scores = {c["model"]: c["score"] for c in plan["candidates"]}
    assert scores[QWEN] is not None and scores[DSV31] is not None
    assert scores[QWEN] < scores[DSV31]
    assert reader.stats()[QWEN]["requests"] == 4 * calls  # plan recorded nothing
    assert emulator.stats().responses_by_model[QWEN][200] == 4 * calls


def test_route_keys_of_a_router_match_the_stats_it_reads(
    router_factory: Callable[..., WandbRouter],
) -> None:
    router = router_factory([QWEN, DSV31])
    runtime = router._rt()
    runtime.state.observe(runtime.key_for(Route(QWEN)), Observation("ok", 0.2))
    assert router.stats()[QWEN]["requests"] == 1
    assert router.stats()[DSV31]["requests"] == 0
