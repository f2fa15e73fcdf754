"""Reliability: load with injected faults, a fault matrix, cancellation and pools."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpcore
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_wandb_router import (
    ChatWandb,
    RetryPolicy,
    WandbRouter,
    transport as _transport,
)
from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbAuthenticationError,
    WandbConnectionError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbTimeoutError,
)
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
MODELS = [QWEN, "deepseek-ai/DeepSeek-V3.1", "openai/gpt-oss-120b"]


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "sunny"


# ------------------------------------------------------------------ load


async def test_load_with_thirty_percent_faults(emulator: WandbEmulator, report: list[str]) -> None:
    """300 requests, 24 at a time, ~30% of attempts failing with 429/500/503:
    every request gets exactly its own answer."""
    total, concurrency = 300, 24
    emulator.chaos(0.3, (429, 500, 503), seed=7)
    router = WandbRouter(
        models=MODELS,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        max_retries=2,
        cooldown_failures=5,
        cooldown_seconds=0.5,
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[int, str, dict[str, Any]]:
        async with gate:
            stream = i % 2 == 0
            prompt = f"request {i} token-{i:05d}-end"
            if stream:
                text, meta = "", {}
                async for chunk in router.astream(prompt):
                    text += chunk.text
                    meta.update(chunk.response_metadata)
                return i, text, meta
            msg = await router.ainvoke(prompt)
            return i, msg.text, msg.response_metadata

    started = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(total))), timeout=240)
    elapsed = time.monotonic() - started

    assert len(results) == total  # none lost
    assert sorted(i for i, _, _ in results) == list(range(total))  # none duplicated
    for i, text, meta in results:
        assert f"token-{i:05d}-end" in text  # its own answer...
        assert text.count("token-") == 1  # ...and nothing else spliced in
        assert meta["model_name"] in MODELS
        assert text.startswith(f"Hello! This is {meta['model_name']} answering")
    requests = len(emulator.chat_requests())
    retries = requests - total
    failed = sum(1 for _, _, m in results for a in m["routing"]["attempts"] if a["error"])
    assert retries == failed > 0  # every extra request is a recorded, retried failure
    assert 1 < emulator.peak_in_flight <= concurrency
    served = {m: sum(1 for _, _, meta in results if meta["model_name"] == m) for m in MODELS}
    report.append(
        f"load: {total} requests ({total // 2} streamed), concurrency {concurrency}, "
        f"~30% injected 429/500/503: {requests} HTTP attempts, {retries} retried/fallen back, "
        f"peak in flight {emulator.peak_in_flight}, 0 lost/duplicated/mixed, "
        f"{elapsed:.1f}s; served by {served}"
    )


# ------------------------------------------------------------------ fault matrix



def _llm(emu: WandbEmulator, **kwargs: Any) -> ChatWandb:
    return ChatWandb(model=QWEN, api_key=emu.api_key, base_url=emu.base_url, **kwargs)


def test_connection_refused() -> None:
    with socket_free_port() as port:
        llm = ChatWandb(model=QWEN, api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
        with pytest.raises(WandbConnectionError, match="Could not talk to W&B"):
            llm.invoke("hi")


def test_read_timeout(emulator: WandbEmulator) -> None:
    emulator.fault(delay=1.0)
    with pytest.raises(WandbTimeoutError, match="timeout="):
        _llm(emulator, timeout=0.2, max_retries=0).invoke("hi")


def test_slow_first_byte_recovers(emulator: WandbEmulator) -> None:
    emulator.fault(delay=0.3)
    assert _llm(emulator, timeout=5).invoke("hi").text


def test_slow_stream_within_timeout(emulator: WandbEmulator) -> None:
    emulator.fault(chunk_delay=0.01)
    assert "".join(c.text for c in _llm(emulator, timeout=5).stream("hi"))


def test_html_502_then_recovery(emulator: WandbEmulator, retry_policy: RetryPolicy) -> None:
    emulator.fault(status=502, body="<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    assert _llm(emulator, retry_policy=retry_policy).invoke("hi").text  # retried, then served
    emulator.fault(status=502, body="<html>bad</html>", times=None)
    with pytest.raises(WandbAPIError, match="HTML error page"):
        _llm(emulator, max_retries=0).invoke("hi")


def test_truncated_json_body(emulator: WandbEmulator) -> None:
    emulator.fault(truncate=True)
    with pytest.raises(WandbAPIError, match="not valid JSON"):
        _llm(emulator, max_retries=0).invoke("hi")


def test_connection_dropped_mid_body(emulator: WandbEmulator) -> None:
    emulator.fault(drop_after=1)
    with pytest.raises(WandbConnectionError):
        _llm(emulator, max_retries=0).invoke("hi")


def test_malformed_sse_line(emulator: WandbEmulator) -> None:
    emulator.fault(malformed_after=3)
    with pytest.raises(StreamInterruptedError, match="malformed stream line"):
        list(_llm(emulator, max_retries=0).stream("hi"))
    emulator.fault(malformed_after=0)  # before any output: retried, then fine
    assert "".join(c.text for c in _llm(emulator, max_retries=1).stream("hi"))


def test_connection_dropped_mid_stream(emulator: WandbEmulator) -> None:
    emulator.fault(drop_after=5)
    with pytest.raises(StreamInterruptedError):
        list(_llm(emulator).stream("hi"))
    assert len(emulator.chat_requests()) == 1


def test_invalid_tool_arguments_are_invalid_tool_calls(emulator: WandbEmulator) -> None:
    emulator.respond_with(tool_calls=[{"name": "get_weather", "arguments": "{not json"}])
    msg = _llm(emulator).bind_tools([get_weather]).invoke("weather?")
    assert not msg.tool_calls
    assert msg.invalid_tool_calls[0]["args"] == "{not json"


def test_bad_project_401() -> None:
    with WandbEmulator(projects={"team/ok"}) as emu:
        llm = ChatWandb(model=QWEN, api_key=emu.api_key, base_url=emu.base_url, project="team/nope")
        with pytest.raises(WandbAuthenticationError, match="team/project"):
            llm.invoke("hi")
        assert len(emu.chat_requests()) == 1  # 401 is not retried


@pytest.mark.parametrize(("status", "cls"), [(402, WandbQuotaError), (403, WandbPermissionError)])
def test_quota_and_permission(emulator: WandbEmulator, status: int, cls: type) -> None:
    emulator.fault(status=status)
    with pytest.raises(cls):
        _llm(emulator).invoke("hi")
    assert len(emulator.chat_requests()) == 1


def test_404_for_a_model_wandb_stopped_serving(emulator: WandbEmulator) -> None:
    emulator.remove_model("Qwen/Qwen3-Coder-480B-A35B-Instruct")
    llm = ChatWandb(model="wandb/Qwen/Qwen3-Coder-480B-A35B-Instruct", api_key=emulator.api_key, base_url=emulator.base_url)
    with pytest.raises(WandbModelNotFoundError, match="wandb-router models --live"):
        llm.invoke("hi")


def test_redirects_are_not_followed(emulator: WandbEmulator) -> None:
    with WandbEmulator(api_key=emulator.api_key) as elsewhere:
        emulator.fault(status=307, headers={"Location": f"{elsewhere.base_url}/chat/completions"}, body="")
        with pytest.raises(WandbAPIError, match="redirect"):
            _llm(emulator).invoke("hi")
        assert elsewhere.requests == []  # the key never went anywhere else


# ------------------------------------------------------------------ cancellation


def _pool_state(client: Any) -> tuple[int, int]:
    """(busy connections, queued requests) of a pooled async client."""
    pool = client if isinstance(client, httpcore.AsyncConnectionPool) else client._transport._pool
    busy = sum(1 for c in pool.connections if not (c.is_idle() or c.is_closed()))
    return busy, len(pool._requests)


async def test_cancelled_calls_release_their_connections(emulator: WandbEmulator) -> None:
    llm = _llm(emulator, max_retries=0)
    emulator.fault(delay=2.0, times=None)
    for _ in range(20):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(llm.ainvoke("hi"), timeout=0.05)
    emulator.reset()
    emulator.fault(chunk_delay=0.2, times=None)

    async def read_two() -> None:
        seen = 0
        async for _ in llm.astream("tell me a story"):
            seen += 1
            if seen == 2:
                await asyncio.sleep(10)

    for _ in range(20):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_two(), timeout=0.5)
    await asyncio.sleep(0.1)
    client = _transport.async_client(llm._url)
    assert _pool_state(client) == (0, 0)  # nothing held by the 40 cancelled calls
    emulator.reset()
    assert (await llm.ainvoke("still works")).text


async def test_cancelled_router_stream_releases_connection(emulator: WandbEmulator) -> None:
    router = WandbRouter(models=MODELS, api_key=emulator.api_key, base_url=emulator.base_url)
    emulator.fault(chunk_delay=0.2, times=None)

    async def consume() -> None:
        async for _ in router.astream("hi"):
            pass

    for _ in range(10):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(), timeout=0.3)
    await asyncio.sleep(0.1)
    assert _pool_state(_transport.async_client(f"{emulator.base_url}/chat/completions")) == (0, 0)


# ------------------------------------------------------------------ nothing lost


def test_failed_call_does_not_mutate_messages(emulator: WandbEmulator) -> None:
    messages = [HumanMessage("hi"), HumanMessage(content=[{"type": "text", "text": "there"}])]
    before = [m.model_copy(deep=True) for m in messages]
    emulator.fault(status=400)
    with pytest.raises(Exception):  # noqa: B017, PT011
        _llm(emulator).invoke(messages)
    assert messages == before
    assert _llm(emulator).invoke(messages).text
    assert messages == before


class socket_free_port:
    """A port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return int(self.port)

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_rate_limit_that_is_not_the_concurrency_cap_spends_retries(emulator: WandbEmulator, router_factory: Any, sleeps: list[float]) -> None:
    """Only W&B's concurrency 429 is backpressure; any other 429 is a retryable failure."""
    from langchain_wandb_router import WandbConcurrencyLimitError, WandbRateLimitError

    body = {"error": {"code": "rate_limit_exceeded", "message": "rate limit: 60 requests per minute"}}
    emulator.fault(status=429, body=body, times=None)
    router = router_factory("Qwen/Qwen3-235B-A22B-Instruct-2507", max_retries=0)
    with pytest.raises(WandbRateLimitError) as caught:
        router.invoke("hi")
    assert not isinstance(caught.value, WandbConcurrencyLimitError)
    assert len(emulator.chat_requests()) == 1  # max_retries=0: one request, not 21
    router = router_factory("Qwen/Qwen3-235B-A22B-Instruct-2507", max_retries=2)
    with pytest.raises(WandbRateLimitError):
        router.invoke("hi")
    assert len(emulator.chat_requests()) == 4
