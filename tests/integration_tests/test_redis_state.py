"""RouterState contract on both implementations, and RedisState against a real server.

The contract tests run on InProcessState and on RedisState (``on_error="closed"``
there, so a Redis problem fails the test instead of hiding behind the
fallback). Time-based behaviour uses short TTLs and waits until the state
changes, never asserting how long something took.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from langchain_wandb_router.errors import WandbConnectionError  # noqa: E402
from langchain_wandb_router.state._factory import check_state, state_from  # noqa: E402
from langchain_wandb_router.state._interface import (  # noqa: E402
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    Lease,
    Reservation,
    RouterState,
    SlotTimeoutError,
    StateUnavailableError,
    budget_key,
    route_key,
)
from langchain_wandb_router.state._memory import InProcessState  # noqa: E402
from langchain_wandb_router.state._redis import (  # noqa: E402
    CLIENT_NAME,
    RedisState,
    redact_url,
)
from tests import redis_server  # noqa: E402

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url  # the session's 3-master cluster

WORKER = Path(__file__).with_name("redis_state_worker.py")
LOGGER = "langchain_wandb_router"

Factory = Callable[..., RouterState]


class Keys:
    """Fresh keys per test, so tests sharing the server never collide."""

    def __init__(self) -> None:
        self.project = f"team/{uuid.uuid4().hex[:12]}"
        self.key = route_key("https://api.inference.wandb.ai/v1", self.project, "a")
        self.other = route_key("https://api.inference.wandb.ai/v1", self.project, "b")
        self.scope = budget_key(self.project)


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture(params=["in-process", "redis", "redis-cluster"])
def make_state(request: pytest.FixtureRequest) -> Iterator[Factory]:
    made: list[RouterState] = []

    def factory(**settings: Any) -> RouterState:
        if request.param == "in-process":
            state: RouterState = InProcessState(**settings)
        else:
            url = request.getfixturevalue(request.param.replace("-", "_") + "_url")
            state = RedisState.from_url(url, on_error="closed", **settings)
        made.append(state)
        return state

    yield factory
    for state in made:
        state.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.01)


def take(state: RouterState, key: str, hard_limit: int | None = None) -> Lease:
    lease = state.try_acquire(key, hard_limit)
    assert lease is not None
    return lease


# Contract: health ---------------------------------------------------------------------


def test_failures_cool_a_model_until_the_cooldown_ends(
    make_state: Factory, keys: Keys
) -> None:
    state = make_state(health=HealthSettings(failures=3, cooldown_seconds=0.3))
    for _ in range(20):
        state.report(keys.key, failed=False)
    state.report(keys.key, failed=True)
    state.report(keys.key, failed=True)
    assert state.cooling([keys.key]) == {}
    state.report(keys.key, failed=True)
    cooling = state.cooling([keys.key, keys.other])
    assert list(cooling) == [keys.key] and 0 < cooling[keys.key] <= 0.3
    wait_until(lambda: state.cooling([keys.key]) == {}, "cooldown to end")
    state.report(keys.key, failed=False)  # recovered: the record is cleared
    state.report(keys.key, failed=True)
    assert state.cooling([keys.key]) == {}


def test_failure_ratio_cools_and_successes_dilute_it(
    make_state: Factory, keys: Keys
) -> None:
    state = make_state(health=HealthSettings(failures=3, failure_ratio=0.5))
    for _ in range(3):  # 3 failures among 6 successes, never 2 in a row
        state.report(keys.other, failed=False)
        state.report(keys.other, failed=True)
        state.report(keys.other, failed=False)
    for failed in (True, False, True, False, True):  # 3 of 5
        state.report(keys.key, failed)
    assert list(state.cooling([keys.key, keys.other])) == [keys.key]


def test_cooling_spans_keys_of_several_projects(make_state: Factory) -> None:
    first, second = Keys(), Keys()
    state = make_state(health=HealthSettings(failures=1))
    state.report(first.key, failed=True)
    state.report(second.other, failed=True)
    assert set(state.cooling([first.key, second.key, second.other])) == {
        first.key,
        second.other,
    }


# Contract: leases and limits --------------------------------------------------------------


def test_hard_limit_and_release(make_state: Factory, keys: Keys) -> None:
    state = make_state()
    first, _second = take(state, keys.key, 2), take(state, keys.key, 2)
    assert state.try_acquire(keys.key, 2) is None
    assert state.try_acquire(keys.other, 2) is not None
    assert state.in_flight(keys.key) == 2
    state.release(first, "ok")
    assert state.in_flight(keys.key) == 1
    assert state.try_acquire(keys.key, 2) is not None
    assert state.limit(keys.key) is None


def test_acquire_waits_for_a_release(make_state: Factory, keys: Keys) -> None:
    state = make_state()
    held = take(state, keys.key, 1)
    got: list[Lease] = []
    waiter = threading.Thread(
        target=lambda: got.append(
            state.acquire(keys.key, 1, deadline=time.monotonic() + 30)
        )
    )
    waiter.start()
    state.release(held, "ok")
    waiter.join(timeout=60)
    assert len(got) == 1 and state.in_flight(keys.key) == 1


def test_acquire_gives_up_at_the_deadline(make_state: Factory, keys: Keys) -> None:
    state = make_state()
    take(state, keys.key, 1)
    with pytest.raises(SlotTimeoutError) as info:
        state.acquire(keys.key, 1, deadline=time.monotonic() + 0.05)
    assert info.value.key == keys.key and info.value.limit == 1


def test_limited_outcomes_hold_the_limit_and_successes_grow_it(
    make_state: Factory, keys: Keys
) -> None:
    state = make_state(concurrency=ConcurrencySettings(decrease_interval_seconds=60))
    leases = [take(state, keys.key) for _ in range(8)]
    state.release(leases[0], "limited")
    assert state.limit(keys.key) == 7  # the 7 still in flight
    state.release(leases[1], "limited")  # within the interval: ignored
    assert state.limit(keys.key) == 7
    assert state.try_acquire(keys.key, None) is not None  # 6 in flight < 7
    assert state.try_acquire(keys.key, None) is None  # 7 in flight

    grow = make_state(
        concurrency=ConcurrencySettings(initial_limit=2, increase_after=1)
    )
    for expected in (2, 3, 3, 3, 4):
        grow.release(take(grow, keys.other), "ok")
        assert grow.limit(keys.other) == expected


def test_expired_leases_give_their_slots_back(make_state: Factory, keys: Keys) -> None:
    state = make_state(concurrency=ConcurrencySettings(lease_ttl_seconds=0.3))
    crashed = [take(state, keys.key, 3) for _ in range(3)]  # never released
    assert state.try_acquire(keys.key, 3) is None
    wait_until(lambda: state.in_flight(keys.key) == 0, "leases to expire")
    assert state.try_acquire(keys.key, 3) is not None
    assert state.renew(crashed[0]) is False


def test_renew_keeps_a_long_stream_alive(make_state: Factory, keys: Keys) -> None:
    state = make_state(concurrency=ConcurrencySettings(lease_ttl_seconds=1.0))
    lease = take(state, keys.key, 1)
    for _ in range(15):  # 1.5 s in all, longer than the TTL
        time.sleep(0.1)
        assert state.renew(lease) is True
    assert state.in_flight(keys.key) == 1
    assert state.try_acquire(keys.key, 1) is None


# Contract: budget ----------------------------------------------------------------------


def test_budget_reserve_settle_and_refuse(make_state: Factory, keys: Keys) -> None:
    state = make_state()
    assert state.reserve(keys.scope, 101, 100) is None
    first = state.reserve(keys.scope, 60, 100)
    assert isinstance(first, Reservation)
    assert state.reserve(keys.scope, 41, 100) is None
    second = state.reserve(keys.scope, 40, 100)
    assert second is not None
    state.settle(first, 10)
    assert state.spent(keys.scope) == 10
    third = state.reserve(keys.scope, 50, 100)
    assert third is not None
    assert state.reserve(keys.scope, 1, 100) is None
    state.settle(second, 40)
    state.settle(third, 0)
    assert state.spent(keys.scope) == 50


def test_unsettled_reservations_expire(make_state: Factory, keys: Keys) -> None:
    state = make_state(budget=BudgetSettings(reservation_ttl_seconds=0.3))
    lost = state.reserve(keys.scope, 90, 100)
    assert lost is not None and state.reserve(keys.scope, 20, 100) is None
    wait_until(
        lambda: state.reserve(keys.scope, 20, 100) is not None,
        "the reservation to expire",
    )
    state.settle(lost, 30)
    assert state.spent(keys.scope) == 30


# Contract: async ----------------------------------------------------------------------


def test_async_twins_under_two_event_loops(make_state: Factory, keys: Keys) -> None:
    state = make_state(health=HealthSettings(failures=1))

    async def scenario(key: str) -> None:
        await state.areport(key, failed=True)
        assert key in await state.acooling([key])
        lease = await state.aacquire(key, 1, deadline=time.monotonic() + 10)
        assert await state.atry_acquire(key, 1) is None
        assert await state.arenew(lease) is True
        assert await state.ain_flight(key) == 1
        await state.arelease(lease, "limited")
        assert await state.alimit(key) == 1
        res = await state.areserve(keys.scope, 5, 100)
        assert res is not None
        await state.asettle(res, 5)

    asyncio.run(scenario(keys.key))
    asyncio.run(scenario(keys.other))  # a new loop: a new client, same state
    assert state.spent(keys.scope) == 10


def test_cancelled_acquires_leave_no_slot_taken(
    make_state: Factory, keys: Keys
) -> None:
    state = make_state()
    rng = random.Random(7)

    async def scenario() -> None:
        held = await state.aacquire(keys.key, 1, deadline=time.monotonic() + 10)
        waiting = [
            asyncio.ensure_future(
                state.aacquire(keys.key, 1, deadline=time.monotonic() + 30)
            )
            for _ in range(5)
        ]
        # Also cancel acquisitions of free slots at random points, including
        # while the take is in flight.
        racing = [
            asyncio.ensure_future(state.atry_acquire(keys.other, None))
            for _ in range(40)
        ]
        for task in waiting + racing:
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
        results = await asyncio.gather(*waiting, *racing, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results[:5])
        for lease in results[5:]:
            if isinstance(lease, Lease):
                await state.arelease(lease, "ok")
        await state.arelease(held, "ok")

    asyncio.run(scenario())
    wait_until(
        lambda: state.in_flight(keys.key) == 0 and state.in_flight(keys.other) == 0,
        "every cancelled acquire to give its slot back",
    )


# Redis only: keys, atomicity, processes -----------------------------------------------------


def test_every_key_has_a_ttl_and_one_cluster_slot(
    redis_url: str, admin: Any, keys: Keys
) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    state.report(keys.key, failed=True)
    state.release(take(state, keys.key), "limited")
    take(state, keys.other)
    reservation = state.reserve(keys.scope, 5, 100)
    assert reservation is not None
    state.reserve(keys.scope, 5, 100)
    state.settle(reservation, 3)
    tag = keys.key[keys.key.index("{") : keys.key.index("}") + 1]
    found = [k.decode() for k in admin.scan_iter(match=f"wbr:{tag}*")]
    assert {k.rsplit(":", 1)[1] for k in found} == {"health", "lease", "limit"}
    assert all(admin.pttl(k) > 0 for k in found)
    assert len({redis.crc.key_slot(k.encode()) for k in found}) == 1
    budget = [k.decode() for k in admin.scan_iter(match=f"{keys.scope}:*")]
    parts = sorted(k.rsplit(":", 1)[1] for k in budget)
    assert parts == ["amt", "gen", "live", "res", "spent"]
    assert all(admin.pttl(k) > 0 for k in budget)
    assert len({redis.crc.key_slot(k.encode()) for k in budget}) == 1
    state.close()


def test_twenty_threads_never_hold_more_than_three_slots(
    redis_url: str, keys: Keys, report: list[str]
) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    lock = threading.Lock()
    holders = [0]
    most = [0]
    taken = [0]

    def work() -> None:
        for _ in range(15):
            lease = state.acquire(keys.key, 3, deadline=time.monotonic() + 60)
            with lock:
                holders[0] += 1
                most[0] = max(most[0], holders[0])
            time.sleep(0.001)
            with lock:
                holders[0] -= 1
                taken[0] += 1
            state.release(lease, "ok")

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert taken[0] == 300
    assert most[0] <= 3
    assert state.in_flight(keys.key) == 0
    report.append(f"redis leases: 20 threads, 3 slots, peak holders {most[0]}")
    state.close()


def test_concurrent_reservations_never_overspend(redis_url: str, keys: Keys) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    accepted = [0]
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            res = state.reserve(keys.scope, 7, 100)
            if res is not None:
                state.settle(res, 7)
                with lock:
                    accepted[0] += 1

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert accepted[0] == 14  # 14 * 7 = 98; a 15th would make 105
    assert state.spent(keys.scope) == 98
    state.close()


def test_three_processes_share_three_slots(
    redis_url: str, keys: Keys, report: list[str]
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), redis_url, keys.key, "3", "4", "1.0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
    peak = max(r["max_holders"] for r in results)
    assert peak <= 3  # 12 threads in 3 processes, 3 slots
    assert peak >= 2 and all(r["acquired"] > 0 for r in results)
    report.append(f"redis leases: 3 processes x 4 threads, 3 slots, peak {peak}")


def test_async_clients_close_with_their_event_loop(
    redis_url: str, admin: Any, keys: Keys
) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")

    def ours() -> int:
        return sum(1 for c in admin.client_list() if c.get("name") == CLIENT_NAME)

    before = ours()

    async def use() -> int:
        await state.arelease(
            await state.aacquire(keys.key, 1, time.monotonic() + 5), "ok"
        )
        return ours()

    assert asyncio.run(use()) == before + 1
    assert ours() == before  # closed when asyncio.run shut the loop down
    assert asyncio.run(use()) == before + 1
    assert ours() == before


# Redis only: outages ------------------------------------------------------------------------


class BrokenRedis:
    """Accepts connections and closes them at once (or, if ``silent``, never
    answers on them); counts the attempts."""

    def __init__(self, *, silent: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.silent = silent
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.silent:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fail_open_warns_once_and_retries_after_an_interval(
    caplog: pytest.LogCaptureFixture, keys: Keys
) -> None:
    broken = BrokenRedis()
    clock = Clock()
    url = f"redis://:s3cret@127.0.0.1:{broken.port}/0"
    state = RedisState.from_url(url, on_error="open", retry_interval=5, clock=clock)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(10):
        state.report(keys.key, failed=True)
        lease = state.try_acquire(keys.key, 2)
        assert lease is not None  # answered by the in-process fallback
        state.release(lease, "ok")
    assert broken.accepted == 1  # one try, then it rests for retry_interval
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert f"127.0.0.1:{broken.port}" in text and "s3cret" not in text
    assert keys.key in state.cooling([keys.key])  # the fallback kept health
    clock.now = 5.0
    state.cooling([keys.key])
    assert broken.accepted == 2  # tried again after the interval
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    broken.close()


def test_a_silent_server_costs_one_timeout_then_the_fallback_answers(
    keys: Keys,
) -> None:
    silent = BrokenRedis(silent=True)
    state = RedisState.from_url(
        f"redis://127.0.0.1:{silent.port}/0", timeout=0.3, retry_interval=60
    )
    started = time.monotonic()
    lease = state.try_acquire(keys.key, 1)
    assert lease is not None and lease.owner is not state  # the fallback's
    assert asyncio.run(state.atry_acquire(keys.key, 1)) is None  # 1 slot, held
    state.release(lease, "ok")
    assert asyncio.run(state.atry_acquire(keys.key, 1)) is not None
    assert silent.accepted == 1
    # A hang guard, not a benchmark: one 0.3 s read timeout, then no waiting.
    assert time.monotonic() - started < 5
    silent.close()


def test_fail_open_answers_everything_when_nothing_listens(
    caplog: pytest.LogCaptureFixture, keys: Keys
) -> None:
    port = redis_server.free_port()
    state = RedisState.from_url(f"redis://127.0.0.1:{port}/0", retry_interval=0)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    started = time.monotonic()
    for _ in range(5):  # Redis is tried on every call here (no resting)
        state.report(keys.key, failed=False)
        assert state.cooling([keys.key]) == {}
        lease = state.acquire(keys.key, 1, deadline=time.monotonic() + 5)
        assert state.renew(lease) is True
        state.release(lease, "ok")
        res = state.reserve(keys.scope, 10, 100)
        assert res is not None
        state.settle(res, 10)
    assert state.spent(keys.scope) == 50
    assert state.limit(keys.key) is None and state.in_flight(keys.key) == 0
    assert asyncio.run(state.aspent(keys.scope)) == 50
    assert asyncio.run(state.atry_acquire(keys.key, 1)) is not None
    # A hang guard, not a benchmark: each refused connection fails at once.
    assert time.monotonic() - started < 10
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_fail_closed_raises_a_clear_typed_error(keys: Keys) -> None:
    port = redis_server.free_port()
    url = f"redis://user:s3cret@127.0.0.1:{port}/0"
    state = RedisState.from_url(url, on_error="closed")
    gating: list[Callable[[], object]] = [
        lambda: state.try_acquire(keys.key, 1),
        lambda: state.acquire(keys.key, 1, time.monotonic() + 5),
        lambda: state.cooling([keys.key]),
        lambda: state.reserve(keys.scope, 1, 10),
        lambda: state.spent(keys.scope),
        lambda: state.limit(keys.key),
        lambda: asyncio.run(state.atry_acquire(keys.key, 1)),
    ]
    for call in gating:
        with pytest.raises(StateUnavailableError) as info:
            call()
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message and "on_error='open'" in message
        assert "s3cret" not in message and "s3cret" not in repr(info.value)
        assert isinstance(info.value, WandbConnectionError)
    # Recording what happened never raises.
    state.report(keys.key, failed=True)
    assert "s3cret" not in repr(state)


def test_server_killed_mid_test_fail_open_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, keys: Keys
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with redis_server.RedisServer(tmp_path) as server:
        state = RedisState.from_url(server.url, retry_interval=0.2)
        admin = redis.Redis.from_url(server.url)
        lease = take(state, keys.key, 3)
        admin.save()  # so the restarted server still holds this lease
        admin.close()
        server.kill()
        state.release(lease, "ok")  # cannot be sent now: kept for later
        local = take(state, keys.key, 1)  # the fallback answers
        assert state.try_acquire(keys.key, 1) is None
        state.release(local, "ok")
        server.start()
        admin = redis.Redis.from_url(server.url)
        assert admin.zcard(f"{keys.key}:lease") == 1  # the unsent release

        def replayed() -> bool:
            state.in_flight(keys.key)  # any call tries Redis again
            return admin.zcard(f"{keys.key}:lease") == 0

        wait_until(replayed, "the queued release to reach Redis")
        assert take(state, keys.key, 3).owner is state  # back on Redis
        admin.close()
        state.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "unavailable" in warned[0]
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1


def test_budget_during_an_outage_counts_what_redis_last_said(
    tmp_path: Path, keys: Keys
) -> None:
    with redis_server.RedisServer(tmp_path) as server:
        state = RedisState.from_url(server.url, retry_interval=0.2)
        first = state.reserve(keys.scope, 60, 100)
        assert first is not None
        state.settle(first, 60)
        open_call = state.reserve(keys.scope, 10, 100)  # settled mid-outage
        assert open_call is not None
        admin = redis.Redis.from_url(server.url)
        admin.save()
        admin.close()
        server.kill()
        state.settle(open_call, 10)  # queued for Redis
        assert state.reserve(keys.scope, 31, 100) is None  # 60 + 10 + 31
        during = state.reserve(keys.scope, 30, 100)
        assert during is not None and during.owner is not state
        state.settle(during, 25)
        assert state.spent(keys.scope) == 95
        server.start()
        admin = redis.Redis.from_url(server.url)
        assert int(admin.get(f"{keys.scope}:spent")) == 60

        def caught_up() -> bool:
            state.limit(keys.key)  # any call tries Redis and replays
            return int(admin.get(f"{keys.scope}:spent")) == 95

        wait_until(caught_up, "spend recorded in the outage to reach Redis")
        assert admin.zcard(f"{keys.scope}:res") == 0  # open_call's reservation
        assert state.reserve(keys.scope, 6, 100) is None
        assert state.reserve(keys.scope, 5, 100) is not None
        admin.close()
        state.close()


def test_server_killed_mid_test_fail_closed(tmp_path: Path, keys: Keys) -> None:
    with redis_server.RedisServer(tmp_path) as server:
        state = RedisState.from_url(server.url, on_error="closed", retry_interval=0.2)
        lease = take(state, keys.key, 3)
        server.kill()
        with pytest.raises(StateUnavailableError):
            state.try_acquire(keys.key, 3)
        with pytest.raises(StateUnavailableError):
            asyncio.run(state.acooling([keys.key]))
        state.release(lease, "ok")  # never raises
        server.start()

        def back() -> bool:
            try:
                return state.try_acquire(keys.key, 3) is not None
            except StateUnavailableError:
                return False

        wait_until(back, "Redis to answer again")
        state.close()


# Redis only: small pieces -------------------------------------------------------------------


def test_redact_url_masks_passwords() -> None:
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://h:1/0?password=pw&db=2") == (
        "redis://h:1/0?password=%2A%2A%2A&db=2"
    )
    assert redact_url("unix:///tmp/r.sock?db=1") == "unix:///tmp/r.sock?db=1"
    assert redact_url("unix://:pw@/tmp/r.sock?db=1") == "unix://:***@/tmp/r.sock?db=1"


def test_on_error_is_validated() -> None:
    with pytest.raises(ValueError, match="on_error"):
        RedisState("redis://127.0.0.1:1/0", on_error="maybe")  # type: ignore[arg-type]


# state= settings: URLs, clients, validation ---------------------------------------------


def _clients_for(url: str) -> dict[str, Any]:
    """One redis-py client of each flavour for ``url`` (single or cluster)."""
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    if url.startswith("redis+cluster://"):
        node = url.replace("redis+cluster://", "redis://")
        return {
            "sync": redis.cluster.RedisCluster.from_url(node),
            "async": redis.asyncio.cluster.RedisCluster.from_url(node),
        }
    return {
        "sync": redis.Redis.from_url(url),
        "async": redis.asyncio.Redis.from_url(url),
    }


@pytest.mark.parametrize("where", ["redis_url", "redis_cluster_url"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_client_object_serves_sync_and_async_calls(
    request: pytest.FixtureRequest, where: str, flavour: str, keys: Keys
) -> None:
    url = request.getfixturevalue(where)
    given = _clients_for(url)[flavour]
    check_state(given)
    state = state_from(given, on_error="closed")
    assert isinstance(state, RedisState) and "s3cret" not in repr(state)
    lease = take(state, keys.key, 1)
    assert state.try_acquire(keys.key, 1) is None

    async def other_loop() -> None:
        assert await state.atry_acquire(keys.key, 1) is None
        await state.arelease(lease, "ok")
        again = await state.aacquire(keys.key, 1, time.monotonic() + 5)
        await state.arelease(again, "ok")

    asyncio.run(other_loop())
    assert state.in_flight(keys.key) == 0
    reservation = state.reserve(keys.scope, 5, 10)
    assert reservation is not None
    state.settle(reservation, 4)
    assert state.spent(keys.scope) == 4
    state.close()
    if flavour == "sync":
        assert given.ping()  # the caller's client is left open


def test_check_state_accepts_what_state_from_takes(redis_url: str) -> None:
    clients = _clients_for(redis_url)
    for good in (
        None,
        InProcessState(),
        "redis://127.0.0.1:1/0",
        "REDISS://u:pw@example.com:6380/2",
        "unix:///tmp/redis.sock?db=1",
        "redis+cluster://127.0.0.1:7000",
        "rediss+cluster://u:pw@example.com:7000/0",
        clients["sync"],
        clients["async"],
    ):
        check_state(good)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (42, TypeError),
        (object(), TypeError),
        (b"redis://127.0.0.1", TypeError),
        ("postgres://user:s3cret@db/0", ValueError),
        ("s3cret", ValueError),
        ("redis://user:s3cret@127.0.0.1:notaport/0", ValueError),
        ("redis+cluster://user:s3cret@127.0.0.1:7000/3", ValueError),
        ("redis+cluster://:s3cret@/", ValueError),
    ],
)
def test_check_state_rejects_without_io_or_secrets(bad: object, error: type) -> None:
    with pytest.raises(error) as info:
        check_state(bad)
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)
    with pytest.raises(error):
        state_from(bad)


def test_check_state_does_no_io() -> None:
    dead = redis.Redis(port=redis_server.free_port())
    started = time.monotonic()
    for _ in range(200):
        check_state(dead)
        check_state(f"redis+cluster://127.0.0.1:{redis_server.free_port()}")
    # Nothing listens there; a connection attempt would raise, not pass.
    assert time.monotonic() - started < 5


# Per-loop clients, busy clients ----------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_event_loops_never_closed_leak_no_clients(redis_url: str, keys: Keys) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")

    async def use() -> None:
        lease = await state.aacquire(keys.key, 2, time.monotonic() + 5)
        await state.arelease(lease, "ok")

    def abandoned_loop() -> None:
        # A loop that is run once and dropped, never closed or shut down.
        asyncio.new_event_loop().run_until_complete(use())

    def batch(count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=abandoned_loop)
            thread.start()
            thread.join()
        gc.collect()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # unclosed loop sockets
        batch(5)
        before = _open_fds()
        batch(60)
        after = _open_fds()
    # Each dropped loop held a selector, a self-pipe and a Redis socket: without
    # the weak registry, 60 loops left ~240 fds open here.
    assert after <= before + 4
    state.close()


@pytest.mark.parametrize("where", ["redis_url", "redis_cluster_url"])
def test_five_hundred_waiters_on_one_key_are_not_an_outage(
    request: pytest.FixtureRequest,
    where: str,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # More waiters than a loop's client has connections (MAX_LOOP_CONNECTIONS):
    # the pool makes them wait (single server) or refuses at once (Cluster).
    caplog.set_level(logging.WARNING, logger=LOGGER)
    state = RedisState.from_url(request.getfixturevalue(where), on_error="open")

    async def one() -> Lease:
        lease = await state.aacquire(keys.key, 4, time.monotonic() + 120)
        await asyncio.sleep(0.001)
        await state.arelease(lease, "ok")
        return lease

    async def crowd() -> list[Lease]:
        return await asyncio.gather(*(one() for _ in range(500)))

    leases = asyncio.run(crowd())
    assert len(leases) == 500
    assert all(lease.owner is state for lease in leases)  # never the fallback
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert state.in_flight(keys.key) == 0
    state.close()


# Eviction and resets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "warned"),
    [("volatile-lru", True), ("allkeys-lru", True), ("noeviction", False)],
)
def test_an_evicting_maxmemory_policy_is_warned_about_once(
    tmp_path: Path,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    policy: str,
    warned: bool,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with redis_server.RedisServer(tmp_path) as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("maxmemory", "64mb")
        admin.config_set("maxmemory-policy", policy)
        state = RedisState.from_url(server.url, on_error="closed")
        for _ in range(3):
            state.release(take(state, keys.key), "ok")
        asyncio.run(state.ain_flight(keys.key))
        admin.close()
        state.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == (1 if warned else 0)
    if warned:
        assert policy in said[0] and "noeviction" in said[0]


def test_a_refused_config_get_says_nothing(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with redis_server.RedisServer(tmp_path) as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("maxmemory-policy", "volatile-lru")
        # Like a managed service: everything but CONFIG.
        admin.acl_setuser("app", enabled=True, passwords=["+s3cret"], keys=["*"],
                          commands=["+@all", "-config"])  # fmt: skip
        url = f"redis://app:s3cret@127.0.0.1:{server.port}/0"
        state = RedisState.from_url(url, on_error="closed")
        state.release(take(state, keys.key), "ok")
        assert state.in_flight(keys.key) == 0
        admin.close()
        state.close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_restart_without_persistence_rebuilds_spend_from_what_processes_saw(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with redis_server.RedisServer(tmp_path) as server:
        first = RedisState.from_url(server.url, on_error="closed")
        second = RedisState.from_url(server.url, on_error="closed")
        for state, cost in ((first, 60), (second, 40)):  # first saw 60, second 100
            res = state.reserve(keys.scope, cost, 1000)
            assert res is not None
            state.settle(res, cost)
        server.kill()
        server.start()  # empty: nothing was saved

        def rebuilt() -> bool:
            try:
                return first.spent(keys.scope) >= 60
            except StateUnavailableError:
                return False

        wait_until(rebuilt, "Redis to answer again")
        assert first.spent(keys.scope) == 60  # what the first process saw
        res = first.reserve(keys.scope, 10, 1000)
        assert res is not None
        first.settle(res, 10)  # spend after the restart is kept
        assert second.spent(keys.scope) == 110  # raised to 100, plus the 10
        assert first.spent(keys.scope) == 110
        assert first.reserve(keys.scope, 891, 1000) is None
        fresh = RedisState.from_url(server.url, on_error="closed")
        assert fresh.spent(keys.scope) == 110  # a new process sees it too
        for state in (first, second, fresh):
            state.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 2  # one per process that had known the old record
    assert all("lost the budget record" in text for text in said)


def test_evicted_spend_is_rebuilt(admin: Any, redis_url: str, keys: Keys) -> None:
    state = RedisState.from_url(redis_url, on_error="closed")
    res = state.reserve(keys.scope, 50, 100)
    assert res is not None
    state.settle(res, 50)
    admin.delete(f"{keys.scope}:spent", f"{keys.scope}:gen")  # as eviction would
    assert state.reserve(keys.scope, 51, 100) is None  # 50 still counts
    assert state.spent(keys.scope) == 50
    state.close()


# Outages: what the fallback starts from --------------------------------------------------


def test_an_outage_starts_from_this_process_leases_and_budget_share(
    tmp_path: Path, keys: Keys
) -> None:
    with redis_server.RedisServer(tmp_path) as server:
        mine = RedisState.from_url(server.url, retry_interval=60)
        others = [RedisState.from_url(server.url) for _ in range(3)]
        held = [take(mine, keys.key, 3), take(mine, keys.key, 3)]
        for state in others:  # four processes use the scope; 15 spent
            res = state.reserve(keys.scope, 5, 100)
            assert res is not None
            state.settle(res, 5)
        res = mine.reserve(keys.scope, 4, 100)  # 15 spent + 4 reserved: 81 left
        assert res is not None
        server.kill()
        local = take(mine, keys.key, 3)  # two of three already held on Redis
        assert local.owner is not mine
        assert mine.try_acquire(keys.key, 3) is None
        mine.release(held[0], "ok")  # its stand-in frees a slot
        assert mine.try_acquire(keys.key, 3) is not None
        share = mine.reserve(keys.scope, 20, 100)  # 81 // 4 = 20
        assert share is not None and mine.reserve(keys.scope, 1, 100) is None
        for state in [mine, *others]:
            state.close()
