"""Cost callbacks and the live catalog refresh, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_wandb_router import ChatWandb, WandbRouter, get_wandb_cost_callback
from langchain_wandb_router.catalog._live import refresh_models
from langchain_wandb_router.catalog._models import get_model_info
from langchain_wandb_router.errors import WandbAuthenticationError
from langchain_wandb_router.integrations.cost import WandbCostCallbackHandler
from langchain_wandb_router.testing import WandbEmulator

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
GPT = "openai/gpt-oss-20b"


def _expected(model: str, usage: dict) -> float:
    info = get_model_info(model)
    assert info is not None and info.pricing.input is not None and info.pricing.output is not None
    return (usage["input_tokens"] * info.pricing.input + usage["output_tokens"] * info.pricing.output) / 1e6


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "sunny"


def test_cost_callback_sums_per_model_invoke_and_stream(emulator: WandbEmulator) -> None:
    creds = {"api_key": emulator.api_key, "base_url": emulator.base_url}
    llama, gpt = ChatWandb(model=LLAMA, **creds), ChatWandb(model=GPT, **creds)
    with get_wandb_cost_callback() as cb:
        a = llama.invoke("hello")
        full = None
        for chunk in gpt.stream("hello there"):
            full = chunk if full is None else full + chunk
    assert a.usage_metadata is not None and full is not None and full.usage_metadata is not None
    expected_llama = _expected(LLAMA, dict(a.usage_metadata))
    expected_gpt = _expected(GPT, dict(full.usage_metadata))
    assert cb.cost_by_model[LLAMA] == pytest.approx(expected_llama)
    assert cb.cost_by_model[GPT] == pytest.approx(expected_gpt)
    assert cb.total_cost_usd == pytest.approx(expected_llama + expected_gpt)
    assert cb.calls == 2
    assert cb.input_tokens == a.usage_metadata["input_tokens"] + full.usage_metadata["input_tokens"]
    assert cb.complete


async def test_cost_callback_async_through_router(emulator: WandbEmulator) -> None:
    router = WandbRouter(models=[LLAMA], api_key=emulator.api_key, base_url=emulator.base_url)
    with get_wandb_cost_callback() as cb:
        msg = await router.ainvoke("hello")
        async for _ in router.astream("hello"):
            pass
    assert msg.usage_metadata is not None
    assert cb.calls == 2
    assert cb.total_cost_usd == pytest.approx(2 * _expected(LLAMA, dict(msg.usage_metadata)))
    assert set(cb.cost_by_model) == {LLAMA}


def test_cost_through_an_agent(emulator: WandbEmulator) -> None:
    router = WandbRouter(models=[LLAMA], api_key=emulator.api_key, base_url=emulator.base_url)
    agent = create_agent(model=router, tools=[get_weather])
    with get_wandb_cost_callback() as cb:
        agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    assert cb.calls == 2  # tool call + final answer
    assert cb.total_cost_usd > 0


def test_unknown_prices_are_unknown_not_zero(emulator: WandbEmulator) -> None:
    lora = "wandb-artifact:///team/proj/lora:v1"
    emulator.add_model(lora)
    llm = ChatWandb(model=lora, api_key=emulator.api_key, base_url=emulator.base_url)
    handler = WandbCostCallbackHandler()
    llm.invoke("hi", config={"callbacks": [handler]})
    assert handler.cost_by_model == {lora: None}
    assert handler.unpriced_models == {lora}
    assert not handler.complete
    assert "unpriced" in repr(handler)


def test_refresh_models_marks_live_and_new(emulator: WandbEmulator) -> None:
    emulator.live_models = ["Qwen/Qwen3-235B-A22B-Instruct-2507", "brand/new-model"]
    live = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url, project="team/p")
    assert live.known
    assert live.new_ids == ("brand/new-model",)
    assert "openai/gpt-oss-20b" in live.missing_ids
    info = get_model_info("Qwen/Qwen3-235B-A22B-Instruct-2507")
    assert info is not None and info.live is True
    gpt = get_model_info("openai/gpt-oss-20b")
    assert gpt is not None and gpt.live is False
    sent = emulator.requests[-1]
    assert sent.path == "/v1/models"
    assert sent.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert sent.headers["openai-project"] == "team/p"


def test_empty_model_list_means_unknown(emulator: WandbEmulator) -> None:
    emulator.live_models = []
    live = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url)
    assert not live.known
    assert live.missing_ids == ()
    info = get_model_info("Qwen/Qwen3-235B-A22B-Instruct-2507")
    assert info is not None and info.live is None


def test_refresh_models_cache(emulator: WandbEmulator, tmp_path: Path) -> None:
    cache = tmp_path / "models.json"
    first = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url, cache_path=str(cache))
    assert not first.from_cache
    assert json.loads(cache.read_text())["ids"] == list(first.ids)
    before = len(emulator.requests)
    second = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url, cache_path=str(cache))
    assert second.from_cache and second.ids == first.ids
    assert len(emulator.requests) == before
    refresh_models(api_key=emulator.api_key, base_url=emulator.base_url, cache_path=str(cache), max_age_seconds=0)
    assert len(emulator.requests) == before + 1


def test_refresh_models_errors(emulator: WandbEmulator) -> None:
    with pytest.raises(WandbAuthenticationError):
        refresh_models(api_key="wrong", base_url=emulator.base_url)
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        refresh_models(base_url=emulator.base_url)
