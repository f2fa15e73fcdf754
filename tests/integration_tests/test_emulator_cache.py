"""The emulator's prefix cache over HTTP: what replies report, through ChatWandb too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import CacheSettings, WandbEmulator
from langchain_wandb_router.testing._cache import prompt_token_list
from tests.integration_tests.test_emulator_load import FakeClock

FLASH = "deepseek-ai/DeepSeek-V4-Flash"
KIMI = "moonshotai/Kimi-K2.6"
QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"  # no cache-read price: no caching
DOCUMENT = "Please summarise the following report. " + "The quarter went well. " * 12
Factory = Callable[..., ChatWandb]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as c:
        yield c


def post(
    client: httpx.Client, emu: WandbEmulator, body: dict[str, Any]
) -> httpx.Response:
    return client.post(
        f"{emu.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {emu.api_key}"},
    )


def request(model: str = FLASH, text: str = DOCUMENT, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def usage_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()["usage"]
    return usage


def expected_hit(emu: WandbEmulator, block: int = 16) -> int:
    """Whole blocks in all but the last token of the last prompt received."""
    messages = emu.chat_requests()[-1].json["messages"]  # type: ignore[index]
    return (len(prompt_token_list(messages)) - 1) // block * block


def cache_read(message: Any) -> int | None:
    usage = message.usage_metadata
    assert usage is not None
    details: dict[str, int] = usage.get("input_token_details") or {}
    return details.get("cache_read")


# --------------------------------------------------------------- ChatWandb


def test_a_repeated_prompt_reports_cached_tokens_on_invoke(
    emulator: WandbEmulator, chat_factory: Factory
) -> None:
    llm = chat_factory(FLASH)
    assert cache_read(llm.invoke(DOCUMENT)) in (None, 0)
    second = llm.invoke(DOCUMENT)
    hit = expected_hit(emulator)
    assert hit >= 32
    assert cache_read(second) == hit
    assert [c.cached_tokens for c in emulator.cache_lookups()] == [0, hit]
    stats = emulator.cache_stats()
    assert stats.lookups[FLASH] == 2 and stats.hits[FLASH] == 1
    assert stats.cached_tokens[FLASH] == hit


def test_a_repeated_prompt_reports_cached_tokens_when_streamed(
    emulator: WandbEmulator, chat_factory: Factory
) -> None:
    llm = chat_factory(KIMI)
    llm.invoke(DOCUMENT)
    chunks = list(llm.stream(DOCUMENT))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    assert cache_read(total) == expected_hit(emulator)


def test_salts_keep_tenants_apart(
    emulator: WandbEmulator, chat_factory: Factory
) -> None:
    tenant_a = chat_factory(FLASH, cache_salt="tenant-a")
    tenant_b = chat_factory(FLASH, cache_salt="tenant-b")
    tenant_a.invoke(DOCUMENT)
    assert cache_read(tenant_b.invoke(DOCUMENT)) in (None, 0)
    assert cache_read(chat_factory(FLASH).invoke(DOCUMENT)) in (None, 0)
    assert cache_read(tenant_a.invoke(DOCUMENT)) == expected_hit(emulator)
    salts = [c.salt for c in emulator.cache_lookups()]
    assert salts == ["tenant-a", "tenant-b", None, "tenant-a"]


# ------------------------------------------------------------- on the wire


def test_stream_usage_chunk_carries_prompt_tokens_details(
    emulator: WandbEmulator, client: httpx.Client
) -> None:
    post(client, emulator, request())
    with client.stream(
        "POST",
        f"{emulator.base_url}/chat/completions",
        json=request(stream=True),
        headers={"Authorization": f"Bearer {emulator.api_key}"},
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["choices"] == []
    details = last["usage"]["prompt_tokens_details"]
    assert details == {"cached_tokens": expected_hit(emulator)}


def test_a_miss_and_a_short_prompt_report_no_details(
    emulator: WandbEmulator, client: httpx.Client
) -> None:
    assert "prompt_tokens_details" not in usage_of(post(client, emulator, request()))
    short = request(text="hi there")
    post(client, emulator, short)
    assert "prompt_tokens_details" not in usage_of(post(client, emulator, short))


def test_models_without_caching_report_none_but_record_the_salt(
    emulator: WandbEmulator, client: httpx.Client
) -> None:
    for _ in range(2):
        usage = usage_of(post(client, emulator, request(QWEN, cache_salt="t-1")))
        assert "prompt_tokens_details" not in usage
    assert [(c.model, c.salt) for c in emulator.cache_lookups()] == [(QWEN, "t-1")] * 2
    assert QWEN not in emulator.cache_stats().lookups


def test_block_size_rounds_the_reported_prefix(client: httpx.Client) -> None:
    with WandbEmulator(prefix_cache=CacheSettings(block=1)) as emu:
        post(client, emu, request())
        usage = usage_of(post(client, emu, request()))
        assert usage["prompt_tokens_details"]["cached_tokens"] == (
            usage["prompt_tokens"] - 1
        )
    with WandbEmulator(prefix_cache=CacheSettings(block=64)) as emu:
        post(client, emu, request())
        usage = usage_of(post(client, emu, request()))
        assert usage["prompt_tokens_details"]["cached_tokens"] == expected_hit(emu, 64)
        assert usage["prompt_tokens_details"]["cached_tokens"] % 64 == 0


def test_cached_blocks_expire_on_the_emulator_clock(client: httpx.Client) -> None:
    clock = FakeClock()
    with WandbEmulator(clock=clock, prefix_cache=CacheSettings(ttl=600.0)) as emu:
        post(client, emu, request())
        clock.now += 599.0
        assert "prompt_tokens_details" in usage_of(post(client, emu, request()))
        clock.now += 600.0
        assert "prompt_tokens_details" not in usage_of(post(client, emu, request()))
        assert emu.cache_stats().expired[FLASH] > 0


def test_memory_stays_within_the_capacity(client: httpx.Client) -> None:
    with WandbEmulator(prefix_cache=CacheSettings(capacity=8)) as emu:
        for i in range(20):
            post(client, emu, request(text=f"{i} {DOCUMENT}"))
        stats = emu.cache_stats()
        assert stats.blocks[FLASH] == 8
        assert stats.evicted[FLASH] > 0
        # The oldest prompt is gone; the newest is still there.
        assert "prompt_tokens_details" not in usage_of(
            post(client, emu, request(text=f"0 {DOCUMENT}"))
        )
        assert "prompt_tokens_details" in usage_of(
            post(client, emu, request(text=f"0 {DOCUMENT}"))
        )


@pytest.mark.parametrize("salt", ["", 7, ["a"]])
def test_a_salt_not_a_non_empty_string_gets_400(
    emulator: WandbEmulator, client: httpx.Client, salt: Any
) -> None:
    response = post(client, emulator, request(cache_salt=salt))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "cache_salt" in error["message"]
    assert emulator.cache_lookups() == []


def test_a_null_salt_is_no_salt(emulator: WandbEmulator, client: httpx.Client) -> None:
    post(client, emulator, request())
    usage = usage_of(post(client, emulator, request(cache_salt=None)))
    assert usage["prompt_tokens_details"]["cached_tokens"] == expected_hit(emulator)


def test_switching_the_cache_off_and_resetting(
    emulator: WandbEmulator, client: httpx.Client
) -> None:
    post(client, emulator, request())
    emulator.set_prefix_cache(False)
    assert "prompt_tokens_details" not in usage_of(post(client, emulator, request()))
    emulator.set_prefix_cache(True)
    assert "prompt_tokens_details" in usage_of(post(client, emulator, request()))
    emulator.reset()
    assert emulator.cache_lookups() == [] and emulator.cache_stats().blocks == {}
    assert "prompt_tokens_details" not in usage_of(post(client, emulator, request()))


def test_a_fixed_cached_tokens_overrides_the_cache(
    emulator: WandbEmulator, client: httpx.Client
) -> None:
    emulator.cached_tokens = 3
    for model in (QWEN, FLASH, FLASH):
        usage = usage_of(post(client, emulator, request(model)))
        assert usage["prompt_tokens_details"] == {"cached_tokens": 3}
    # The cache still saw the prompts.
    assert emulator.cache_lookups()[-1].cached_tokens == expected_hit(emulator)
