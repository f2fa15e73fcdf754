"""ChatWandb's fast paths change nothing a caller or W&B can see.

Every scenario runs twice against a fresh emulator, with the fast paths on
and then switched off with ChatWandb's ``disable_fast_paths=True``, so that all
of it goes through langchain-openai's converters. The request bodies the
emulator receives must be the same, key order included, and so must what the
caller gets back: messages, stream chunks, parsed structured output. The other
ways off (the environment variable, a release outside the proven range) are
checked end to end on a few scenarios, with the parent's converters watched.

Request-building and cached-parameter details are checked here too, against
BaseChatOpenAI itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_openai.chat_models import base as openai_base
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import BaseModel, Field

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.chat import _fast_chunks, _fast_messages
from langchain_wandb_router.chat._structured import response_format_for
from langchain_wandb_router.errors import WandbInvalidRequestError
from langchain_wandb_router.testing import WandbEmulator
from langchain_wandb_router.transport._http import encode_body
from tests.unit_tests.test_fastpath import OFF_WAYS, switched_off

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
THINKING = "Qwen/Qwen3-235B-A22B-Thinking-2507"
KEY = "wandb-test-key-0123456789abcdef0123456789"

Mode = Literal["invoke", "stream", "ainvoke", "astream"]
Version = Literal["v0", "v1"]


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the weather forecast for a city."""
    return f"Sunny in {city} for {days} days."


class Trip(BaseModel):
    """A trip plan."""

    city: str = Field(description="where to go")
    days: int
    budget: float


def agent_history() -> list[BaseMessage]:
    """User turns, tool calls (non-ASCII, nested, float args), results, answers."""
    calls = [
        {
            "name": "get_weather",
            "args": {"city": "Zürich", "days": 3, "extra": {"units": ["°C", 1.5]}},
            "id": "call_a",
        },
        {"name": "get_weather", "args": {"city": "Köln"}, "id": "call_b"},
    ]
    return [
        SystemMessage("You plan trips.", name="planner"),
        HumanMessage("What is the weather in Zürich and Köln?", name="alice"),
        AIMessage("", tool_calls=calls),
        ToolMessage("Rain, 9 °C", tool_call_id="call_a"),
        ToolMessage("Sun, 14 °C", tool_call_id="call_b"),
        AIMessage("Rain in Zürich, sun in Köln.", name="planner"),
        HumanMessage("And tomorrow in Köln?"),
    ]


def reasoning_history() -> list[BaseMessage]:
    """A conversation whose earlier answer carries reasoning (sent back to W&B)."""
    return [
        HumanMessage("Is 9.11 larger than 9.9?"),
        AIMessage(
            "No, 9.9 is larger.",
            additional_kwargs={"reasoning_content": "Compare 0.11 with 0.90."},
        ),
        HumanMessage("And 9.2 against 9.19?"),
    ]


@dataclass(frozen=True)
class Scenario:
    """One representative call: the model's settings, the runnable, the input."""

    model: str
    build: Callable[[ChatWandb], Runnable[Any, Any]]
    input: Callable[[], Any]
    settings: tuple[tuple[str, Any], ...] = ()
    call_kwargs: tuple[tuple[str, Any], ...] = ()
    fast_messages: bool = True
    """Whether the input is a shape the message fast path covers."""


def _same(llm: ChatWandb) -> Runnable[Any, Any]:
    return llm


SCENARIOS: dict[str, Scenario] = {
    "plain": Scenario(QWEN, _same, lambda: "Hello there, tell me a story"),
    "tools bound": Scenario(
        QWEN,
        lambda llm: llm.bind_tools([get_weather]),
        lambda: "What is the weather forecast in Paris?",
    ),
    "tool-call history": Scenario(
        QWEN, lambda llm: llm.bind_tools([get_weather]), agent_history
    ),
    "structured output (json_schema)": Scenario(
        QWEN,
        lambda llm: llm.with_structured_output(Trip, include_raw=True),
        lambda: "Plan 'Lisbon' for 4 days on 1200.5 euros",
    ),
    "stop": Scenario(
        QWEN,
        _same,
        lambda: "say something nice",
        call_kwargs=(("stop", ["answering"]),),
    ),
    "configured": Scenario(
        QWEN,
        _same,
        lambda: [SystemMessage("Be brief."), HumanMessage("Describe Köln")],
        settings=(
            ("temperature", 0.3),
            ("max_tokens", 7),
            ("stop", ["zzz"]),
            ("model_kwargs", {"top_k": 5}),
            ("extra_body", {"repetition_penalty": 1.1}),
        ),
    ),
    "reasoning model": Scenario(THINKING, _same, reasoning_history),
    "reasoning model, thinking off": Scenario(
        THINKING,
        _same,
        lambda: "Think about 2 + 2",
        settings=(("enable_thinking", False), ("reasoning_effort", "low")),
    ),
    "list content (parent path)": Scenario(
        QWEN,
        _same,
        lambda: [HumanMessage([{"type": "text", "text": "Hello in blocks"}])],
        fast_messages=False,
    ),
}


