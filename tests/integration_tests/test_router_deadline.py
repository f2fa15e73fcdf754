"""The router's ``deadline=`` bounds the whole call, sync and async, a trickling server included.

Before, a sync attempt kept only its per-read timeout, so a server sending one
byte every 100 ms held ``router.invoke(deadline=3)`` for over 25 s. Now every
attempt runs under the router's deadline and ChatWandb carries it to every read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.errors import StreamInterruptedError, WandbTimeoutError
from tests.integration_tests.test_deadline import BOUND, DEADLINE, QWEN, trickling


def _router(base_url: str, **kwargs: Any) -> WandbRouter:
    return WandbRouter(
        models=QWEN, api_key="sk-test-0123456789abcdef", base_url=base_url,
        deadline=DEADLINE, **kwargs,
    )  # fmt: skip


def _invoke(router: WandbRouter) -> Any:
    return router.invoke("hi")


def _stream(router: WandbRouter) -> Any:
    return [c.text for c in router.stream("hi")]


def _ainvoke(router: WandbRouter) -> Any:
    return asyncio.run(router.ainvoke("hi"))


def _astream(router: WandbRouter) -> Any:
    async def run() -> list[str]:
        return [c.text async for c in router.astream("hi")]

    return asyncio.run(run())


@pytest.mark.parametrize("path", [_invoke, _stream, _ainvoke, _astream])
@pytest.mark.parametrize(
    "script", ["silent", "trickled headers", "trickled body", "trickled after first event"]
)
def test_the_router_deadline_ends_every_path_in_time(path: Any, script: str) -> None:
    if script == "trickled body" and path in (_stream, _astream):
        script = "trickled first event"
    with trickling(script) as server:
        router = _router(server.base_url, max_retries=5)
        started = time.monotonic()
        with pytest.raises((WandbTimeoutError, StreamInterruptedError)) as caught:
            path(router)
        elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"{path.__name__} on {script!r} took {elapsed:.2f}s"
    assert "deadline" in str(caught.value)


def test_the_router_deadline_leaves_no_bound_behind() -> None:
    from langchain_wandb_router.transport import _deadline

    with trickling("trickled after first event") as server:
        router = _router(server.base_url)
        chunks = router.stream("hi")
        next(chunks)
        assert _deadline.current() is None  # not leaked to the consumer
        with pytest.raises(StreamInterruptedError):
            list(chunks)
