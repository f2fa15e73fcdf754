"""The emulator drives agents: tool results answered, structured outputs, n, logprobs.

Each test fails on the emulator before issue 16: a ``ToolStrategy`` agent
called its tool until the recursion limit, ``n`` and ``logprobs`` were
ignored, and a URL with a query string got 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import httpx
import pytest
from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
QUESTION = "What is the weather in Paris?"
Factory = Callable[..., ChatWandb]
# A regression loops; this limit turns the loop into a failure, not a hang.
BOUNDED: RunnableConfig = {"recursion_limit": 10}


class Forecast(BaseModel):
    """A weather forecast for a city."""

    city: str = Field(min_length=1, max_length=40)
    temperature: float = Field(ge=-50, le=60)
    sky: Literal["clear", "cloudy", "rain"]
    hourly: list[int] = Field(min_length=2, max_length=3)
    note: str | None = None


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


@pytest.fixture
def make(chat_factory: Factory) -> Factory:
    return chat_factory


def _tool_history() -> list[Any]:
    call = {"name": "get_weather", "args": {"location": "Paris"}, "id": "c1"}
    return [
        HumanMessage(QUESTION),
        AIMessage("", tool_calls=[call]),
        ToolMessage("It is sunny in Paris.", tool_call_id="c1"),
    ]


def _check_forecast_run(out: dict[str, Any], emulator: WandbEmulator) -> None:
    forecast = out["structured_response"]
    assert isinstance(forecast, Forecast)
    assert forecast.city == "Paris"
    assert 2 <= len(forecast.hourly) <= 3
    calls = [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert [c.tool_calls[0]["name"] for c in calls] == ["get_weather", "Forecast"]
    bodies = [r.json for r in emulator.chat_requests()]
    assert len(bodies) == 2
    assert all(b is not None and b["tool_choice"] == "required" for b in bodies)


def test_tool_strategy_agent_ends_with_its_structured_response(
    emulator: WandbEmulator, make: Factory
) -> None:
    agent = create_agent(
        make(), tools=[get_weather], response_format=ToolStrategy(Forecast)
    )
    _check_forecast_run(
        agent.invoke({"messages": [HumanMessage(QUESTION)]}, config=BOUNDED), emulator
    )


async def test_tool_strategy_agent_ends_async_and_streaming(
    emulator: WandbEmulator, make: Factory
) -> None:
    agent = create_agent(
        make(streaming=True),
        tools=[get_weather],
        response_format=ToolStrategy(Forecast),
    )
    out = await agent.ainvoke({"messages": [HumanMessage(QUESTION)]}, config=BOUNDED)
    _check_forecast_run(out, emulator)


def test_tool_strategy_agent_without_a_tool_to_use_answers_at_once(
    emulator: WandbEmulator, make: Factory
) -> None:
    agent = create_agent(
        make(), tools=[get_weather], response_format=ToolStrategy(Forecast)
    )
    out = agent.invoke({"messages": [HumanMessage("Hello there")]}, config=BOUNDED)
    assert isinstance(out["structured_response"], Forecast)
    assert len(emulator.chat_requests()) == 1


def test_required_tool_after_a_tool_result_is_the_schema_tool(make: Factory) -> None:
    llm = make().bind_tools([get_weather, Forecast], tool_choice="required")
    msg = llm.invoke(_tool_history())
    assert isinstance(msg, AIMessage)
    assert [c["name"] for c in msg.tool_calls] == ["Forecast"]
    forecast = Forecast.model_validate(msg.tool_calls[0]["args"])
    assert forecast.city == "Paris"
    assert "note" not in msg.tool_calls[0]["args"]  # minimal: required keys only


def test_parallel_tool_results_are_answered_in_text(make: Factory) -> None:
    calls = [
        {"name": "get_weather", "args": {"location": city}, "id": f"c{i}"}
        for i, city in enumerate(["Paris", "Rome"])
    ]
    history = [
        HumanMessage("What is the weather in Paris and in Rome?"),
        AIMessage("", tool_calls=calls),
        ToolMessage("It is sunny in Paris.", tool_call_id="c0"),
        ToolMessage("It rains in Rome.", tool_call_id="c1"),
    ]
    msg = make().bind_tools([get_weather]).invoke(history)
    assert msg.tool_calls == []
    assert "It is sunny in Paris." in msg.text and "It rains in Rome." in msg.text


def test_json_schema_output_after_a_tool_result_is_schema_valid(make: Factory) -> None:
    # As a ProviderStrategy agent asks: tools bound, a json_schema response format.
    with_tools: Any = make().bind_tools([get_weather])
    forecast = with_tools.with_structured_output(Forecast).invoke(_tool_history())
    assert isinstance(forecast, Forecast)
    assert forecast.city == "Paris"


# ------------------------------------------------------------------------- n


def test_n_gives_that_many_choices(emulator: WandbEmulator, make: Factory) -> None:
    result = make(n=3).generate([[HumanMessage("hi")]])
    texts = [g.text for g in result.generations[0]]
    assert len(texts) == 3 and len(set(texts)) == 1 and texts[0].startswith("Hello!")
    single = make().invoke("hi").usage_metadata
    usage = result.llm_output["token_usage"] if result.llm_output else {}
    assert single is not None
    assert usage["prompt_tokens"] == single["input_tokens"]
    assert usage["completion_tokens"] == 3 * single["output_tokens"]


def _post(
    emulator: WandbEmulator, body: dict[str, Any], path: str = ""
) -> httpx.Response:
    return httpx.post(
        f"{emulator.base_url}/chat/completions{path}",
        json={
            "model": QWEN,
            "messages": [{"role": "user", "content": "hi there"}],
            **body,
        },
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [
        line[6:] for line in response.text.splitlines() if line.startswith("data: ")
    ]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_n_streams_each_choice_under_its_index(emulator: WandbEmulator) -> None:
    events = _events(_post(emulator, {"n": 2, "stream": True}))
    texts = {0: "", 1: ""}
    finishes = {}
    for event in events[:-1]:
        (choice,) = event["choices"]
        texts[choice["index"]] += choice["delta"].get("content") or ""
        if choice["finish_reason"]:
            finishes[choice["index"]] = choice["finish_reason"]
    assert texts[0] == texts[1] and texts[0].startswith("Hello!")
    assert finishes == {0: "stop", 1: "stop"}
    assert events[-1]["choices"] == []
    single = _post(emulator, {}).json()["usage"]
    assert events[-1]["usage"]["completion_tokens"] == 2 * single["completion_tokens"]


def test_n_choices_with_tool_calls_have_their_own_ids(emulator: WandbEmulator) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    body = _post(emulator, {"n": 2, "tools": tools, "tool_choice": "required"}).json()
    ids = [c["message"]["tool_calls"][0]["id"] for c in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    "bad",
    [{"n": 0}, {"n": "2"}, {"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 21}],
)
def test_invalid_n_or_logprobs_get_400(
    emulator: WandbEmulator, bad: dict[str, Any]
) -> None:
    response = _post(emulator, bad)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# ------------------------------------------------------------------ logprobs


def test_logprobs_cover_the_content(make: Factory) -> None:
    msg = make(logprobs=True, top_logprobs=2).invoke("hi")
    content = msg.response_metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == msg.text
    for item in content:
        assert item["bytes"] == list(item["token"].encode())
        assert item["logprob"] < 0
        top = item["top_logprobs"]
        assert len(top) == 2 and top[0]["token"] == item["token"]
        assert top[0]["logprob"] > top[1]["logprob"]
    plain = make().invoke("hi")
    assert plain.response_metadata.get("logprobs") is None


def test_streamed_chunks_carry_the_logprobs_of_their_delta(
    emulator: WandbEmulator,
) -> None:
    events = _events(
        _post(emulator, {"stream": True, "logprobs": True, "top_logprobs": 0})
    )
    seen = 0
    for event in events[:-1]:
        (choice,) = event["choices"]
        piece = choice["delta"].get("content")
        if piece:
            tokens = [t["token"] for t in choice["logprobs"]["content"]]
            assert tokens == [piece]
            assert choice["logprobs"]["content"][0]["top_logprobs"] == []
            seen += 1
        else:
            assert choice["logprobs"] is None
    assert seen > 1


def test_streamed_logprobs_reach_the_message(make: Factory) -> None:
    chunks = list(make(logprobs=True).stream("hi"))
    tokens = [
        t["token"]
        for c in chunks
        for t in (c.response_metadata.get("logprobs") or {}).get("content", [])
    ]
    assert "".join(tokens) == "".join(c.text for c in chunks)


# ------------------------------------------------------------- query strings


def test_paths_with_query_strings_are_served(emulator: WandbEmulator) -> None:
    response = _post(emulator, {}, "?foo=1")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].startswith("Hello!")
    models = httpx.get(
        f"{emulator.base_url}/models?x=y",
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10,
    )
    assert models.status_code == 200 and QWEN in [
        m["id"] for m in models.json()["data"]
    ]
    (recorded,) = emulator.chat_requests()
    assert recorded.path == "/v1/chat/completions?foo=1"
    assert _post(emulator, {}, "/other?foo=1").status_code == 404


def test_a_client_default_query_reaches_the_emulator(
    emulator: WandbEmulator, make: Factory
) -> None:
    assert make(default_query={"api-version": "2026-01"}).invoke("hi").text
    assert emulator.chat_requests()[-1].path.endswith("?api-version=2026-01")
