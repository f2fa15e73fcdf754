"""Waiting for a slot held in Redis costs O(1) commands per call, whatever the crowd.

A process's waiters stand in local queues and are woken by releases (their own
process's directly, other processes' through pub/sub); only the first waiter of
a key looks again by itself. A busy client is backpressure, never an outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from langchain_wandb_router.state._interface import Lease, route_key  # noqa: E402
from langchain_wandb_router.state._redis import RedisState  # noqa: E402
from langchain_wandb_router.testing import WandbEmulator  # noqa: E402
from tests import redis_server  # noqa: E402

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url  # the session's 3-master cluster

WORKER = Path(__file__).with_name("router_fleet_worker.py")
ROOT = Path(__file__).parents[2]
LOGGER = "langchain_wandb_router"


@pytest.fixture(params=["redis_url", "redis_cluster_url"])
def url(request: pytest.FixtureRequest) -> str:
    found: str = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def key() -> str:
    return route_key("https://example.test/v1", f"t/{time.monotonic_ns()}", "m")


@pytest.fixture
def state(url: str) -> Iterator[RedisState]:
    made = RedisState.from_url(url, on_error="open")
    yield made
    made.close()


def _scripts_run(url: str) -> int:
    """EVALSHA calls the single server has answered."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_a_release_among_500_waiters_wakes_one(redis_url: str, key: str) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    held = await state.atry_acquire(key, 1)
    assert held is not None
    deadline = time.monotonic() + 60
    waiters = [asyncio.ensure_future(state.aacquire(key, 1, deadline)) for _ in range(500)]
    while state.waiting([key]) < 500:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # every waiter has looked once and is waiting
    before = _scripts_run(redis_url)
    await state.arelease(held, "ok")
    while not any(w.done() for w in waiters):
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    # The release, then one waiter's look (a second at most, if the first
    # waiter's own safety look fell in between): not five hundred.
    assert _scripts_run(redis_url) - before <= 3
    assert sum(w.done() for w in waiters) == 1
    for w in waiters:
        w.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    for got in results:
        if isinstance(got, Lease):
            await state.arelease(got, "ok")
    assert state.waiting([key]) == 0
    state.close()


async def test_a_thousand_waiters_are_backpressure_not_an_outage(
    state: RedisState, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    deadline = time.monotonic() + 120

    async def call() -> None:
        lease = await state.aacquire(key, 4, deadline)
        assert isinstance(lease, Lease) and lease.owner is state  # never the fallback
        await asyncio.sleep(0.001)
        await state.arelease(lease, "ok")

    await asyncio.gather(*(call() for _ in range(1000)))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert state._fallback is None
    assert await state.ain_flight(key) == 0


def test_sync_waiters_are_woken_by_releases(state: RedisState, key: str) -> None:
    import threading

    got: list[Lease] = []
    deadline = time.monotonic() + 60

    def call() -> None:
        lease = state.acquire(key, 2, deadline)
        got.append(lease)
        time.sleep(0.002)
        state.release(lease, "ok")

    threads = [threading.Thread(target=call) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(got) == 40 and state.in_flight(key) == 0


def test_four_processes_with_hundreds_of_waiters_hold_one_cap(url: str) -> None:
    with WandbEmulator() as emu:
        emu.set_service_time(0.005)
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "crowd", url, emu.base_url, emu.api_key, "3", "200"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for _ in range(4)
        ]
        results: list[dict[str, Any]] = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        assert [r["answered"] for r in results] == [200] * 4
        assert [r["warnings"] for r in results] == [[]] * 4
        assert emu.peak_in_flight <= 3


def test_a_pool_exhausted_for_too_long_ends_the_wait(
    redis_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Busy is backpressure, but no wait is endless: past the bound, the call
    is answered as in an outage (here fail-closed: a typed error)."""
    from redis.exceptions import MaxConnectionsError

    from langchain_wandb_router.errors import StateUnavailableError
    from langchain_wandb_router.state import _runner

    state = RedisState.from_url(redis_url, on_error="closed")
    monkeypatch.setattr(_runner, "_MAX_BUSY", 0.2)

    def busy(call: Any) -> Any:
        raise MaxConnectionsError("Too many connections")

    monkeypatch.setattr(state._clients, "run", busy)
    started = time.monotonic()
    with pytest.raises(StateUnavailableError):
        state.try_acquire(key, 1)
    assert time.monotonic() - started < 5.0
    state.close()


def test_the_heartbeat_renews_a_routes_leases_in_one_call(redis_url: str, key: str) -> None:
    from langchain_wandb_router.state import ConcurrencySettings

    state = RedisState.from_url(
        redis_url, on_error="closed", concurrency=ConcurrencySettings(lease_ttl_seconds=0.3)
    )
    leases = [state.try_acquire(key, 5) for _ in range(4)]
    assert all(isinstance(lease, Lease) for lease in leases)
    held = [lease for lease in leases if lease is not None]
    state.release(held[3], "ok")  # gone: its renewal says so
    state.renew_many(held[:1])  # the script is known to the server from here on
    before = _scripts_run(redis_url)
    assert state.renew_many(held) == [True, True, True, False]
    assert _scripts_run(redis_url) - before == 1  # four leases, one round trip
    time.sleep(0.4)  # past the TTL: renewed ones expire too
    assert state.renew_many(held[:2]) == [False, False]
    state.close()
