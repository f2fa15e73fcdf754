"""Waiting for a slot is event-driven: a release wakes one waiter, in FIFO order.

In-process state: each freed slot is handed to the first caller waiting on its
key and wakes that caller alone; a caller that can use several routes waits on
all of them at once; a cancelled or timed-out waiter gives back a slot handed
to it meanwhile; a waiter whose event loop is gone is skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from langchain_wandb_router.state._interface import Lease, SlotTimeoutError
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.state._waiters import Waiter

A, B = "wbr:{t}:m:a", "wbr:{t}:m:b"


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> list[Waiter]:
    """Every waiter the state woke, in order."""
    seen: list[Waiter] = []
    original = Waiter.wake

    def counting(self: Waiter) -> bool:
        seen.append(self)
        return original(self)

    monkeypatch.setattr(Waiter, "wake", counting)
    return seen


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_release_among_500_waiters_wakes_exactly_one(wakes: list[Waiter]) -> None:
    state = InProcessState()
    held = state.try_acquire(A, 1)
    assert held is not None
    deadline = time.monotonic() + 30
    tasks = [asyncio.ensure_future(state.aacquire(A, 1, deadline)) for _ in range(500)]
    await _turns()
    assert state.waiting([A]) == 500 and not wakes
    state.release(held, "ok")
    await _turns()
    done = [t for t in tasks if t.done()]
    assert len(done) == 1 and len(wakes) == 1
    assert state.waiting([A]) == 499 and state.in_flight(A) == 1
    # FIFO: the first to queue is the one served.
    assert done[0] is tasks[0]
    for task in tasks[1:]:
        task.cancel()
    await asyncio.gather(*tasks[1:], return_exceptions=True)
    assert state.waiting([A]) == 0


async def test_waiters_are_served_in_arrival_order() -> None:
    state = InProcessState()
    lease = state.try_acquire(A, 1)
    assert lease is not None
    order: list[int] = []
    deadline = time.monotonic() + 30

    async def waiter(i: int) -> None:
        got = await state.aacquire(A, 1, deadline)
        order.append(i)
        await asyncio.sleep(0)
        state.release(got, "ok")

    tasks = [asyncio.ensure_future(waiter(i)) for i in range(20)]
    await _turns()
    state.release(lease, "ok")
    await asyncio.gather(*tasks)
    assert order == list(range(20))


async def test_a_caller_waits_on_all_its_routes_at_once(wakes: list[Waiter]) -> None:
    state = InProcessState()
    a, b = state.try_acquire(A, 1), state.try_acquire(B, 1)
    assert a is not None and b is not None
    waiting = asyncio.ensure_future(
        state.aacquire_any(((A, 1), (B, 1)), time.monotonic() + 30)
    )
    await _turns()
    state.release(b, "ok")  # the second route frees first: that is the one taken
    got = await asyncio.wait_for(waiting, 5)
    assert got.key == B and len(wakes) == 1
    # It left A's queue: A's next release wakes nobody.
    state.release(a, "ok")
    assert len(wakes) == 1 and state.waiting([A, B]) == 0


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    state = InProcessState()
    lease = state.try_acquire(A, 1)
    assert lease is not None
    deadline = time.monotonic() + 30
    first = asyncio.ensure_future(state.aacquire(A, 1, deadline))
    second = asyncio.ensure_future(state.aacquire(A, 1, deadline))
    await _turns()
    state.release(lease, "ok")  # handed to `first`, which has not run yet
    first.cancel()
    got = await asyncio.wait_for(second, 5)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert got.key == A and state.in_flight(A) == 1


async def test_a_waiter_times_out_at_its_deadline_and_leaves_the_queue() -> None:
    state = InProcessState()
    assert state.try_acquire(A, 1) is not None
    with pytest.raises(SlotTimeoutError):
        await state.aacquire(A, 1, time.monotonic() + 0.05)
    assert state.waiting([A]) == 0


def test_sync_waiters_are_woken_one_per_release(wakes: list[Waiter]) -> None:
    state = InProcessState()
    lease = state.try_acquire(A, 1)
    assert lease is not None
    got: list[Lease] = []
    deadline = time.monotonic() + 30

    def wait() -> None:
        got.append(state.acquire(A, 1, deadline))

    threads = [threading.Thread(target=wait) for _ in range(50)]
    for thread in threads:
        thread.start()
    while state.waiting([A]) < 50:
        time.sleep(0.005)
    for _ in range(50):
        released = lease if not got else got[-1]
        before = len(got)
        state.release(released, "ok")
        while len(got) == before:
            time.sleep(0.001)
        lease = got[-1]
    for thread in threads:
        thread.join()
    assert len(wakes) == 50 and len(got) == 50


def test_a_waiter_on_a_closed_loop_is_skipped() -> None:
    state = InProcessState()
    lease = state.try_acquire(A, 1)
    assert lease is not None
    loop = asyncio.new_event_loop()
    deadline = time.monotonic() + 30
    orphan: Any = loop.create_task(state.aacquire(A, 1, deadline))
    loop.run_until_complete(asyncio.sleep(0.01))  # it queued, then the loop died
    loop.close()
    assert not orphan.done()
    orphan._log_destroy_pending = False  # it dies with its loop: that is the case
    got: list[Lease] = []
    waiter = threading.Thread(target=lambda: got.append(state.acquire(A, 1, deadline)))
    waiter.start()
    while state.waiting([A]) < 2:
        time.sleep(0.005)
    state.release(lease, "ok")
    waiter.join(5)
    assert got and got[0].key == A and state.in_flight(A) == 1
