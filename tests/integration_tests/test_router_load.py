"""WandbRouter under load: W&B's concurrency limit as backpressure, health, deadlines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from langchain_wandb_router import RetryPolicy, WandbRouter, WandbTimeoutError
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
GPT_OSS = "openai/gpt-oss-120b"


def _router(emu: WandbEmulator, models: Any, **kwargs: Any) -> WandbRouter:
    return WandbRouter(models=models, api_key=emu.api_key, base_url=emu.base_url, **kwargs)


async def _burst(router: WandbRouter, n: int) -> list[str]:
    async def one(i: int) -> str:
        return (await router.ainvoke(f"question number {i}")).text

    return await asyncio.gather(*(one(i) for i in range(n)))


def test_a_concurrency_cap_is_backpressure_not_failure(report: list[str]) -> None:
    """100 concurrent calls on one route under a cap of 3, default settings."""
    with WandbEmulator(concurrency_limit=3, service_time=0.02) as emu:
        answers = asyncio.run(_burst(_router(emu, QWEN), 100))
        stats = emu.stats()
    # Every call succeeded, with its own answer.
    for i, text in enumerate(answers):
        assert text.endswith(f"question number {i}")
    assert stats.peak_in_flight_by_model[QWEN] <= 3
    # The first wave meets the cap; after that the router holds itself under it.
    assert stats.rejected <= 120, stats.rejected
    report.append(f"backpressure: 100 calls, cap 3: all served, {stats.rejected} 429s sent")


def test_max_in_flight_is_never_exceeded() -> None:
    with WandbEmulator(service_time=0.02) as emu:
        router = _router(emu, [QWEN, DSV31], max_in_flight={QWEN: 2, DSV31: 1})
        answers = asyncio.run(_burst(router, 40))
        stats = emu.stats()
    assert len(answers) == 40
    assert stats.peak_in_flight_by_model[QWEN] <= 2
    assert stats.peak_in_flight_by_model.get(DSV31, 0) <= 1
    assert stats.rejected == 0


def test_max_in_flight_holds_for_threads_too() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with WandbEmulator(service_time=0.02) as emu:
        router = _router(emu, QWEN, max_in_flight=2)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: router.invoke(f"q{i}").text, range(24)))
        assert emu.stats().peak_in_flight_by_model[QWEN] <= 2
    assert all(a.endswith(f"q{i}") for i, a in enumerate(answers))


async def test_a_cancelled_wait_for_a_slot_gives_nothing_away() -> None:
    with WandbEmulator(service_time=0.3) as emu:
        router = _router(emu, QWEN, max_in_flight=1)
        holder = asyncio.create_task(router.ainvoke("first"))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(router.ainvoke("second"))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (await holder).text
        # The slot came back: the next call is admitted and served.
        assert (await asyncio.wait_for(router.ainvoke("third"), 5)).text.endswith("third")
        assert [r.json["messages"][-1]["content"] for r in emu.chat_requests() if r.json] == ["first", "third"]


def test_request_errors_and_429s_do_not_cool_a_healthy_model(
    emulator: WandbEmulator, retry_policy: RetryPolicy
) -> None:
    router = _router(emulator, [QWEN, DSV31], retry_policy=retry_policy)
    emulator.fault(status=400, times=4, model=QWEN)
    for _ in range(4):
        with pytest.raises(Exception):  # noqa: B017, PT011 - the caller's own bad request
            router.invoke("hi")
    emulator.fault(status=429, times=4, model=QWEN)
    router.invoke("hi")
    emulator.reset()
    msg = router.invoke("hi")
    assert msg.response_metadata["model_name"] == QWEN
    assert QWEN not in msg.response_metadata["routing"]["excluded"]


def test_a_model_failing_every_request_is_skipped_quickly(
    emulator: WandbEmulator, retry_policy: RetryPolicy
) -> None:
    emulator.fault(status=500, times=None, model=QWEN)
    router = _router(emulator, [QWEN, DSV31], retry_policy=retry_policy)
    for _ in range(40):
        assert router.invoke("hi").response_metadata["model_name"] == DSV31
    asked = [r.model for r in emulator.chat_requests()].count(QWEN)
    assert asked <= 10, asked


def test_the_deadline_bounds_the_whole_call(emulator: WandbEmulator) -> None:
    emulator.fault(status=503, times=None)
    router = _router(
        emulator, [QWEN, DSV31], max_retries=50, deadline=0.4, retry_policy=RetryPolicy(backoff_base=0.1)
    )
    with pytest.raises(WandbTimeoutError, match="deadline") as info:
        router.invoke("hi")
    assert any("WandbRouter attempts" in note for note in info.value.__notes__)
    assert len(emulator.chat_requests()) < 20


async def test_the_deadline_bounds_a_slow_attempt(emulator: WandbEmulator) -> None:
    emulator.fault(delay=3.0, times=1)
    router = _router(emulator, QWEN, deadline=0.3)
    with pytest.raises(WandbTimeoutError):
        await router.ainvoke("hi")
