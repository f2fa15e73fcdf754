"""ChatWandb against the emulator: the wire, reasoning, retries, errors and cost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from langchain_wandb_router import ChatWandb, RetryPolicy
from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbAuthenticationError,
    WandbConnectionError,
    WandbInvalidRequestError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbRateLimitError,
    WandbTimeoutError,
)
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
THINKING = "Qwen/Qwen3-235B-A22B-Thinking-2507"

Factory = Callable[..., ChatWandb]


@pytest.fixture
def make(chat_factory: Factory) -> Factory:
    return chat_factory



@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


def _collect(chunks: Any) -> AIMessageChunk:
    full = None
    for chunk in chunks:
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    return full


# ---------------------------------------------------------------- the wire


def test_request_carries_bare_id_auth_project_and_custom_headers(
    emulator: WandbEmulator, make: Factory
) -> None:
    llm = make(
        f"wandb/{QWEN}",
        project="team/proj",
        default_headers={"X-Custom-Header": "value"},
    )
    llm.invoke("hi")
    sent = emulator.chat_requests()[-1]
    assert sent.json is not None and sent.json["model"] == QWEN
    assert sent.headers["authorization"] == f"Bearer {emulator.api_key}"
    assert sent.headers["openai-project"] == "team/proj"
    assert sent.headers["x-custom-header"] == "value"
    assert sent.path == "/v1/chat/completions"


def test_connections_are_reused_across_calls_and_streams(emulator: WandbEmulator, make: Factory) -> None:
    llm = make()
    llm.invoke("one")
    _collect(llm.stream("two"))
    _collect(llm.stream("three"))
    llm.invoke("four")
    ports = {r.client_port for r in emulator.chat_requests()}
    assert len(ports) == 1  # one pooled keep-alive connection served all four


def test_stream_always_requests_usage(emulator: WandbEmulator, make: Factory) -> None:
    full = _collect(make().stream("hi"))
    assert emulator.chat_requests()[-1].json["stream_options"] == {
        "include_usage": True
    }  # type: ignore[index]
    assert full.usage_metadata is not None and full.usage_metadata["input_tokens"] > 0


def test_thinking_toggle_and_params_reach_the_wire(
    emulator: WandbEmulator, make: Factory
) -> None:
    llm = make(
        "zai-org/GLM-5.1", enable_thinking=False, max_tokens=5, reasoning_effort="high"
    )
    msg = llm.invoke("Explain photosynthesis in great detail please")
    body = emulator.chat_requests()[-1].json
    assert body is not None
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 5 and body["reasoning_effort"] == "high"
    assert "reasoning_content" not in msg.additional_kwargs  # thinking was switched off
    assert msg.response_metadata["finish_reason"] == "length"


def test_stop_sequences(make: Factory) -> None:
    msg = make().invoke("say something", stop=["answering"])
    assert "answering" not in msg.text


def test_served_model_and_provider_in_metadata(make: Factory) -> None:
    msg = make().invoke("hi", model="wandb/Qwen/Qwen3-30B-A3B-Instruct-2507")
    assert msg.response_metadata["model_name"] == "Qwen/Qwen3-30B-A3B-Instruct-2507"
    assert msg.response_metadata["model_provider"] == "wandb"


# ---------------------------------------------------------------- reasoning


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_both_field_names_invoke_and_stream(field: str) -> None:
    with WandbEmulator(reasoning_field=field) as emu:  # type: ignore[arg-type]
        llm = ChatWandb(model=THINKING, api_key=emu.api_key, base_url=emu.base_url)
        msg = llm.invoke("Is 9.11 larger than 9.9?")
        assert msg.additional_kwargs["reasoning_content"].startswith("The user wrote")
        assert msg.content_blocks[0]["type"] == "reasoning"
        full = _collect(llm.stream("Is 9.11 larger than 9.9?"))
        assert (
            full.additional_kwargs["reasoning_content"]
            == msg.additional_kwargs["reasoning_content"]
        )
        assert any(b["type"] == "reasoning" for b in full.content_blocks)


async def test_reasoning_async(make: Factory) -> None:
    llm = make(THINKING)
    msg = await llm.ainvoke("hello")
    assert msg.additional_kwargs["reasoning_content"]
    full = None
    async for chunk in llm.astream("hello"):
        full = chunk if full is None else full + chunk
    assert full is not None and full.additional_kwargs["reasoning_content"]


def test_non_reasoning_model_has_no_reasoning(make: Factory) -> None:
    msg = make().invoke("hello")
    assert "reasoning_content" not in msg.additional_kwargs


def test_v1_stream_keeps_reasoning_and_tool_call_blocks_apart(make: Factory) -> None:
    llm = make(THINKING, output_version="v1").bind_tools([get_weather])
    full = _collect(llm.stream("What is the weather in Paris?"))
    types = [b["type"] for b in full.content_blocks]
    assert types == ["reasoning", "tool_call"]
    reasoning, call = full.content_blocks
    assert reasoning["reasoning"].startswith("The user wrote")  # type: ignore[typeddict-item]
    assert call["name"] == "get_weather" and call["args"] == {"location": "Paris"}  # type: ignore[typeddict-item]
    assert full.tool_calls[0]["args"] == {"location": "Paris"}


def test_reasoning_is_sent_back_to_reasoning_models(
    emulator: WandbEmulator, make: Factory
) -> None:
    history = [
        HumanMessage("hi"),
        AIMessage("hello", additional_kwargs={"reasoning_content": "greet back"}),
        HumanMessage("again"),
    ]
    make("moonshotai/Kimi-K2.5").invoke(history)
    sent = emulator.chat_requests()[-1].json["messages"]  # type: ignore[index]
    assert sent[1]["reasoning_content"] == "greet back"
    make().invoke(history)
    assert "reasoning_content" not in emulator.chat_requests()[-1].json["messages"][1]  # type: ignore[index]


# ---------------------------------------------------------------- tools


def test_tool_call_stream_fragments_reassemble(make: Factory) -> None:
    full = _collect(
        make()
        .bind_tools([get_weather])
        .stream("What's the weather in San Francisco, CA?")
    )
    assert full.tool_calls == [
        {
            "name": "get_weather",
            "args": {"location": "San Francisco, CA"},
            "id": full.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]
    assert full.response_metadata["finish_reason"] == "tool_calls"


def test_invalid_tool_arguments_surface_as_invalid_tool_calls(
    emulator: WandbEmulator, make: Factory
) -> None:
    emulator.respond_with(
        tool_calls=[{"name": "get_weather", "arguments": '{"location": "Par'}]
    )
    llm = make().bind_tools([get_weather])
    msg = llm.invoke("weather?")
    assert msg.tool_calls == []
    assert msg.invalid_tool_calls[0]["name"] == "get_weather"
    assert msg.invalid_tool_calls[0]["args"] == '{"location": "Par'
    # Streamed, langchain-core's partial-JSON parser completes a merely truncated
    # object, so the stream case uses arguments no parser can read.
    emulator.respond_with(
        tool_calls=[{"name": "get_weather", "arguments": "{location: Paris}"}]
    )
    full = _collect(llm.stream("weather?"))
    assert full.invalid_tool_calls and not full.tool_calls


# ---------------------------------------------------------------- retries


def test_retries_then_succeeds_and_honours_retry_after(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=429, headers={"Retry-After": "1.5"})
    emulator.fault(status=503)
    msg = make().invoke("hi")
    assert msg.text
    assert len(emulator.chat_requests()) == 3
    assert sleeps[0] == 1.5
    assert 0.0 <= sleeps[1] <= 1.0  # second retry: jittered backoff, base 0.5 * 2


def test_max_retries_bounds_the_attempts(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=500, times=None)
    with pytest.raises(WandbAPIError):
        make(max_retries=2).invoke("hi")
    assert len(emulator.chat_requests()) == 3
    emulator.reset()
    emulator.fault(status=500, times=None)
    with pytest.raises(WandbAPIError):
        make(max_retries=0).invoke("hi")
    assert len(emulator.chat_requests()) == 1


async def test_async_retries(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=503, times=2)
    assert (await make().ainvoke("hi")).text
    assert len(emulator.chat_requests()) == 3
    assert len(sleeps) == 2


def test_stream_retries_before_first_chunk(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=503)
    emulator.fault(drop_after=0)
    full = _collect(make().stream("hi"))
    assert full.text.startswith("Hello!")
    assert len(emulator.chat_requests()) == 3


def test_stream_never_retries_after_first_chunk(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(drop_after=3)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError):
        for chunk in make().stream("tell me something long"):
            received.append(chunk.text)
    assert len(emulator.chat_requests()) == 1
    assert "".join(
        received
    )  # what arrived was delivered, and nothing else was spliced on


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
def test_non_retryable_statuses_are_not_retried(
    emulator: WandbEmulator, make: Factory, sleeps: list[float], status: int
) -> None:
    emulator.fault(status=status)
    with pytest.raises(Exception):  # noqa: B017, PT011 - types asserted below
        make().invoke("hi")
    assert len(emulator.chat_requests()) == 1
    assert sleeps == []


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, WandbAuthenticationError),
        (402, WandbQuotaError),
        (403, WandbPermissionError),
        (404, WandbModelNotFoundError),
        (400, WandbInvalidRequestError),
        (429, WandbRateLimitError),
        (500, WandbAPIError),
        (503, WandbAPIError),
    ],
)
def test_each_error_class_from_the_wire(
    emulator: WandbEmulator, make: Factory, status: int, cls: type
) -> None:
    emulator.fault(status=status, times=None)
    with pytest.raises(cls) as info:
        make(max_retries=0).invoke("hi")
    assert emulator.api_key not in str(info.value)
    with pytest.raises(cls):
        _collect(make(max_retries=0).stream("hi"))


def test_wrong_key_and_missing_bearer(emulator: WandbEmulator) -> None:
    llm = ChatWandb(model=QWEN, api_key="wrong-key", base_url=emulator.base_url)
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        llm.invoke("hi")


def test_bad_project_gives_401() -> None:
    with WandbEmulator(projects={"team/proj"}) as emu:
        llm = ChatWandb(
            model=QWEN, api_key=emu.api_key, base_url=emu.base_url, project="team/other"
        )
        with pytest.raises(WandbAuthenticationError, match="team/project"):
            llm.invoke("hi")
        ok = ChatWandb(
            model=QWEN, api_key=emu.api_key, base_url=emu.base_url, project="team/proj"
        )
        assert ok.invoke("hi").text


def test_unknown_model_404(make: Factory) -> None:
    with pytest.raises(WandbModelNotFoundError, match="some-org/not-served"):
        make("some-org/not-served").invoke("hi")


def test_html_502_and_truncated_json(emulator: WandbEmulator, make: Factory) -> None:
    emulator.fault(
        status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>"
    )
    with pytest.raises(WandbAPIError, match="HTML"):
        make(max_retries=0).invoke("hi")
    emulator.fault(truncate=True)
    with pytest.raises(WandbAPIError, match="not valid JSON"):
        make(max_retries=0).invoke("hi")


def test_detail_body_400(emulator: WandbEmulator, make: Factory) -> None:
    emulator.fault(
        status=400, body={"detail": "frequency_penalty is not supported for this model"}
    )
    with pytest.raises(
        WandbInvalidRequestError, match="frequency_penalty is not supported"
    ):
        make().invoke("hi")


def test_timeout_and_connection_errors(
    emulator: WandbEmulator, sleeps: list[float], retry_policy: RetryPolicy
) -> None:
    emulator.fault(delay=1.0)
    slow = ChatWandb(
        model=QWEN,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        timeout=0.2,
        max_retries=0,
    )
    with pytest.raises(WandbTimeoutError):
        slow.invoke("hi")
    refused = ChatWandb(
        model=QWEN,
        api_key="k",
        base_url="http://127.0.0.1:9/v1",
        max_retries=1,
        retry_policy=retry_policy,
    )
    with pytest.raises(WandbConnectionError):
        refused.invoke("hi")
    assert len(sleeps) == 1


def test_image_to_text_only_model_is_refused_before_network(
    emulator: WandbEmulator, make: Factory
) -> None:
    image = HumanMessage(
        content=[
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    with pytest.raises(WandbInvalidRequestError, match="does not accept images"):
        make().invoke([image])
    assert emulator.chat_requests() == []
    assert make("moonshotai/Kimi-K2.5").invoke([image]).text


# ---------------------------------------------------------------- cost and secrets


def test_cost_on_invoke_and_final_stream_chunk(make: Factory) -> None:
    llm = make("meta-llama/Llama-3.3-70B-Instruct")
    msg = llm.invoke("hello")
    usage = msg.usage_metadata
    assert usage is not None
    expected = (usage["input_tokens"] * 0.71 + usage["output_tokens"] * 0.71) / 1e6
    assert msg.response_metadata["cost_usd"] == pytest.approx(expected)
    chunks = list(llm.stream("hello"))
    priced = [c for c in chunks if "cost_usd" in c.response_metadata]
    assert len(priced) == 1 and priced[0].usage_metadata is not None
    assert sum(c.response_metadata.get("cost_usd", 0) for c in chunks) == pytest.approx(
        expected
    )


def test_cached_tokens_use_cache_price(emulator: WandbEmulator, make: Factory) -> None:
    emulator.cached_tokens = 4
    msg = make("deepseek-ai/DeepSeek-V4-Flash").invoke("hello there my friend")
    usage = msg.usage_metadata
    assert usage is not None and usage["input_token_details"]["cache_read"] == 4
    expected = (
        (usage["input_tokens"] - 4) * 0.14 + 4 * 0.07 + usage["output_tokens"] * 0.28
    ) / 1e6
    assert msg.response_metadata["cost_usd"] == pytest.approx(expected)


def test_unknown_price_means_no_cost(emulator: WandbEmulator, make: Factory) -> None:
    emulator.add_model("wandb-artifact:///team/proj/lora:v1")
    msg = make("wandb-artifact:///team/proj/lora:v1").invoke("hi")
    assert "cost_usd" not in msg.response_metadata


def test_key_never_in_logs_errors_or_metadata(
    emulator: WandbEmulator,
    make: Factory,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "langchain_wandb_router"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    emulator.fault(status=503)
    llm = make()
    msg = llm.invoke("hi")
    emulator.fault(status=401)
    with pytest.raises(WandbAuthenticationError) as info:
        llm.invoke("hi")
    text = (
        caplog.text
        + str(info.value)
        + repr(info.value)
        + str(msg.response_metadata)
        + repr(llm)
    )
    assert "retry 1/2" in caplog.text  # the log did record the retry...
    assert emulator.api_key not in text  # ...but never the key


# ---------------------------------------------------------------- transport seam


def test_explicit_httpx_clients_are_used() -> None:
    """http_client/http_async_client replace the pool: e.g. an httpx.MockTransport."""
    import httpx

    seen: list[httpx.Request] = []
    body = {
        "id": "x",
        "model": QWEN,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "mocked"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body)

    transport = httpx.MockTransport(handler)
    llm = ChatWandb(
        model=QWEN,
        api_key="k",
        base_url="https://gateway.example/v1",
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )
    assert llm.invoke("hi").text == "mocked"
    import asyncio

    assert asyncio.run(llm.ainvoke("hi")).text == "mocked"
    assert [str(r.url) for r in seen] == ["https://gateway.example/v1/chat/completions"] * 2
    assert seen[0].headers["authorization"] == "Bearer k"
