"""ChatWandb treats W&B's concurrency 429 as backpressure, as the router does.

(``RetryPolicy.backpressure`` is on by default; the router's own route
models turn it off so that the 429 reaches the router's loop.)

Such a 429 is retried without spending ``max_retries``, with a short capped
backoff (``RetryPolicy.limited_delay``), given up after ``MAX_LIMITED`` in a
row, and never past the call's deadline. Any other 429 is an ordinary
retryable failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from langchain_wandb_router import ChatWandb, RetryPolicy
from langchain_wandb_router.errors import (
    WandbConcurrencyLimitError,
    WandbError,
    WandbRateLimitError,
    WandbTimeoutError,
)
from langchain_wandb_router.testing import WandbEmulator
from langchain_wandb_router.testing._load import concurrency_error_body
from langchain_wandb_router.transport._retry import (
    LIMITED_BACKOFF_CAP,
    MAX_LIMITED,
)

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
Factory = Callable[..., ChatWandb]
RATE_LIMIT = {
    "error": {
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached for requests per minute",
        "type": "rate_limit_error",
    }
}


@pytest.fixture
def retry_policy(sleeps: list[float]) -> RetryPolicy:
    """The recorded-sleep policy of conftest (backpressure on by default)."""

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    return RetryPolicy(sleep=sleeps.append, asleep=record)


def _limited(emulator: WandbEmulator, times: int | None) -> None:
    emulator.fault(status=429, body=concurrency_error_body(QWEN), times=times)


def _run(llm: ChatWandb, how: str) -> str:
    if how == "invoke":
        return llm.invoke("hi").text
    if how == "ainvoke":
        return asyncio.run(llm.ainvoke("hi")).text
    if how == "stream":
        return "".join(chunk.text for chunk in llm.stream("hi"))

    async def collect() -> str:
        return "".join([chunk.text async for chunk in llm.astream("hi")])

    return asyncio.run(collect())


HOW = ["invoke", "ainvoke", "stream", "astream"]


@pytest.mark.parametrize("how", HOW)
def test_a_concurrency_429_spends_no_retry(
    emulator: WandbEmulator, chat_factory: Factory, sleeps: list[float], how: str
) -> None:
    _limited(emulator, times=5)
    assert _run(chat_factory(max_retries=0), how)
    assert len(emulator.chat_requests()) == 6
    # At once, then a short backoff, never above the cap.
    assert sleeps[0] == 0.0
    assert all(0 < wait <= LIMITED_BACKOFF_CAP for wait in sleeps[1:])
    assert len(sleeps) == 5


@pytest.mark.parametrize("max_retries", [0, 3])
def test_concurrency_429s_are_given_up_after_the_routers_count(
    emulator: WandbEmulator,
    chat_factory: Factory,
    sleeps: list[float],
    max_retries: int,
) -> None:
    _limited(emulator, times=None)
    with pytest.raises(WandbConcurrencyLimitError) as caught:
        chat_factory(max_retries=max_retries).invoke("hi")
    assert len(emulator.chat_requests()) == MAX_LIMITED + 1
    assert len(sleeps) == MAX_LIMITED
    assert any("Given up" in note for note in caught.value.__notes__)


def test_backpressure_and_retries_are_counted_apart(
    emulator: WandbEmulator, chat_factory: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=503)
    _limited(emulator, times=3)
    emulator.fault(status=503)
    assert chat_factory(max_retries=2).invoke("hi").text
    assert len(emulator.chat_requests()) == 6
    emulator.reset()
    emulator.fault(status=503)
    _limited(emulator, times=3)
    emulator.fault(status=503)
    with pytest.raises(WandbError) as caught:
        chat_factory(max_retries=1).invoke("hi")
    assert not isinstance(caught.value, WandbConcurrencyLimitError)
    assert len(emulator.chat_requests()) == 5


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_another_429_spends_retries(
    emulator: WandbEmulator, chat_factory: Factory, sleeps: list[float], how: str
) -> None:
    emulator.fault(status=429, body=RATE_LIMIT, times=None)
    with pytest.raises(WandbRateLimitError) as caught:
        _run(chat_factory(max_retries=0), how)
    assert not isinstance(caught.value, WandbConcurrencyLimitError)
    assert len(emulator.chat_requests()) == 1
    emulator.reset()
    emulator.fault(status=429, body=RATE_LIMIT, times=None)
    with pytest.raises(WandbRateLimitError):
        _run(chat_factory(max_retries=2), how)
    assert len(emulator.chat_requests()) == 3


def test_retry_after_on_a_concurrency_429_is_honoured(
    emulator: WandbEmulator, chat_factory: Factory, sleeps: list[float]
) -> None:
    emulator.fault(
        status=429,
        body=concurrency_error_body(QWEN),
        headers={"Retry-After": "2"},
        times=2,
    )
    assert chat_factory(max_retries=0).invoke("hi").text
    assert sleeps == [2.0, 2.0]


@pytest.mark.parametrize("how", HOW)
def test_backpressure_ends_by_the_calls_deadline(
    emulator: WandbEmulator, chat_factory: Factory, how: str
) -> None:
    _limited(emulator, times=None)
    llm = chat_factory(
        max_retries=0, deadline=0.6, retry_policy=RetryPolicy()
    )
    started = time.monotonic()
    with pytest.raises((WandbConcurrencyLimitError, WandbTimeoutError)):
        _run(llm, how)
    assert time.monotonic() - started < 0.6 + 0.3
    assert 1 < len(emulator.chat_requests()) < MAX_LIMITED + 1


async def test_callers_behind_a_real_cap_all_finish(
    emulator: WandbEmulator, chat_factory: Factory
) -> None:
    # Six callers, one slot, max_retries=0: each waits its turn instead of
    # failing on the first 429.
    emulator.set_concurrency_limit(1)
    emulator.set_service_time(0.05)
    llm = chat_factory(max_retries=0, retry_policy=RetryPolicy())
    answers: list[Any] = await asyncio.gather(*(llm.ainvoke("hi") for _ in range(6)))
    assert all(answer.text for answer in answers)
    assert len(emulator.chat_requests()) > 6  # 429s were met and waited out


def test_without_backpressure_a_concurrency_429_spends_retries(
    emulator: WandbEmulator, chat_factory: Factory, sleeps: list[float]
) -> None:
    # What the router's route models (max_retries=0) use: the 429 goes back
    # to the router's loop at once.
    _limited(emulator, times=None)
    llm = chat_factory(max_retries=0, retry_policy=RetryPolicy(backpressure=False))
    with pytest.raises(WandbConcurrencyLimitError):
        llm.invoke("hi")
    assert len(emulator.chat_requests()) == 1


def test_a_plain_chat_wandb_waits_out_a_concurrency_429(
    emulator: WandbEmulator,
) -> None:
    # No retry_policy given: the default treats the 429 as backpressure, as
    # the router does, so max_retries=0 still gets an answer.
    _limited(emulator, times=2)
    llm = ChatWandb(
        model=QWEN,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        max_retries=0,
    )
    assert llm.retry_policy.backpressure
    assert llm.invoke("hi").text
    assert len(emulator.chat_requests()) == 3
