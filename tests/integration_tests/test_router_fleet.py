"""A fleet of worker processes sharing one router state through a real Redis."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_router import WandbRouter
from langchain_wandb_router._state import StateUnavailableError
from langchain_wandb_router.testing import WandbEmulator
from tests import redis_server

redis_url = redis_server.redis_url  # the session's redis-server

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
WORKER = Path(__file__).with_name("router_fleet_worker.py")
ROOT = Path(__file__).parents[2]


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _workers(mode: str, url: str, emu: WandbEmulator, count: int) -> list[dict[str, Any]]:
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


def test_three_processes_never_exceed_a_shared_max_in_flight(redis_url: str) -> None:
    _flush(redis_url)
    with WandbEmulator(service_time=0.05) as emu:
        results = _workers("slots", redis_url, emu, 3)
        stats = emu.stats()
    assert [len(r["answers"]) for r in results] == [12, 12, 12]
    assert stats.peak_in_flight_by_model[QWEN] <= 3
    assert stats.rejected == 0


def test_a_cooldown_made_in_one_process_is_honoured_by_a_new_one(redis_url: str) -> None:
    _flush(redis_url)
    with WandbEmulator() as emu:
        emu.fault(status=500, times=1, model=QWEN)
        (first,) = _workers("cool", redis_url, emu, 1)
        assert first["served"] == DSV31  # QWEN failed, and now cools, in Redis
        emu.reset()
        (second,) = _workers("cool", redis_url, emu, 1)
        assert second["served"] == DSV31  # a new process asks the healthy model first
        assert "cooling down" in second["excluded"][QWEN]
        assert [r.model for r in emu.chat_requests()] == [DSV31]


def test_three_processes_share_one_budget(redis_url: str) -> None:
    _flush(redis_url)
    budget = 0.002
    with WandbEmulator() as emu:
        results = _workers("budget", redis_url, emu, 3)
    costs = [c for r in results for c in r["costs"]]
    assert len(costs) > 3  # the budget was shared, not tripled or refused early
    # Each process may pass the budget by at most its own call in flight.
    assert sum(costs) <= budget + 3 * max(costs)
    assert sum(costs) >= budget
    assert results[0]["spent"] == pytest.approx(sum(costs), rel=0.01)


def _dead_redis_url() -> str:
    return f"redis://127.0.0.1:{redis_server.free_port()}/0"


def test_redis_down_fails_open_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_wandb_router")
    with WandbEmulator() as emu:
        router = WandbRouter(models=QWEN, api_key=emu.api_key, base_url=emu.base_url, state=_dead_redis_url())
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
