"""The emulator's prefix cache, without a server: tokens, blocks, TTL, memory."""

from __future__ import annotations

import random
from typing import Any

import pytest

from langchain_wandb_router.catalog._models import ModelInfo, list_models
from langchain_wandb_router.testing import CacheSettings, WandbEmulator
from langchain_wandb_router.testing.__main__ import build_parser, emulator_from_args
from langchain_wandb_router.testing._cache import (
    PrefixCache,
    block_hashes,
    cache_salt_error,
    prompt_token_list,
)
from langchain_wandb_router.testing._responder import build_reply
from tests.unit_tests.test_state import FakeClock

MODELS = {m.id: m for m in list_models(include_retired=False)}
FLASH = MODELS["deepseek-ai/DeepSeek-V4-Flash"]
GLM = MODELS["zai-org/GLM-5.2"]
QWEN = MODELS["Qwen/Qwen3-235B-A22B-Instruct-2507"]
# One user message of 200 characters: 4 framing tokens + 50 text tokens.
LONG = "a" * 200
LONG_TOKENS = 54


def body(*texts: str, salt: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat request whose messages alternate user and assistant turns."""
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]
    request: dict[str, Any] = {"model": "m", "messages": messages, **extra}
    if salt is not None:
        request["cache_salt"] = salt
    return request


def cache(clock: FakeClock | None = None, **settings: Any) -> PrefixCache:
    return PrefixCache(CacheSettings(**settings), clock or FakeClock())


def look(prefix: PrefixCache, request: dict[str, Any], info: ModelInfo = FLASH) -> int:
    return prefix.lookup(info, request, 0)


# -------------------------------------------------------------------- tokens


def test_prompt_tokens_are_as_many_as_the_reply_counts() -> None:
    rng = random.Random(7)
    for _ in range(500):
        texts = ["x" * rng.randrange(0, 40) for _ in range(rng.randrange(1, 6))]
        request = body(*texts)
        reply = build_reply(request, reasoning_on=False, call_id="c")
        assert len(prompt_token_list(request["messages"])) == reply.prompt_tokens


def test_a_longer_conversation_keeps_the_earlier_tokens() -> None:
    first = prompt_token_list(body("hello there, " * 8)["messages"])
    longer = prompt_token_list(body("hello there, " * 8, "an answer")["messages"])
    # Only the last text piece may change: it now runs into the next message.
    assert longer[: len(first) - 1] == first[:-1]


def test_messages_differing_beyond_their_text_diverge() -> None:
    call = [{"id": "1", "type": "function", "function": {"name": "f"}}]
    plain = body(LONG, "")["messages"]
    calling = [plain[0], {**plain[1], "tool_calls": call}]
    assert prompt_token_list(plain)[:54] == prompt_token_list(calling)[:54]
    assert prompt_token_list(plain)[54:] != prompt_token_list(calling)[54:]


def test_block_hashes_chain_whole_blocks_only() -> None:
    tokens = [str(i) for i in range(40)]
    hashes = block_hashes(tokens, 16, "root")
    assert len(hashes) == 2
    assert block_hashes(tokens[:32], 16, "root") == hashes
    assert block_hashes(tokens, 16, "other")[0] != hashes[0]
    changed = ["x", *tokens[1:]]
    # A change in the first block changes every later block's key too.
    assert not set(block_hashes(changed, 16, "root")) & set(hashes)


# ------------------------------------------------------------------- lookups


def test_a_repeated_prompt_reports_whole_blocks_short_of_its_last_token() -> None:
    prefix = cache()
    assert look(prefix, body(LONG)) == 0
    # 54 tokens: the first 53 hold three whole 16-token blocks.
    assert look(prefix, body(LONG)) == 48
    assert look(prefix, body(LONG, "more words here")) == 48


def test_an_exact_multiple_of_the_block_gives_up_its_last_block() -> None:
    prefix = cache(block=2)
    request = body("a" * 8)  # 4 framing + 2 text tokens: 6 tokens, 3 blocks
    look(prefix, request)
    assert look(prefix, request) == 4


def test_block_size_one_reports_the_shared_prefix_exactly() -> None:
    prefix = cache(block=1)
    look(prefix, body(LONG))
    assert look(prefix, body(LONG)) == LONG_TOKENS - 1
    # Shares the framing and the first 25 pieces (100 characters).
    assert look(prefix, body("a" * 100 + "b" * 100)) == 4 + 25


def test_prompts_shorter_than_a_block_report_nothing() -> None:
    prefix = cache()
    look(prefix, body("hello there"))
    assert look(prefix, body("hello there")) == 0


def test_salts_and_tools_isolate_reuse() -> None:
    prefix = cache()
    look(prefix, body(LONG, salt="tenant-a"))
    assert look(prefix, body(LONG)) == 0
    assert look(prefix, body(LONG, salt="tenant-b")) == 0
    assert look(prefix, body(LONG, salt="tenant-a")) == 48
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert look(prefix, body(LONG, salt="tenant-a", tools=tools)) == 0


def test_models_keep_their_own_blocks() -> None:
    prefix = cache()
    look(prefix, body(LONG), FLASH)
    assert look(prefix, body(LONG), GLM) == 0
    assert look(prefix, body(LONG), FLASH) == 48


def test_blocks_expire_after_the_ttl_unused() -> None:
    clock = FakeClock()
    prefix = cache(clock, ttl=600.0)
    look(prefix, body(LONG))
    clock.now += 599.0
    assert look(prefix, body(LONG)) == 48  # ...and refreshed
    clock.now += 599.0
    assert look(prefix, body(LONG)) == 48
    clock.now += 600.0
    assert look(prefix, body(LONG)) == 0
    assert prefix.stats().expired[FLASH.id] == 3


def test_memory_is_bounded_per_model_least_recently_used_first() -> None:
    prefix = cache(capacity=6)
    first, second = body("a" * 200), body("b" * 200)
    look(prefix, first)  # 3 blocks
    look(prefix, second)  # 3 more: full
    look(prefix, body("c" * 200))  # evicts the first prompt's blocks
    stats = prefix.stats()
    assert stats.blocks[FLASH.id] == 6 and stats.evicted[FLASH.id] == 3
    assert look(prefix, second) == 48
    assert look(prefix, first) == 0


def test_an_evicted_chain_loses_its_tail_first() -> None:
    prefix = cache(capacity=4)
    look(prefix, body(LONG))  # blocks 1-3
    look(prefix, body("y" * 64))  # 20 tokens: one block, fourth held
    look(prefix, body("x" * 64))  # one more: the oldest tail block goes
    assert look(prefix, body(LONG)) == 32


def test_models_without_a_cache_read_price_find_nothing_but_are_recorded() -> None:
    prefix = cache()
    look(prefix, body(LONG, salt="s"), QWEN)
    assert look(prefix, body(LONG, salt="s"), QWEN) == 0
    assert [(r.model, r.salt) for r in prefix.lookups()] == [(QWEN.id, "s")] * 2
    assert prefix.lookups()[0].prompt_tokens == LONG_TOKENS
    assert QWEN.id not in prefix.stats().lookups


def test_named_models_replace_the_catalog_rule() -> None:
    prefix = cache(models=frozenset({QWEN.id}))
    look(prefix, body(LONG), QWEN)
    assert look(prefix, body(LONG), QWEN) == 48
    look(prefix, body(LONG), FLASH)
    assert look(prefix, body(LONG), FLASH) == 0
    every = cache(models=frozenset({"*"}))
    look(every, body(LONG), QWEN)
    assert look(every, body(LONG), QWEN) == 48


def test_disabled_caches_nothing() -> None:
    prefix = cache(enabled=False)
    look(prefix, body(LONG))
    assert look(prefix, body(LONG)) == 0
    assert prefix.stats().blocks == {}


def test_stats_count_lookups_hits_and_tokens() -> None:
    prefix = cache()
    for _ in range(3):
        look(prefix, body(LONG))
    stats = prefix.stats()
    assert stats.lookups[FLASH.id] == 3
    assert stats.hits[FLASH.id] == 2
    assert stats.cached_tokens[FLASH.id] == 96
    prefix.clear()
    assert prefix.stats().lookups == {} and prefix.lookups() == []


def test_a_new_block_size_empties_the_cache() -> None:
    prefix = cache()
    look(prefix, body(LONG))
    prefix.configure(CacheSettings(ttl=5.0))
    assert look(prefix, body(LONG)) == 48
    prefix.configure(CacheSettings(block=8))
    assert look(prefix, body(LONG)) == 0


@pytest.mark.parametrize(
    "settings", [{"ttl": 0.0}, {"ttl": -1.0}, {"block": 0}, {"capacity": 0}]
)
def test_settings_refuse_impossible_figures(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cache"):
        CacheSettings(**settings)


@pytest.mark.parametrize(
    ("salt", "refused"),
    [(None, False), ("tenant", False), ("", True), (5, True), ([], True)],
)
def test_cache_salt_must_be_a_non_empty_string(salt: Any, refused: bool) -> None:
    error = cache_salt_error({"cache_salt": salt})
    assert (error is not None) is refused
    assert cache_salt_error({}) is None


# ------------------------------------------------------------ API and CLI


def test_emulator_settings_from_arguments_and_set_prefix_cache() -> None:
    emu = WandbEmulator(
        prefix_cache=CacheSettings(ttl=30.0, block=8, models=frozenset({"*"}))
    )
    try:
        assert emu.prefix_cache_settings == CacheSettings(
            ttl=30.0, block=8, models=frozenset({"*"})
        )
        emu.set_prefix_cache(False, capacity=10)
        assert emu.prefix_cache_settings == CacheSettings(enabled=False, capacity=10)
        with pytest.raises(ValueError, match="cache"):
            emu.set_prefix_cache(block=0)
    finally:
        emu.stop()


def test_cli_flags_set_the_prefix_cache() -> None:
    args = build_parser().parse_args(
        [
            "--no-prefix-cache",
            "--cache-ttl",
            "60",
            "--cache-block",
            "4",
            "--cache-capacity",
            "100",
            "--cache-model",
            QWEN.id,
            "--cache-model",
            GLM.id,
        ]
    )
    emu = emulator_from_args(args)
    try:
        assert emu.prefix_cache_settings == CacheSettings(
            False, 60.0, 4, 100, frozenset({QWEN.id, GLM.id})
        )
    finally:
        emu.stop()
    default = emulator_from_args(build_parser().parse_args([]))
    try:
        assert default.prefix_cache_settings == CacheSettings()
    finally:
        default.stop()
