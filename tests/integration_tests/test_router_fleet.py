"""A fleet of worker processes sharing one router state through a real Redis."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.state._interface import StateUnavailableError
from langchain_wandb_router.testing import WandbEmulator
from tests import redis_server

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url  # the session's 3-master cluster

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
WORKER = Path(__file__).with_name("router_fleet_worker.py")
ROOT = Path(__file__).parents[2]


@pytest.fixture(params=["redis_url", "redis_cluster_url"])
def fleet_url(request: pytest.FixtureRequest) -> str:
    """The fleet tests run on a single server and on a 3-master cluster."""
    url: str = request.getfixturevalue(request.param)
    return url


def _flush(url: str) -> None:
    import redis
    from redis.cluster import RedisCluster

    if url.startswith("redis+cluster://"):
        cluster = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
        cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
        cluster.close()
        return
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _start(
    mode: str, url: str, emu: WandbEmulator, *extra: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, url, emu.base_url, emu.api_key, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _workers(
    mode: str, url: str, emu: WandbEmulator, count: int
) -> list[dict[str, Any]]:
    """Run ``count`` workers at once; each prints one JSON line."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, emu.base_url, emu.api_key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_three_processes_never_exceed_a_shared_max_in_flight(fleet_url: str) -> None:
    _flush(fleet_url)
    with WandbEmulator(service_time=0.05) as emu:
        results = _workers("slots", fleet_url, emu, 3)
        stats = emu.stats()
    assert [len(r["answers"]) for r in results] == [12, 12, 12]
    assert stats.peak_in_flight_by_model[QWEN] <= 3
    assert stats.rejected == 0


def test_a_cooldown_made_in_one_process_is_honoured_by_a_new_one(
    fleet_url: str,
) -> None:
    _flush(fleet_url)
    with WandbEmulator() as emu:
        emu.fault(status=500, times=1, model=QWEN)
        (first,) = _workers("cool", fleet_url, emu, 1)
        assert first["served"] == DSV31  # QWEN failed, and now cools, in Redis
        emu.reset()
        (second,) = _workers("cool", fleet_url, emu, 1)
        assert second["served"] == DSV31  # a new process asks the healthy model first
        assert "cooling down" in second["excluded"][QWEN]
        assert [r.model for r in emu.chat_requests()] == [DSV31]


def test_three_processes_share_one_budget(fleet_url: str) -> None:
    _flush(fleet_url)
    budget = 0.002
    with WandbEmulator() as emu:
        results = _workers("budget", fleet_url, emu, 3)
    costs = [c for r in results for c in r["costs"]]
    assert len(costs) > 3  # the budget was shared, not tripled or refused early
    # Each process may pass the budget by at most its own call in flight.
    assert sum(costs) <= budget + 3 * max(costs)
    assert sum(costs) >= budget
    assert results[0]["spent"] == pytest.approx(sum(costs), rel=0.01)


def _dead_redis_url() -> str:
    return f"redis://127.0.0.1:{redis_server.free_port()}/0"


def test_redis_down_fails_open_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_wandb_router")
    with WandbEmulator() as emu:
        router = WandbRouter(
            models=QWEN,
            api_key=emu.api_key,
            base_url=emu.base_url,
            state=_dead_redis_url(),
        )
        for _ in range(3):
            assert router.invoke("hi").text
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "redis" in warnings[0].getMessage().lower()


def test_redis_down_fails_closed_when_asked() -> None:
    with WandbEmulator() as emu:
        router = WandbRouter(
            models=QWEN,
            api_key=emu.api_key,
            base_url=emu.base_url,
            state=_dead_redis_url(),
            state_on_error="closed",
        )
        with pytest.raises(StateUnavailableError):
            router.invoke("hi")
        assert emu.chat_requests() == []


def test_three_processes_through_a_redis_crash_and_restart(
    tmp_path: Path, report: list[str]
) -> None:
    """The bounds the README gives for an outage and a restart, measured.

    Three workers (N = 3), each with max_in_flight = 3 (the cap) and one budget
    B, send 60 calls each while Redis is killed and restarted empty (no
    persistence): during the outage each process runs on its own state, seeded
    with its leases and a third of what was left; after the restart the spend
    is rebuilt from what the processes had seen.
    """
    import redis

    n, cap, budget = 3, 3, 0.008
    with (
        redis_server.RedisServer(tmp_path) as server,
        WandbEmulator(service_time=0.1) as emu,
    ):
        procs = [_start("outage", server.url, emu, str(budget), "60") for _ in range(n)]
        admin = redis.Redis.from_url(server.url)

        def spent_now() -> int:
            return sum(int(admin.get(k) or 0) for k in admin.scan_iter("*:spent"))

        deadline = time.monotonic() + 60
        while spent_now() < budget * 1e6 / 4:  # a quarter spent: crash now
            assert time.monotonic() < deadline, "the workers never spent"
            time.sleep(0.02)
        before_crash = spent_now()
        server.kill()
        time.sleep(1.0)
        server.start()  # empty: nothing was saved
        results = _results(procs)
        stats = emu.stats()
        admin = redis.Redis.from_url(server.url)
        after = spent_now()
        admin.close()
    costs = [c for r in results for c in r["costs"]]
    total = sum(costs)
    biggest = max(costs)
    peak = stats.peak_in_flight_by_model["meta-llama/Llama-3.3-70B-Instruct"]
    report.append(
        f"redis crash under 3 workers: peak in flight {peak} (bound {n * cap}), "
        f"spent {total * 1e6:.0f} of {budget * 1e6:.0f} micro-USD "
        f"(bound {(budget + n * cap * biggest) * 1e6:.0f}), Redis before crash "
        f"{before_crash}, after {after}"
    )
    assert peak <= n * cap  # each process keeps its own cap during the outage
    # The budget may be passed by the calls in flight when Redis lost its
    # record (at most N x cap, each at most one call's cost).
    assert total <= budget + n * cap * biggest
    assert after >= before_crash  # spend was rebuilt, not restarted from zero
    assert after == pytest.approx(total * 1e6, rel=0.01)  # and outage spend replayed
