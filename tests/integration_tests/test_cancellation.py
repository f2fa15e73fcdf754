"""A cancelled or abandoned routed call gives back its slot and reservation at once.

Each case is a way production code stops a call: ``asyncio.wait_for`` timing out
(a client disconnect, LangGraph cancelling a run), ``task.cancel()``, a stream
closed or dropped early, ``KeyboardInterrupt`` in sync code. After each, the
router holds nothing, serves the next call at once, and never asked the driver
generator to yield inside ``GeneratorExit``. Leases of calls longer than their
TTL are renewed, so ``max_in_flight`` holds for them too.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.router._budget import estimate_micro
from langchain_wandb_router.state._interface import ConcurrencySettings, RouterState
from langchain_wandb_router.state._leases import KEEPER
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.testing import WandbEmulator
from tests import redis_server

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url  # the session's 3-master cluster

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
Factory = Callable[..., WandbRouter]


@pytest.fixture(params=["in-process", "redis", "redis-cluster"])
def make(request: pytest.FixtureRequest, router_factory: Factory) -> Iterator[Factory]:
    """Routers on in-process state, a Redis server, or a Redis Cluster."""
    made: list[RouterState] = []

    def factory(
        models: Any, concurrency: ConcurrencySettings | None = None, **kwargs: Any
    ) -> WandbRouter:
        if request.param == "in-process":
            state: RouterState = InProcessState(concurrency=concurrency)
        else:
            pytest.importorskip("redis")
            from langchain_wandb_router.state._redis import RedisState

            url = request.getfixturevalue(request.param.replace("-", "_") + "_url")
            state = RedisState.from_url(url, on_error="closed", concurrency=concurrency)
        made.append(state)
        return router_factory(models, state=state, **kwargs)

    yield factory
    for state in made:
        state.close()


@pytest.fixture
def unraisable() -> Iterator[list[str]]:
    """What Python reported as unraisable (e.g. 'generator ignored GeneratorExit')."""
    seen: list[str] = []
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        seen.append(f"{info.exc_type.__name__}: {info.exc_value}")

    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        gc.collect()
        sys.unraisablehook = previous


def _key(router: WandbRouter, model: str = QWEN) -> str:
    from langchain_wandb_router.router._routing import Route

    return router._rt().key_for(Route(f"wandb/{model}"))


def _state(router: WandbRouter) -> RouterState:
    return router._rt().state


def _holds_nothing(router: WandbRouter) -> None:
    assert _state(router).in_flight(_key(router)) == 0
    assert len(KEEPER) == 0


async def _finalized(router: WandbRouter) -> None:
    """Let a dropped async generator's finalizer run: the loop schedules it,
    and with Redis state it makes a round trip."""
    deadline = time.monotonic() + 2.0
    while _state(router).in_flight(_key(router)) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def test_wait_for_timeouts_release_their_slots_at_once(
    emulator: WandbEmulator, make: Factory, unraisable: list[str]
) -> None:
    router = make(QWEN, max_in_flight=3)
    emulator.set_service_time(5.0)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(router.ainvoke("hi"), 0.2)
    _holds_nothing(router)
    emulator.set_service_time(0.0)
    started = time.monotonic()
    reply = await asyncio.wait_for(router.ainvoke("hi"), 3.0)
    assert reply.content
    assert time.monotonic() - started < 3.0  # served, not held for the lease TTL
    assert not [u for u in unraisable if "GeneratorExit" in u]


async def test_task_cancel_mid_stream_releases_the_slot(
    emulator: WandbEmulator, make: Factory, unraisable: list[str]
) -> None:
    router = make(QWEN, max_in_flight=1)
    emulator.fault(chunk_delay=0.2, times=1)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in router.astream("tell me a long story"):
            first.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(first.wait(), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _holds_nothing(router)
    assert (await asyncio.wait_for(router.ainvoke("hi"), 3.0)).content
    assert not [u for u in unraisable if "GeneratorExit" in u]


async def test_an_async_stream_closed_or_dropped_early_releases_the_slot(
    emulator: WandbEmulator, make: Factory, unraisable: list[str]
) -> None:
    router = make(QWEN, max_in_flight=1)
    emulator.fault(chunk_delay=0.05, times=2)
    chunks = router.astream("tell me a long story")
    await chunks.__anext__()
    await chunks.aclose()
    _holds_nothing(router)

    dropped = router.astream("tell me a long story")
    await dropped.__anext__()
    del dropped
    gc.collect()
    await _finalized(router)
    _holds_nothing(router)
    assert (await asyncio.wait_for(router.ainvoke("hi"), 3.0)).content
    assert not [u for u in unraisable if "GeneratorExit" in u]


def test_a_sync_stream_closed_or_dropped_early_releases_the_slot(
    emulator: WandbEmulator, make: Factory, unraisable: list[str]
) -> None:
    router = make(QWEN, max_in_flight=1)
    emulator.fault(chunk_delay=0.05, times=2)
    chunks = router.stream("tell me a long story")
    next(chunks)
    chunks.close()
    _holds_nothing(router)

    dropped = router.stream("tell me a long story")
    next(dropped)
    del dropped
    gc.collect()
    _holds_nothing(router)
    assert router.invoke("hi").content
    assert not unraisable


class _Interrupt(BaseCallbackHandler):
    """Raises KeyboardInterrupt when the model run starts (Ctrl-C mid-call)."""

    raise_error = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_sync_code_gives_everything_back(
    emulator: WandbEmulator, make: Factory
) -> None:
    router = make(QWEN, max_in_flight=1, budget_usd=1.0, max_tokens=100)
    with pytest.raises(KeyboardInterrupt):
        router.invoke("hi", config={"callbacks": [_Interrupt()]})
    _holds_nothing(router)
    # Interrupted while the attempt was under way: settled at the estimate.
    assert 0 < router.spent_usd * 1e6 <= estimate_micro(QWEN, 50, 100)
    assert router.invoke("hi").content


async def test_cancelled_calls_settle_their_reservations_and_leave_room(
    emulator: WandbEmulator, make: Factory
) -> None:
    estimate = estimate_micro(QWEN, 1, 100)
    # Room for about three calls' estimates: two cancelled calls must not
    # keep theirs reserved, or the third waits for them until its deadline.
    router = make(QWEN, budget_usd=3.5 * estimate / 1e6, max_tokens=100, deadline=5.0)
    emulator.set_service_time(5.0)
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(router.ainvoke("hi"), 0.2)
    spent = router.spent_usd * 1e6
    # W&B may bill a request it received: each was settled at its estimate.
    assert 0 < spent <= 2 * estimate_micro(QWEN, 50, 100)
    emulator.set_service_time(0.0)
    reply = await asyncio.wait_for(router.ainvoke("hi"), 3.0)
    assert reply.content


async def test_a_call_cancelled_while_waiting_for_a_slot_takes_none(
    emulator: WandbEmulator, make: Factory
) -> None:
    router = make(QWEN, max_in_flight=1)
    emulator.set_service_time(0.5)
    running = asyncio.ensure_future(router.ainvoke("hi"))
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(router.ainvoke("hi"), 0.1)  # waits behind it
    assert (await running).content
    _holds_nothing(router)


def test_leases_of_calls_longer_than_their_ttl_are_renewed(
    emulator: WandbEmulator, make: Factory
) -> None:
    short = ConcurrencySettings(lease_ttl_seconds=0.3)
    router = make(QWEN, max_in_flight=1, concurrency=short)
    state, key = _state(router), _key(router)
    # A stream that lives five TTLs, and a second call that wants the slot.
    emulator.fault(chunk_delay=0.1, times=1)
    seen: list[int] = []

    def long_stream() -> None:
        for _ in router.stream("tell me a long story with many many words"):
            seen.append(state.in_flight(key))

    streaming = threading.Thread(target=long_stream)
    streaming.start()
    while not seen:
        time.sleep(0.01)
    assert router.invoke("hi").content
    streaming.join()
    assert len(seen) >= 10 and min(seen) == 1  # never expired under the stream
    assert emulator.peak_in_flight == 1  # the cap held for the whole stream
    _holds_nothing(router)


async def test_a_cancelled_chat_wandb_call_ends_its_traced_run(
    emulator: WandbEmulator, chat_factory: Any
) -> None:
    # Core leaves a model run open when its ainvoke is cancelled; ChatWandb
    # ends it with the cancellation, so tracers never hold a dangling run.
    from langchain_wandb_router.testing import Latency

    ended: list[str] = []

    class Ends(BaseCallbackHandler):
        def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
            ended.append(type(error).__name__)

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            ended.append("end")

    emulator.set_latency(Latency(ttft=60.0))
    call = asyncio.ensure_future(
        chat_factory().ainvoke("hi", config={"callbacks": [Ends()]})
    )
    for _ in range(1000):  # until the request is at the emulator (bounded)
        if emulator.in_flight:
            break
        await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert ended == ["CancelledError"]
