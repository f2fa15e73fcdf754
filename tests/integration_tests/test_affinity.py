"""Conversations stay on a warm prompt cache; tenants' caches stay apart.

Issue 18: with ``affinity=True`` (the default) a conversation's later turns go
to the route that served its previous turn while it is healthy and has room;
strategies choose only a conversation's first route; a failover moves the
conversation; the table lives in the router's state (shared by a fleet on
Redis) and forgets after ``affinity_ttl`` idle seconds. ``cache_salt`` is sent
as W&B's ``cache_salt``; the cost strategy weighs a conversation's cached
prompt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_wandb_router import ChatWandb, Route, WandbRouter
from langchain_wandb_router.router._affinity import continues, conversation_key
from langchain_wandb_router.state._interface import RouterState
from langchain_wandb_router.testing import WandbEmulator
from tests import redis_server

redis_url = redis_server.redis_url  # the session's redis-server
redis_cluster_url = redis_server.redis_cluster_url

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
GPT_OSS = "openai/gpt-oss-120b"
FLASH = "deepseek-ai/DeepSeek-V4-Flash"
THREE = [f"wandb/{QWEN}", f"wandb/{DSV31}", f"wandb/{GPT_OSS}"]
Factory = Callable[..., WandbRouter]


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def served(message: BaseMessage) -> str:
    return str(message.response_metadata["model_name"])


def seeded(router: WandbRouter, seed: int) -> WandbRouter:
    router._rt().rng = random.Random(seed)
    return router


# ------------------------------------------------------------ conversation keys


def test_the_conversation_key_prefers_ids_and_is_a_digest() -> None:
    hello = [SystemMessage("Be brief."), HumanMessage("Hello")]
    by_thread = conversation_key(hello, thread("t-1"))
    assert by_thread == conversation_key([HumanMessage("other")], thread("t-1"))
    assert by_thread != conversation_key(hello, thread("t-2"))
    session = {"metadata": {"session_id": "s-1"}}
    assert conversation_key(hello, session) == conversation_key(
        hello, {"configurable": {"session_id": "s-1"}}
    )
    later = [*hello, AIMessage("Hi!"), HumanMessage("And now?")]
    assert conversation_key(later, None) == conversation_key(hello, None)
    key = conversation_key(hello, thread("t-1"))
    assert key is not None and "t-1" not in key and "Hello" not in key
    assert conversation_key([SystemMessage("only")], None) is None


def test_only_later_turns_or_ids_look_their_route_up() -> None:
    hello = [HumanMessage("Hello")]
    assert not continues(hello, None)
    assert continues(hello, thread("t"))
    assert continues(hello, {"metadata": {"session_id": "s"}})
    assert continues([*hello, AIMessage("Hi"), HumanMessage("more")], None)


# ------------------------------------------------------------------ holding


def test_a_thread_stays_on_its_first_route_whatever_the_strategy(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = seeded(router_factory(THREE, strategy="weighted"), 3)
    first = router.invoke("hi", thread("t"))
    for turn in range(6):
        again = router.invoke(f"turn {turn}", thread("t"))
        assert served(again) == served(first)
        assert again.response_metadata["routing"]["reason"].startswith("affinity:")


def test_without_affinity_the_strategy_chooses_every_turn(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = seeded(router_factory(THREE, strategy="weighted", affinity=False), 3)
    models = {served(router.invoke("hi", thread("t"))) for _ in range(12)}
    assert len(models) > 1


def test_first_turns_alike_are_placed_by_the_strategy(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    # No thread id: conversations that open alike are not one conversation.
    router = seeded(router_factory(THREE, strategy="weighted"), 5)
    models = {served(router.invoke("Hello")) for _ in range(12)}
    assert len(models) > 1


def test_a_later_turn_without_an_id_goes_back_to_its_route(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = seeded(router_factory(THREE, strategy="weighted"), 7)
    opening = [SystemMessage("Be brief."), HumanMessage("Plan a trip to Lisbon")]
    first = router.invoke(opening)
    history = [*opening, AIMessage(first.text), HumanMessage("And Porto?")]
    for _ in range(5):
        assert served(router.invoke(history)) == served(first)


def test_a_failover_moves_the_conversation_and_it_stays(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:2], max_retries=0)
    assert served(router.invoke("hi", thread("t"))) == QWEN
    emulator.fault(status=500, model=QWEN, times=1)
    assert served(router.invoke("hi", thread("t"))) == DSV31
    # QWEN answers again, but the conversation's cache is on DSV31 now.
    assert served(router.invoke("hi", thread("t"))) == DSV31
    assert served(router.invoke("hi", thread("other"))) == QWEN


def test_a_full_route_is_not_waited_for(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:2], max_in_flight={QWEN: 1, DSV31: 1})
    assert served(router.invoke("hi", thread("t"))) == QWEN
    runtime = router._rt()
    lease = runtime.state.try_acquire(runtime.key_for(Route(f"wandb/{QWEN}")), 1)
    assert lease is not None
    try:  # its route has no room: the turn goes where there is some
        assert served(router.invoke("hi", thread("t"))) == DSV31
    finally:
        runtime.state.release(lease, "ok")


def test_the_route_is_forgotten_after_the_idle_ttl(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:2], max_retries=0, affinity_ttl=0.2)
    emulator.fault(status=500, model=QWEN, times=1)
    assert served(router.invoke("hi", thread("t"))) == DSV31
    assert served(router.invoke("hi", thread("t"))) == DSV31
    time.sleep(0.3)
    assert served(router.invoke("hi", thread("t"))) == QWEN


def test_plan_shows_affinity_without_writing_it(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:2], max_retries=0)
    emulator.fault(status=500, model=QWEN, times=1)
    router.invoke("hi", thread("t"))
    plan = router.plan("hi", thread("t"))
    assert [c["model"] for c in plan["candidates"]] == [DSV31, QWEN]
    assert plan["candidates"][0]["reason"].startswith("affinity:")
    assert router.plan("hi", thread("new"))["candidates"][0]["model"] == QWEN
    # The plan of a new thread wrote nothing: its first call still places it.
    assert served(router.invoke("hi", thread("new"))) == QWEN


async def test_async_turns_keep_the_route(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = seeded(router_factory(THREE, strategy="weighted"), 11)
    first = await router.ainvoke("hi", thread("a"))
    for _ in range(4):
        chunks = [c async for c in router.astream("more", thread("a"))]
        assert chunks[0].response_metadata["routing"]["model"] == served(first)


# ------------------------------------------------------------------ a fleet


@pytest.fixture(params=["redis", "redis-cluster"])
def shared(request: pytest.FixtureRequest) -> Iterator[Callable[[], RouterState]]:
    pytest.importorskip("redis")
    from langchain_wandb_router.state._redis import RedisState

    url = request.getfixturevalue(request.param.replace("-", "_") + "_url")
    made: list[RouterState] = []

    def state() -> RouterState:
        made.append(RedisState.from_url(url, on_error="closed"))
        return made[-1]

    yield state
    for one in made:
        one.close()


def test_a_fleet_keeps_a_thread_on_one_route(
    emulator: WandbEmulator,
    router_factory: Factory,
    shared: Callable[[], RouterState],
) -> None:
    worker_a = router_factory(THREE[:2], max_retries=0, state=shared())
    worker_b = router_factory(THREE[:2], max_retries=0, state=shared())
    name = f"fleet-{time.monotonic_ns()}"
    emulator.fault(status=500, model=QWEN, times=1)
    assert served(worker_a.invoke("hi", thread(name))) == DSV31
    # Another process serves the next turn: it finds the conversation's route.
    assert served(worker_b.invoke("hi", thread(name))) == DSV31
    assert served(worker_b.invoke("hi", thread(f"{name}-other"))) == QWEN


# --------------------------------------------------------------- cache salts


def test_a_cache_salt_is_sent_to_w_and_b_routes(
    emulator: WandbEmulator, router_factory: Factory, chat_factory: Any
) -> None:
    router = router_factory(THREE[:1], cache_salt="tenant-a")
    router.invoke("hi")
    assert emulator.chat_requests()[-1].json["cache_salt"] == "tenant-a"  # type: ignore[index]
    chat_factory(cache_salt="tenant-b").invoke("hi")
    assert emulator.chat_requests()[-1].json["cache_salt"] == "tenant-b"  # type: ignore[index]


def test_a_cache_salt_may_come_from_the_calls_context(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:1], cache_salt=lambda ctx: ctx.get("tenant"))
    router.invoke("hi", {"configurable": {"tenant": "acme"}})
    router.invoke("hi", {"configurable": {"tenant": "globex"}})
    router.invoke("hi")
    sent = [r.json.get("cache_salt") for r in emulator.chat_requests()]  # type: ignore[union-attr]
    assert sent == ["acme", "globex", None]


def test_a_bad_cache_salt_is_refused_before_any_request(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory(THREE[:1], cache_salt=lambda ctx: "")
    with pytest.raises(ValueError, match="cache_salt"):
        router.invoke("hi")
    with pytest.raises(ValueError, match="cache_salt"):
        ChatWandb(model=QWEN, api_key="k" * 40, cache_salt="")
    assert emulator.requests == []


def test_salts_keep_tenants_caches_apart(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    router = router_factory([f"wandb/{FLASH}"], cache_salt=lambda ctx: ctx.get("t"))
    long = "Summarise the following report. " * 40
    router.invoke(long, {"configurable": {"t": "a"}})
    again = router.invoke(long, {"configurable": {"t": "a"}})
    other = router.invoke(long, {"configurable": {"t": "b"}})
    assert again.usage_metadata["input_token_details"]["cache_read"] > 0
    details = other.usage_metadata.get("input_token_details") or {}
    assert not details.get("cache_read")


def test_a_cache_salt_function_cannot_be_serialized() -> None:
    import json

    from langchain_core.load import dumps

    router = WandbRouter(models=THREE[:1], api_key="k" * 40, cache_salt=lambda c: "x")
    record = json.loads(dumps(router))
    assert record["type"] == "not_implemented"
    assert "cache_salt function" in record["repr"]


# ----------------------------------------------------------- the cost strategy


def test_cost_prefers_the_warm_route_when_switching_costs_more(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    # QWEN is cheaper per input token (no separate cache price); FLASH reads
    # cached input at half its price. Once FLASH holds a long conversation,
    # staying there is cheaper than starting over on QWEN.
    routes = [f"wandb/{QWEN}", f"wandb/{FLASH}"]
    router = router_factory(routes, strategy="cost", max_retries=0, max_tokens=8)
    emulator.fault(status=500, model=QWEN, times=1)
    history: list[BaseMessage] = [HumanMessage("Here is a long document. " * 300)]
    first = router.invoke(history, thread("t"))
    assert served(first) == FLASH
    history += [AIMessage(first.text), HumanMessage("Summarise it.")]
    second = router.invoke(history, thread("t"))
    assert served(second) == FLASH
    assert "cached prompt" in second.response_metadata["routing"]["reason"]
    # A new conversation of the same size starts on the cheaper cold route.
    fresh = router.invoke(history, thread("fresh"))
    assert served(fresh) == QWEN


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_cached_prompt_tokens_are_priced_at_the_cache_read_price(
    emulator: WandbEmulator, chat_factory: Any, how: str
) -> None:
    from langchain_wandb_router.catalog import get_model_info
    from langchain_wandb_router.catalog._pricing import tokens_cost_usd

    llm = chat_factory(FLASH)
    long = "Read this contract carefully. " * 60

    def call() -> Any:
        if how == "invoke":
            return llm.invoke(long)
        chunks = list(llm.stream(long))
        whole = chunks[0]
        for chunk in chunks[1:]:
            whole += chunk
        return whole

    call()
    again = call()
    usage = again.usage_metadata
    cached = usage["input_token_details"]["cache_read"]
    assert 0 < cached < usage["input_tokens"]
    info = get_model_info(FLASH)
    assert info is not None and info.pricing.cache_read is not None
    expected = tokens_cost_usd(
        info.pricing, usage["input_tokens"], usage["output_tokens"], cached
    )
    assert again.response_metadata["cost_usd"] == pytest.approx(expected)
    full = tokens_cost_usd(info.pricing, usage["input_tokens"], usage["output_tokens"])
    assert expected is not None and full is not None and expected < full