# ---------------------------------------------------------------- running them


def _normalize(value: Any) -> Any:
    """Comparable form of a result: run ids (random per call) set aside."""
    if isinstance(value, BaseMessage):
        dumped = value.model_dump()
        dumped.pop("id")
        return (type(value).__name__, dumped, sorted(value.model_fields_set))
    if isinstance(value, BaseModel):
        return (type(value).__name__, value.model_dump())
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    return value


async def _drain(chunks: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in chunks]


async def _call(
    runnable: Runnable[Any, Any], mode: Mode, input_: Any, **kw: Any
) -> Any:
    if mode == "invoke":
        return runnable.invoke(input_, **kw)
    if mode == "stream":
        return list(runnable.stream(input_, **kw))
    if mode == "ainvoke":
        return await runnable.ainvoke(input_, **kw)
    return await _drain(runnable.astream(input_, **kw))


@dataclass
class Outcome:
    bodies: list[str]
    result: Any


async def _run(
    scenario: Scenario, mode: Mode, version: Version, **switch: Any
) -> Outcome:
    with WandbEmulator() as emu:
        llm = ChatWandb(
            model=scenario.model,
            api_key=emu.api_key,
            base_url=emu.base_url,
            max_retries=0,
            output_version=version,
            **dict(scenario.settings),
            **switch,
        )
        result = await _call(
            scenario.build(llm), mode, scenario.input(), **dict(scenario.call_kwargs)
        )
        # json.dumps keeps the received key order: bodies must match byte for byte.
        bodies = [json.dumps(r.json, ensure_ascii=False) for r in emu.chat_requests()]
    return Outcome(bodies, _normalize(result))


