"""InProcessState: health, leases, adaptive limits and budget, on an injected clock."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from langchain_wandb_router.errors import WandbConnectionError
from langchain_wandb_router.state._factory import state_from
from langchain_wandb_router.state._interface import (
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    Lease,
    RouterState,
    SlotTimeoutError,
    StateUnavailableError,
    budget_key,
    route_key,
)
from langchain_wandb_router.state._memory import InProcessState

KEY = route_key("https://api.inference.wandb.ai/v1", "team/proj", "org/model-a")
OTHER = route_key("https://api.inference.wandb.ai/v1", "team/proj", "org/model-b")
SCOPE = budget_key("router-1")


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **settings: object) -> InProcessState:
    return InProcessState(clock=clock, **settings)  # type: ignore[arg-type]


# Keys -----------------------------------------------------------------------------


def test_route_keys_share_one_hash_tag_per_project() -> None:
    base = "https://api.inference.wandb.ai/v1"
    a, b = route_key(base, "t/p", "m1"), route_key(base + "/", "t/p", "m2")
    other_project = route_key(base, "t/q", "m1")

    def tag(key: str) -> str:
        return key[key.index("{") + 1 : key.index("}")]

    assert tag(a) == tag(b)  # trailing slash does not matter
    assert tag(a) != tag(other_project)
    assert a.endswith(":m1") and a != route_key(base, "t/p", "m2")
    assert route_key(base, None, "m") == route_key(base, "", "m")
    assert budget_key("x") != budget_key("y") and "{" in budget_key("x")


# Health ------------------------------------------------------------------------------


def test_consecutive_failures_cool_a_model_for_cooldown_seconds(
    clock: FakeClock,
) -> None:
    state = make(clock, health=HealthSettings(failures=3, cooldown_seconds=30))
    for _ in range(50):
        state.report(KEY, failed=False)
    state.report(KEY, failed=True)
    state.report(KEY, failed=True)
    assert state.cooling([KEY]) == {}
    state.report(KEY, failed=True)  # third in a row, though 3/53 of the window
    assert state.cooling([KEY, OTHER]) == {KEY: 30.0}
    clock.advance(12)
    assert state.cooling([KEY]) == {KEY: pytest.approx(18.0)}
    clock.advance(18)
    assert state.cooling([KEY]) == {}


def test_failure_ratio_in_window_cools_without_a_streak(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=3, failure_ratio=0.5))
    # fail, ok, fail, ok, fail: 3 failures of 5 (60%), never 2 in a row.
    for failed in (True, False, True, False):
        state.report(KEY, failed)
    assert state.cooling([KEY]) == {}
    state.report(KEY, failed=True)
    assert KEY in state.cooling([KEY])


def test_low_failure_ratio_does_not_cool(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=3, failure_ratio=0.5))
    for _ in range(4):  # 4 failures among 8 successes: 33%
        state.report(KEY, failed=False)
        state.report(KEY, failed=True)
        state.report(KEY, failed=False)
    assert state.cooling([KEY]) == {}


def test_failures_older_than_the_window_do_not_count(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=3, window_seconds=60))
    state.report(KEY, failed=True)
    state.report(KEY, failed=False)
    state.report(KEY, failed=True)
    state.report(KEY, failed=False)
    clock.advance(61)
    state.report(KEY, failed=True)  # only 1 failure in the window now
    assert state.cooling([KEY]) == {}
    state.report(KEY, failed=False)
    state.report(KEY, failed=True)
    state.report(KEY, failed=True)  # 3 of 4 in the window
    assert KEY in state.cooling([KEY])


def test_success_clears_only_after_the_cooldown_ended(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=2, cooldown_seconds=10))
    state.report(KEY, failed=True)
    state.report(KEY, failed=True)
    clock.advance(5)
    state.report(KEY, failed=False)  # a slow call started before the trip
    assert state.cooling([KEY]) == {KEY: pytest.approx(5.0)}
    clock.advance(5)
    state.report(KEY, failed=False)  # served after the cooldown: recovered
    state.report(KEY, failed=True)
    assert state.cooling([KEY]) == {}


def test_failure_right_after_cooldown_trips_again(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=2, cooldown_seconds=10))
    state.report(KEY, failed=True)
    state.report(KEY, failed=True)
    clock.advance(10)
    assert state.cooling([KEY]) == {}
    state.report(KEY, failed=True)  # no success in between: still broken
    assert state.cooling([KEY]) == {KEY: 10.0}


def test_health_can_be_disabled(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=0))
    for _ in range(10):
        state.report(KEY, failed=True)
    assert state.cooling([KEY]) == {}


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="failure_ratio"):
        HealthSettings(failure_ratio=1.5)
    with pytest.raises(ValueError, match="initial_limit"):
        ConcurrencySettings(initial_limit=0)
    with pytest.raises(ValueError, match="reservation_ttl"):
        BudgetSettings(reservation_ttl_seconds=0)


# Leases --------------------------------------------------------------------------


def test_hard_limit_caps_slots_and_release_frees_one(clock: FakeClock) -> None:
    state = make(clock)
    leases = [state.try_acquire(KEY, 2) for _ in range(2)]
    assert all(isinstance(lease, Lease) for lease in leases)
    assert state.try_acquire(KEY, 2) is None
    assert state.try_acquire(OTHER, 2) is not None  # keys are independent
    assert state.in_flight(KEY) == 2
    state.release(leases[0], "ok")  # type: ignore[arg-type]
    assert state.in_flight(KEY) == 1
    assert state.try_acquire(KEY, 2) is not None


def test_no_limit_means_unlimited(clock: FakeClock) -> None:
    state = make(clock)
    assert all(state.try_acquire(KEY, None) for _ in range(500))
    assert state.in_flight(KEY) == 500
    assert state.limit(KEY) is None


def test_bad_arguments_are_rejected(clock: FakeClock) -> None:
    state = make(clock)
    with pytest.raises(ValueError, match="hard_limit"):
        state.try_acquire(KEY, 0)
    lease = state.try_acquire(KEY, None)
    assert lease is not None
    with pytest.raises(ValueError, match="outcome"):
        state.release(lease, "fine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another state"):
        make(clock).release(lease, "ok")
    with pytest.raises(ValueError, match="micro"):
        state.reserve(SCOPE, -1, 10)


def test_leases_expire_and_renew_extends_them(clock: FakeClock) -> None:
    state = make(clock, concurrency=ConcurrencySettings(lease_ttl_seconds=10))
    kept = state.try_acquire(KEY, 2)
    lost = state.try_acquire(KEY, 2)
    assert kept is not None and lost is not None
    clock.advance(8)
    assert state.renew(kept) is True
    clock.advance(3)  # lost expired at 10 s; kept now lives until 18 s
    assert state.in_flight(KEY) == 1
    assert state.renew(lost) is False
    assert state.try_acquire(KEY, 2) is not None  # lost's slot came back
    assert state.try_acquire(KEY, 2) is None


def test_a_limited_outcome_holds_the_limit_at_what_was_admitted(clock: FakeClock) -> None:
    state = make(clock)
    leases = [state.try_acquire(KEY, None) for _ in range(8)]
    state.release(leases[0], "limited")  # type: ignore[arg-type]
    assert state.limit(KEY) == 7  # refused while 7 others were in flight
    assert state.try_acquire(KEY, None) is None
    # The rest of the same wave comes back refused too: the limit follows it
    # down to what W&B really admitted, and never goes up on a 429.
    for lease in leases[1:5]:
        state.release(lease, "limited")  # type: ignore[arg-type]
    assert state.limit(KEY) == 3
    for lease in leases[5:]:
        state.release(lease, "other")  # type: ignore[arg-type]
    assert state.limit(KEY) == 3
    held = [state.try_acquire(KEY, None) for _ in range(3)]
    assert all(held) and state.try_acquire(KEY, None) is None


def test_a_decrease_interval_counts_one_wave_once(clock: FakeClock) -> None:
    settings = ConcurrencySettings(decrease_interval_seconds=2.0)
    state = make(clock, concurrency=settings)
    leases = [state.try_acquire(KEY, None) for _ in range(16)]
    for lease in leases[:6]:
        state.release(lease, "limited")  # type: ignore[arg-type]
    assert state.limit(KEY) == 15
    clock.advance(2.0)
    state.release(leases[6], "limited")  # type: ignore[arg-type]
    assert state.limit(KEY) == 9  # the 9 still in flight


def test_limit_never_drops_below_one(clock: FakeClock) -> None:
    state = make(clock, concurrency=ConcurrencySettings(decrease_interval_seconds=0))
    for _ in range(5):
        lease = state.try_acquire(KEY, None)
        assert lease is not None
        state.release(lease, "limited")
    assert state.limit(KEY) == 1


def test_successes_grow_the_limit_by_one_per_limit_successes(clock: FakeClock) -> None:
    state = make(clock, concurrency=ConcurrencySettings(initial_limit=3, increase_after=1))
    assert state.limit(KEY) == 3
    for expected in (3, 3, 4):  # the 3rd success of 3 grows it
        lease = state.try_acquire(KEY, None)
        assert lease is not None
        state.release(lease, "ok")
        assert state.limit(KEY) == expected
    for _ in range(4):
        lease = state.try_acquire(KEY, None)
        assert lease is not None
        state.release(lease, "ok")
    assert state.limit(KEY) == 5


def test_growth_waits_for_increase_after_rounds_of_successes(clock: FakeClock) -> None:
    state = make(clock, concurrency=ConcurrencySettings(initial_limit=2, increase_after=4))
    for _ in range(7):
        state.release(state.try_acquire(KEY, None), "ok")  # type: ignore[arg-type]
    assert state.limit(KEY) == 2
    state.release(state.try_acquire(KEY, None), "ok")  # type: ignore[arg-type]
    assert state.limit(KEY) == 3  # the 8th success of 2 x 4


def test_hard_limit_below_the_adaptive_limit_wins(clock: FakeClock) -> None:
    state = make(clock, concurrency=ConcurrencySettings(initial_limit=10))
    assert state.try_acquire(KEY, 1) is not None
    assert state.try_acquire(KEY, 1) is None


def test_learned_limit_is_forgotten_after_a_quiet_spell(clock: FakeClock) -> None:
    settings = ConcurrencySettings(forget_after_seconds=600)
    state = make(clock, concurrency=settings)
    leases = [state.try_acquire(KEY, None) for _ in range(4)]
    state.release(leases[0], "limited")  # type: ignore[arg-type]
    assert state.limit(KEY) == 3
    clock.advance(599)
    assert state.limit(KEY) == 3
    clock.advance(1)
    assert state.limit(KEY) is None


def test_acquire_times_out_at_the_deadline(clock: FakeClock) -> None:
    state = make(clock)
    assert state.try_acquire(KEY, 1) is not None
    with pytest.raises(SlotTimeoutError) as info:
        state.acquire(KEY, 1, deadline=clock.now)
    assert info.value.key == KEY and info.value.limit == 1
    assert isinstance(info.value, TimeoutError)


def test_acquire_waits_for_a_release_from_another_thread(clock: FakeClock) -> None:
    state = make(clock)
    held = state.try_acquire(KEY, 1)
    assert held is not None
    got: list[Lease] = []
    waiter = threading.Thread(
        target=lambda: got.append(state.acquire(KEY, 1, deadline=clock.now + 60))
    )
    waiter.start()
    state.release(held, "ok")
    waiter.join(timeout=30)
    assert not waiter.is_alive() and len(got) == 1
    assert state.in_flight(KEY) == 1


async def test_aacquire_is_woken_by_a_release_on_the_same_loop(
    clock: FakeClock,
) -> None:
    state = make(clock)
    held = state.try_acquire(KEY, 1)
    assert held is not None
    waiting = asyncio.ensure_future(state.aacquire(KEY, 1, deadline=clock.now + 60))
    await asyncio.sleep(0)
    assert not waiting.done()
    await state.arelease(held, "ok")
    lease = await asyncio.wait_for(waiting, timeout=30)
    assert lease.key == KEY and state.in_flight(KEY) == 1


async def test_aacquire_is_woken_by_a_release_from_another_thread(
    clock: FakeClock,
) -> None:
    state = make(clock)
    held = state.try_acquire(KEY, 1)
    assert held is not None
    waiting = asyncio.ensure_future(state.aacquire(KEY, 1, deadline=clock.now + 60))
    await asyncio.sleep(0)
    await asyncio.to_thread(state.release, held, "ok")
    lease = await asyncio.wait_for(waiting, timeout=30)
    assert lease.owner is state


async def test_cancelled_aacquire_takes_no_slot(clock: FakeClock) -> None:
    state = make(clock)
    held = state.try_acquire(KEY, 1)
    assert held is not None
    waiting = asyncio.ensure_future(state.aacquire(KEY, 1, deadline=clock.now + 60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    state.release(held, "ok")
    assert state.in_flight(KEY) == 0
    assert state.try_acquire(KEY, 1) is not None


async def test_aacquire_times_out(clock: FakeClock) -> None:
    state = make(clock)
    assert await state.atry_acquire(KEY, 1) is not None
    with pytest.raises(SlotTimeoutError):
        await state.aacquire(KEY, 1, deadline=clock.now)


def test_async_waiters_work_across_separate_event_loops(clock: FakeClock) -> None:
    state = make(clock)

    async def take_and_give_back() -> int:
        lease = await state.aacquire(KEY, 1, deadline=clock.now + 60)
        await state.arelease(lease, "ok")
        return await state.ain_flight(KEY)

    held = state.try_acquire(KEY, 1)
    assert held is not None
    timer = threading.Timer(0.05, state.release, (held, "ok"))
    timer.start()
    assert asyncio.run(take_and_give_back()) == 0  # woken across loops
    assert asyncio.run(take_and_give_back()) == 0  # a second loop works too
    timer.join()


# Budget --------------------------------------------------------------------------


def test_budget_refuses_what_would_overspend(clock: FakeClock) -> None:
    state = make(clock)
    assert state.reserve(SCOPE, 101, 100) is None  # alone above the budget
    first = state.reserve(SCOPE, 60, 100)
    assert first is not None and first.micro == 60
    assert state.reserve(SCOPE, 41, 100) is None  # 60 outstanding + 41
    second = state.reserve(SCOPE, 40, 100)
    assert second is not None
    state.settle(first, 10)  # cheaper than estimated: frees 50
    assert state.spent(SCOPE) == 10
    third = state.reserve(SCOPE, 50, 100)
    assert third is not None
    assert state.reserve(SCOPE, 1, 100) is None  # 10 + 40 + 50
    state.settle(second, 40)
    state.settle(third, 0)
    assert state.spent(SCOPE) == 50
    assert state.spent(budget_key("unused")) == 0


def test_unsettled_reservations_expire(clock: FakeClock) -> None:
    state = make(clock, budget=BudgetSettings(reservation_ttl_seconds=60))
    lost = state.reserve(SCOPE, 90, 100)
    assert lost is not None
    assert state.reserve(SCOPE, 20, 100) is None
    clock.advance(60)
    assert state.reserve(SCOPE, 20, 100) is not None
    state.settle(lost, 30)  # the call did happen: its cost still counts
    assert state.spent(SCOPE) == 30


async def test_async_twins_match_sync_behaviour(clock: FakeClock) -> None:
    state = make(clock, health=HealthSettings(failures=1))
    await state.areport(KEY, failed=True)
    assert await state.acooling([KEY]) == {KEY: 30.0}
    lease = await state.atry_acquire(KEY, 1)
    assert lease is not None and await state.atry_acquire(KEY, 1) is None
    assert await state.arenew(lease) is True
    await state.arelease(lease, "limited")
    assert await state.alimit(KEY) == 1
    res = await state.areserve(SCOPE, 5, 10)
    assert res is not None
    await state.asettle(res, 7)
    assert await state.aspent(SCOPE) == 7
    await state.aclose()


# Factory ----------------------------------------------------------------------------


def test_state_from_none_or_instance() -> None:
    made = state_from(None, health=HealthSettings(failures=5))
    assert isinstance(made, InProcessState) and made.health.failures == 5
    assert state_from(made) is made


def test_state_from_rejects_other_strings_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="redis://") as info:
        state_from("postgres://user:hunter2@db/0")
    assert "hunter2" not in str(info.value) and "postgres://" in str(info.value)
    with pytest.raises(ValueError, match="plain string"):
        state_from("hunter2")


def test_state_from_redis_url_names_the_extra_when_redis_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(
        sys.modules, "langchain_wandb_router.state._redis", raising=False
    )
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed
    with pytest.raises(ImportError, match=r"langchain-wandb-router\[redis\]"):
        state_from("redis://127.0.0.1:1/0")


def test_state_from_redis_url_builds_a_redis_state_lazily() -> None:
    pytest.importorskip("redis")
    state = state_from("redis://:s3cret@127.0.0.1:1/0", on_error="closed")
    assert isinstance(state, RouterState) and type(state).__name__ == "RedisState"
    assert "s3cret" not in repr(state)  # and no connection was attempted
    assert getattr(state, "on_error", None) == "closed"


def test_state_unavailable_error_is_a_langchain_connection_error() -> None:
    assert issubclass(StateUnavailableError, WandbConnectionError)
    assert StateUnavailableError.is_retryable is False