@pytest.fixture
def fastpaths(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Switch both fast paths on (whatever the fence says: this is a proof)
    or off for the rest of the test."""

    def switch(on: bool) -> None:
        monkeypatch.setattr(_fast_messages, "MESSAGES_FASTPATH_ENABLED", on)
        monkeypatch.setattr(_fast_chunks, "CHUNK_FASTPATH_ENABLED", on)

    return switch


@pytest.mark.parametrize("version", ["v0", "v1"])
@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fast_paths_change_nothing_visible(
    name: str, mode: Mode, version: Version, fastpaths: Callable[[bool], None]
) -> None:
    scenario = SCENARIOS[name]
    input_ = scenario.input()
    if isinstance(input_, list):
        covered = _fast_messages.messages_to_dicts(input_) is not None
        assert covered == scenario.fast_messages

    fastpaths(True)
    fast = await _run(scenario, mode, version)
    parent = await _run(scenario, mode, version, disable_fast_paths=True)

    assert fast.bodies and fast.bodies == parent.bodies
    assert fast.result == parent.result
    # Not vacuous: something came back.
    assert fast.result


@dataclass
class ParentCalls:
    """How often langchain-openai's own converters ran."""

    messages: int = 0
    chunks: int = 0


@pytest.fixture
def parent_calls(monkeypatch: pytest.MonkeyPatch) -> ParentCalls:
    """Count calls into the parent's message and chunk converters."""
    calls = ParentCalls()
    convert_message = openai_base._convert_message_to_dict
    convert_chunk = BaseChatOpenAI._convert_chunk_to_generation_chunk

    def message_spy(*args: Any, **kwargs: Any) -> Any:
        calls.messages += 1
        return convert_message(*args, **kwargs)

    def chunk_spy(*args: Any, **kwargs: Any) -> Any:
        calls.chunks += 1
        return convert_chunk(*args, **kwargs)

    monkeypatch.setattr(openai_base, "_convert_message_to_dict", message_spy)
    monkeypatch.setattr(BaseChatOpenAI, "_convert_chunk_to_generation_chunk", chunk_spy)
    return calls


@pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
@pytest.mark.parametrize("name", ["tool-call history", "reasoning model"])
@pytest.mark.parametrize("way", OFF_WAYS)
async def test_every_way_off_is_the_parent_path_end_to_end(
    way: str, name: str, mode: Mode, parent_calls: ParentCalls
) -> None:
    """Switched off, or outside the proven releases: the parent's converters
    build the request and the chunks, and nothing visible changes."""
    scenario = SCENARIOS[name]
    fast = await _run(scenario, mode, "v0")
    assert (parent_calls.messages, parent_calls.chunks) == (0, 0)
    with switched_off(way) as switch:
        parent = await _run(scenario, mode, "v0", **switch)

    assert fast.bodies and fast.bodies == parent.bodies
    assert fast.result and fast.result == parent.result
    # pydantic matters to the chunk fast path only.
    assert (parent_calls.messages > 0) is (way != "pydantic newer")
    assert (parent_calls.chunks > 0) is (mode != "invoke")


async def test_scenarios_reach_the_shapes_they_name(
    fastpaths: Callable[[bool], None],
) -> None:
    """The scenarios above exercise what they claim (tool calls, reasoning, cost)."""
    fastpaths(True)
    tools = await _run(SCENARIOS["tools bound"], "stream", "v0")
    assert any(
        chunk[1]["tool_call_chunks"]
        for chunk in tools.result
        if chunk[1]["tool_call_chunks"]
    )
    history = await _run(SCENARIOS["tool-call history"], "invoke", "v0")
    sent = json.loads(history.bodies[0])
    assert sent["messages"][2]["tool_calls"][0]["function"]["arguments"] == (
        '{"city": "Zürich", "days": 3, "extra": {"units": ["°C", 1.5]}}'
    )
    reasoning = await _run(SCENARIOS["reasoning model"], "stream", "v0")
    assert json.loads(reasoning.bodies[0])["messages"][1]["reasoning_content"]
    assert any(
        c[1]["additional_kwargs"].get("reasoning_content") for c in reasoning.result
    )
    assert any("cost_usd" in c[1]["response_metadata"] for c in reasoning.result)
    structured = await _run(
        SCENARIOS["structured output (json_schema)"], "invoke", "v0"
    )
    assert structured.result["parsed"] == (
        "Trip",
        {"city": "Lisbon", "days": 4, "budget": 1200.5},
    )
    assert json.loads(structured.bodies[0])["response_format"]["type"] == "json_schema"


# ------------------------------------------------------------ request payloads


@pytest.fixture
def llm() -> ChatWandb:
    return ChatWandb(model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1")  # type: ignore[call-arg]


PAYLOAD_KWARGS: dict[str, dict[str, Any]] = {
    "none": {},
    "stream": {"stream": True, "stream_options": {"include_usage": True}},
    "pydantic response_format": {"response_format": Trip, "strict": True},
    "max_completion_tokens and extra_body": {
        "max_completion_tokens": 9,
        "extra_body": {"top_k": 3},
    },
    "model override": {"model": "wandb/deepseek-ai/DeepSeek-V3.1"},
    "tools": {"tools": [{"type": "function", "function": {"name": "f"}}]},
}


@pytest.mark.parametrize("stop", [None, ["x"]])
@pytest.mark.parametrize("kwargs", PAYLOAD_KWARGS.values(), ids=PAYLOAD_KWARGS.keys())
def test_payload_equals_the_parent_built_one(
    llm: ChatWandb,
    kwargs: dict[str, Any],
    stop: list[str] | None,
    fastpaths: Callable[[bool], None],
) -> None:
    fastpaths(True)
    fast = llm._get_request_payload(agent_history(), stop=stop, **kwargs)
    fastpaths(False)
    parent = llm._get_request_payload(agent_history(), stop=stop, **kwargs)
    assert json.dumps(fast) == json.dumps(parent)


def test_payload_accepts_every_input_form(llm: ChatWandb) -> None:
    expected = llm._get_request_payload([HumanMessage("hi")])
    assert llm._get_request_payload("hi") == expected
    assert llm._get_request_payload([("user", "hi")]) == expected
    assert llm._get_request_payload([{"role": "user", "content": "hi"}]) == expected


# ------------------------------------------------------- invocation parameters


def _parent_invocation_params(
    llm: ChatWandb, stop: list[str] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    params = BaseChatOpenAI._get_invocation_params(llm, stop=stop, **kwargs)
    schema = params.get("response_format")
    if isinstance(schema, type):
        params["response_format"] = response_format_for(schema, params.get("strict"))
    return params


MCP_TOOL = {"type": "mcp", "server_url": "https://x", "headers": {"k": "secret"}}
INVOCATION_CASES: list[tuple[list[str] | None, dict[str, Any]]] = [
    (None, {}),
    (["stop!"], {}),
    (None, {"tools": [{"type": "function", "function": {"name": "f"}}]}),
    (None, {"tools": [MCP_TOOL]}),
    (["s"], {"response_format": Trip, "strict": True, "temperature": 0.1}),
    (None, {"model": "other", "n": 2}),
]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"stop": ["own"], "temperature": 0.2, "model_kwargs": {"top_k": 4}},
        {"enable_thinking": True, "extra_body": {"a": 1}, "max_tokens": 3},
    ],
)
def test_invocation_params_equal_the_parents(settings: dict[str, Any]) -> None:
    llm = ChatWandb(
        model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1", **settings
    )
    for stop, kwargs in INVOCATION_CASES:
        ours = llm._get_invocation_params(stop=stop, **kwargs)
        parent = _parent_invocation_params(llm, stop, kwargs)
        assert list(ours.items()) == list(parent.items())
        # Credentials of remote MCP tools stay redacted.
        assert "secret" not in json.dumps(ours, default=str)


def test_invocation_params_follow_configuration_changes(llm: ChatWandb) -> None:
    before = llm._get_invocation_params()
    llm.temperature = 0.9
    assert llm._get_invocation_params()["temperature"] == 0.9
    llm.model_kwargs["top_k"] = 7  # edited in place: no assignment to notice
    assert llm._get_invocation_params()["top_k"] == 7
    copy = llm.model_copy(update={"max_tokens": 11})
    assert copy._get_invocation_params()["max_tokens"] == 11
    assert "max_tokens" not in llm._get_invocation_params()
    assert "temperature" not in before
    # Each call gets its own dict.
    llm._get_invocation_params()["mutated"] = True
    assert "mutated" not in llm._get_invocation_params()


# ------------------------------------------------------------------ body bytes

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_body_is_compact_utf8_json_of_the_payload(payload: dict[str, Any]) -> None:
    body = encode_body(payload)
    assert json.loads(body.decode("utf-8")) == payload
    # Compact and UTF-8: re-encoding the decoded body gives the same bytes.
    assert encode_body(json.loads(body)) == body


def test_body_bytes() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "Zürich ✓"}]}
    assert encode_body(payload) == (
        '{"model":"m","messages":[{"role":"user","content":"Zürich ✓"}]}'.encode()
    )


class Label(str):
    """A str subclass: encoded as the string it is."""


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({1: "int key"}, b'{"1":"int key"}'),
        ({"big": 2**70}, b'{"big":1180591620717411303424}'),
        ({"label": Label("x")}, b'{"label":"x"}'),
        ({"nested": {"tuple": (1, 2)}}, b'{"nested":{"tuple":[1,2]}}'),
        ({"small": 1e-07}, b'{"small":1e-07}'),
    ],
    ids=["int key", "big int", "str subclass", "tuple", "small float"],
)
def test_body_spellings(payload: dict[Any, Any], expected: bytes) -> None:
    assert encode_body(payload) == expected


def test_body_refuses_what_json_cannot_encode() -> None:
    with pytest.raises(TypeError):
        encode_body({"set": {1, 2}})
    # A lone surrogate has no UTF-8: a typed error naming the field (test_bad_input).
    with pytest.raises(WandbInvalidRequestError, match="surrogate"):
        encode_body({"surrogate": "\ud800"})


def test_non_finite_floats_are_written_as_the_json_module_does() -> None:
    # Whatever else is installed: one encoder, one spelling (W&B refuses it).
    assert encode_body({"t": math.nan, "u": math.inf, "v": -math.inf}) == (
        b'{"t":NaN,"u":Infinity,"v":-Infinity}'
    )


def test_chat_wandb_sends_the_encoders_bytes() -> None:
    sent: list[bytes] = []
    reply = {
        "id": "x",
        "model": QWEN,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json=reply)

    llm = ChatWandb(
        model=QWEN,
        api_key=KEY,
        base_url="http://127.0.0.1:1/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    # NaN is no JSON, but shows which encoder wrote the body.
    assert llm.invoke([HumanMessage("Zürich ✓")], top_p=math.nan).text == "ok"
    (body,) = sent
    assert body == encode_body(json.loads(body))
    assert b'"top_p":NaN' in body
    assert '"content":"Zürich ✓"'.encode() in body
