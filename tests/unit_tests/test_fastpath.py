"""The fast converters give exactly what langchain-openai gives, or decline.

langchain-openai's own converters are the oracle here: every generated
conversation and stream goes through both and the results must be equal, down
to dict key order, pydantic ``model_fields_set`` and serialized form.

These proofs force the fast paths on whatever their fence decided, so they
are what to run on a new langchain-openai, langchain-core or pydantic release
before raising the fence's upper bound; ``.ci/lowest`` runs them on the floors.
The fence itself, its switches, and ChatWandb switched off (or outside the
proven releases) giving the same requests and chunks are tested at the end.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from langchain_core.load import dumpd
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
)
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import (
    BaseChatOpenAI,
    _convert_message_to_dict,
)

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.chat import _fast_chunks, _fast_messages
from langchain_wandb_router.chat._chunks import StreamTracker
from langchain_wandb_router.chat._fast_chunks import chunk_to_generation_chunk
from langchain_wandb_router.chat._fast_messages import (
    FAST_PATHS_ENV,
    Fence,
    message_to_dict,
    messages_to_dicts,
)

WANDB_REASONING = ("reasoning", "reasoning_content")


@pytest.fixture(autouse=True)
def _fast_paths_forced_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prove the converters themselves, even where the fence would shut them."""
    monkeypatch.setattr(_fast_messages, "MESSAGES_FASTPATH_ENABLED", True)
    monkeypatch.setattr(_fast_chunks, "CHUNK_FASTPATH_ENABLED", True)


@functools.cache
def oracle() -> ChatOpenAI:
    """langchain-openai's model; building it makes no network call."""
    return ChatOpenAI(model="x", api_key="sk-test", base_url="http://127.0.0.1:1")


def parent_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """What BaseChatOpenAI puts in the payload for Chat Completions."""
    payload = BaseChatOpenAI._get_request_payload(oracle(), list(messages))
    result: list[dict[str, Any]] = payload["messages"]
    return result


def assert_same_dicts(fast: list[dict[str, Any]], parent: list[dict[str, Any]]) -> None:
    assert fast == parent
    # Same key order too, so the request body is byte-identical.
    assert json.dumps(fast, ensure_ascii=False) == json.dumps(
        parent, ensure_ascii=False
    )


# ----------------------------------------------------------------- strategies

texts = st.text(max_size=40)
maybe_text = st.none() | texts
names = st.none() | st.sampled_from(["", "alice", "bob_2"]) | texts
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)
tool_args = st.dictionaries(texts, json_value, max_size=4)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {"name": texts, "args": tool_args, "id": maybe_text},
    ),
    max_size=3,
)
invalid_tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "name": maybe_text,
            "args": maybe_text,
            "id": maybe_text,
            "error": maybe_text,
            "type": st.just("invalid_tool_call"),
        }
    ),
    max_size=2,
)
# Keys the parent ignores, plus the ones it reads that the fast path handles.
extra_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe_text,
        "reasoning_content": texts,
        "refusal": st.none(),
        "parsed": st.none(),
    },
)


@st.composite
def human_messages(draw: st.DrawFn) -> HumanMessage:
    return HumanMessage(
        content=draw(texts),
        name=draw(names),
        id=draw(maybe_text),
        additional_kwargs=draw(extra_kwargs),
    )


@st.composite
def system_messages(draw: st.DrawFn) -> SystemMessage:
    kwargs = draw(extra_kwargs)
    if draw(st.booleans()):
        kwargs["__openai_role__"] = draw(st.sampled_from(["developer", "system"]))
    return SystemMessage(
        content=draw(texts), name=draw(names), additional_kwargs=kwargs
    )


@st.composite
def ai_messages(draw: st.DrawFn) -> AIMessage:
    calls = draw(tool_calls)
    kwargs = draw(extra_kwargs)
    if calls and draw(st.booleans()):
        # Ignored by the parent when parsed tool calls are present.
        kwargs["function_call"] = {"name": "f", "arguments": "{}"}
    return AIMessage(
        content=draw(st.sampled_from(["", " "]) | texts),
        name=draw(names),
        id=draw(maybe_text),
        tool_calls=calls,
        invalid_tool_calls=draw(invalid_tool_calls),
        additional_kwargs=kwargs,
        response_metadata=draw(st.just({}) | st.just({"model_provider": "wandb"})),
    )


@st.composite
def tool_messages(draw: st.DrawFn) -> ToolMessage:
    return ToolMessage(
        content=draw(texts | st.integers()),
        tool_call_id=draw(texts),
        name=draw(names),
        status=draw(st.sampled_from(["success", "error"])),
        artifact=draw(st.none() | json_value),
    )


conversations = st.lists(
    st.one_of(human_messages(), system_messages(), ai_messages(), tool_messages()),
    max_size=25,
)

# ------------------------------------------------------------------- messages


@settings(max_examples=300, deadline=None)
@given(conversations)
def test_messages_equal_langchain_openai(messages: list[BaseMessage]) -> None:
    fast = messages_to_dicts(messages)
    assert fast is not None
    assert_same_dicts(fast, parent_dicts(messages))
    assert_same_dicts(fast, [_convert_message_to_dict(m) for m in messages])
    assert [message_to_dict(m) for m in messages] == fast


def test_agent_turn_shapes() -> None:
    call = {"name": "get_weather", "args": {"city": "Zürich", "n": [1, {"x": None}]}}
    messages: list[BaseMessage] = [
        SystemMessage("You are terse."),
        SystemMessage("dev", additional_kwargs={"__openai_role__": "developer"}),
        HumanMessage("Weather? 🌧", name="alice"),
        AIMessage("", tool_calls=[{**call, "id": "call_1"}]),
        AIMessage("thinking aloud", tool_calls=[{**call, "id": None}]),
        AIMessage(
            "",
            invalid_tool_calls=[
                {
                    "name": "f",
                    "args": "{bad",
                    "id": "c2",
                    "error": "x",
                    "type": "invalid_tool_call",
                }
            ],
        ),
        ToolMessage("12°C", tool_call_id="call_1", name="get_weather"),
        ToolMessage(7, tool_call_id="call_1"),
        AIMessage("It is 12°C.", additional_kwargs={"reasoning_content": "easy"}),
        HumanMessage("", name=""),
        HumanMessage("x", name="", additional_kwargs={"name": "from-kwargs"}),
    ]
    fast = messages_to_dicts(messages)
    assert fast is not None
    assert_same_dicts(fast, parent_dicts(messages))
    # The details the parent gets right and a naive converter would not:
    assert fast[3]["content"] is None  # empty content with tool calls is null
    assert fast[4]["content"] == "thinking aloud"
    assert fast[3]["tool_calls"][0] == {
        "type": "function",
        "id": "call_1",
        "function": {
            "name": "get_weather",
            "arguments": '{"city": "Zürich", "n": [1, {"x": null}]}',
        },
    }
    assert fast[5]["tool_calls"][0]["function"]["arguments"] == "{bad"
    assert fast[1]["role"] == "developer"
    assert fast[6] == {"content": "12°C", "role": "tool", "tool_call_id": "call_1"}
    assert fast[7]["content"] == "7"
    assert "name" not in fast[9]
    assert fast[10]["name"] == "from-kwargs"


def _raw_tool_calls_only() -> AIMessage:
    message = AIMessage(
        "",
        additional_kwargs={
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ]
        },
    )
    message.tool_calls = []
    return message


class _MyHuman(HumanMessage):
    pass


FALLBACK_MESSAGES: dict[str, Callable[[], BaseMessage]] = {
    "list content": lambda: HumanMessage([{"type": "text", "text": "hi"}]),
    "string list content": lambda: HumanMessage(["hi"]),
    "image": lambda: HumanMessage(
        [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    ),
    "v1 blocks": lambda: AIMessage(
        content_blocks=[
            {"type": "reasoning", "reasoning": "r"},
            {"type": "text", "text": "t"},
        ]
    ),
    "tool list content": lambda: ToolMessage(
        [{"type": "text", "text": "r"}], tool_call_id="c"
    ),
    "system list content": lambda: SystemMessage([{"type": "text", "text": "s"}]),
    "chat message": lambda: ChatMessage("hi", role="critic"),
    "function message": lambda: FunctionMessage("42", name="f"),
    "ai chunk": lambda: AIMessageChunk("partial"),
    "human chunk": lambda: HumanMessageChunk("partial"),
    "subclass": lambda: _MyHuman("hi"),
    "function_call kwarg": lambda: AIMessage(
        "", additional_kwargs={"function_call": {"name": "f", "arguments": "{}"}}
    ),
    "audio kwarg": lambda: AIMessage("", additional_kwargs={"audio": {"id": "a1"}}),
    "raw tool_calls kwarg": _raw_tool_calls_only,
    "unserializable args": lambda: AIMessage(
        "", tool_calls=[{"name": "f", "args": {"when": object()}, "id": "c"}]
    ),
}


@pytest.mark.parametrize(
    "make", FALLBACK_MESSAGES.values(), ids=FALLBACK_MESSAGES.keys()
)
def test_uncommon_messages_fall_back(make: Callable[[], BaseMessage]) -> None:
    message = make()
    assert message_to_dict(message) is None
    # One such message sends the whole conversation to the parent.
    assert messages_to_dicts([HumanMessage("a"), message, AIMessage("b")]) is None


def test_empty_conversation() -> None:
    assert messages_to_dicts([]) == []


# --------------------------------------------------------------------- chunks


def parent_chunk(
    chunk: dict[str, Any],
    default: type,
    base: dict[str, Any] | None,
    *,
    wandb: bool,
) -> ChatGenerationChunk | None:
    """langchain-openai's conversion, plus (for ``wandb``) what ChatWandb adds."""
    result = BaseChatOpenAI._convert_chunk_to_generation_chunk(
        oracle(), chunk, default, base
    )
    if result is None or not wandb:
        return result
    result.message.response_metadata["model_provider"] = "wandb"
    if chunk.get("choices"):
        delta = chunk["choices"][0].get("delta") or {}
        for key in WANDB_REASONING:
            value = delta.get(key)
            if isinstance(value, str) and value:
                result.message.additional_kwargs["reasoning_content"] = value
                break
    return result


def fast_chunk(
    chunk: dict[str, Any], default: type, base: dict[str, Any] | None, *, wandb: bool
) -> ChatGenerationChunk | None:
    if wandb:
        return chunk_to_generation_chunk(
            chunk, default, base, model_provider="wandb", reasoning_keys=WANDB_REASONING
        )
    return chunk_to_generation_chunk(chunk, default, base)


def assert_same_generation(
    fast: ChatGenerationChunk, parent: ChatGenerationChunk
) -> None:
    assert type(fast) is type(parent)
    assert type(fast.message) is type(parent.message)
    fm, pm = fast.message, parent.message
    assert fm.content == pm.content
    assert fm.id == pm.id
    assert fm.additional_kwargs == pm.additional_kwargs
    assert fm.response_metadata == pm.response_metadata
    assert fm.model_fields_set == pm.model_fields_set
    if isinstance(pm, AIMessageChunk):
        assert isinstance(fm, AIMessageChunk)
        assert fm.usage_metadata == pm.usage_metadata
        assert fm.tool_call_chunks == pm.tool_call_chunks
        assert fm.tool_calls == pm.tool_calls
        assert fm.invalid_tool_calls == pm.invalid_tool_calls
        assert fm.chunk_position == pm.chunk_position
    assert fm == pm
    assert fast.generation_info == parent.generation_info
    assert fast.text == parent.text
    assert type(fast.text) is type(parent.text)
    assert fast.model_fields_set == parent.model_fields_set
    assert fast == parent
    # Serialized forms match key for key, in order (dumpd is checked on sums).
    assert json.dumps(fast.model_dump()) == json.dumps(parent.model_dump())


def run_both(
    chunks: list[dict[str, Any]], base: dict[str, Any] | None, *, wandb: bool
) -> tuple[list[ChatGenerationChunk], list[ChatGenerationChunk]]:
    """Convert a stream both ways, threading the chunk class as ChatWandb does."""
    fast_out: list[ChatGenerationChunk] = []
    parent_out: list[ChatGenerationChunk] = []
    default: type = AIMessageChunk
    for chunk in chunks:
        parent = parent_chunk(chunk, default, base, wandb=wandb)
        fast = fast_chunk(chunk, default, base, wandb=wandb)
        assert parent is not None
        assert fast is not None, chunk  # every W&B shape is covered
        assert_same_generation(fast, parent)
        fast_out.append(fast)
        parent_out.append(parent)
        default = parent.message.__class__
    return fast_out, parent_out


def assert_same_sum(
    fast: list[ChatGenerationChunk], parent: list[ChatGenerationChunk]
) -> None:
    fast_sum = functools.reduce(operator.add, fast)
    parent_sum = functools.reduce(operator.add, parent)
    assert fast_sum == parent_sum
    assert fast_sum.message.tool_calls == parent_sum.message.tool_calls  # type: ignore[attr-defined]
    assert fast_sum.message.usage_metadata == parent_sum.message.usage_metadata  # type: ignore[attr-defined]
    assert fast_sum.generation_info == parent_sum.generation_info
    assert json.dumps(dumpd(fast_sum)) == json.dumps(dumpd(parent_sum))


pieces = st.text(min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=10**6)


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": draw(st.none() | counts),
        "completion_tokens": draw(st.none() | counts),
    }
    if draw(st.booleans()):
        usage["total_tokens"] = draw(st.none() | counts)
    if draw(st.booleans()):
        usage["prompt_tokens_details"] = draw(
            st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "cached_tokens": st.none() | counts,
                    "audio_tokens": st.none() | counts,
                    "cache_write_tokens": st.none() | counts,
                },
            )
        )
    if draw(st.booleans()):
        usage["completion_tokens_details"] = draw(
            st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "reasoning_tokens": st.none() | counts,
                    "audio_tokens": st.none() | counts,
                },
            )
        )
    return usage


@st.composite
def wandb_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A stream shaped like W&B's: role, reasoning, content, tool calls, finish, usage."""
    reasoning_field = draw(st.sampled_from(["reasoning", "reasoning_content", None]))
    base: dict[str, Any] = {
        "id": "chatcmpl-" + draw(st.text("abc123", min_size=1, max_size=6)),
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": draw(st.sampled_from(["Qwen/Qwen3-235B-A22B-Instruct-2507", "m", ""])),
    }
    if draw(st.booleans()):
        base["system_fingerprint"] = draw(st.none() | st.just("fp_1"))
    if draw(st.booleans()):
        base["service_tier"] = draw(st.sampled_from([None, "default", "auto"]))
    null_usage = draw(st.booleans())

    def chunk(
        delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        if reasoning_field == "reasoning":
            delta.setdefault("reasoning", None)
        out = {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish,
                    "logprobs": logprobs,
                }
            ],
        }
        if null_usage:
            out["usage"] = None
        return out

    events = [
        chunk({"role": "assistant", "content": draw(st.sampled_from(["", None]))})
    ]
    if reasoning_field is not None:
        events += [
            chunk({reasoning_field: p}) for p in draw(st.lists(pieces, max_size=4))
        ]
    events += [chunk({"content": p}) for p in draw(st.lists(pieces, max_size=6))]
    for index, call in enumerate(
        draw(st.lists(st.tuples(texts, tool_args), max_size=2))
    ):
        name, args = call
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        text = json.dumps(args)
        step = draw(st.integers(min_value=1, max_value=12))
        events += [
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "function": {"arguments": text[i : i + step]}}
                    ]
                }
            )
            for i in range(0, len(text), step)
        ]
    logprobs = draw(st.none() | st.just({"content": [{"token": "a", "logprob": -0.1}]}))
    finish = chunk(
        {}, draw(st.sampled_from(["stop", "tool_calls", "length"])), logprobs
    )
    if draw(st.booleans()):
        finish["usage"] = draw(usages())
    events.append(finish)
    if draw(st.booleans()):
        events.append({**base, "choices": [], "usage": draw(st.none() | usages())})
    return events


base_infos = st.none() | st.just({}) | st.just({"run": "r1"})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wandb_streams(), base_infos, st.booleans())
def test_stream_chunks_equal_langchain_openai(
    stream: list[dict[str, Any]], base: dict[str, Any] | None, wandb: bool
) -> None:
    fast, parent = run_both(stream, base, wandb=wandb)
    assert_same_sum(fast, parent)


def test_typical_tool_call_stream() -> None:
    base = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "Qwen/Q",
    }
    delta_chunks = [
        {"role": "assistant", "content": "", "reasoning": None},
        {"reasoning": "Need weather."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "w", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Par'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'is"}'}}]},
    ]
    stream = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": d, "finish_reason": None, "logprobs": None}
            ],
        }
        for d in delta_chunks
    ]
    stream.append(
        {
            **base,
            "system_fingerprint": "fp",
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "tool_calls",
                    "logprobs": None,
                }
            ],
        }
    )
    stream.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 20,
                "completion_tokens": 9,
                "total_tokens": 29,
                "prompt_tokens_details": {"cached_tokens": 16},
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
        }
    )
    fast, parent = run_both(stream, None, wandb=True)
    assert_same_sum(fast, parent)
    # A partial-JSON fragment parses to a partial tool call, as in core.
    assert fast[3].message.tool_calls == [  # type: ignore[attr-defined]
        {"name": "", "args": {"city": "Par"}, "id": None, "type": "tool_call"}
    ]
    total = functools.reduce(operator.add, fast)
    message = total.message
    assert isinstance(message, AIMessageChunk)
    assert message.tool_calls == [
        {"name": "w", "args": {"city": "Paris"}, "id": "call_0", "type": "tool_call"}
    ]
    assert message.additional_kwargs == {"reasoning_content": "Need weather."}
    assert message.response_metadata["model_provider"] == "wandb"
    assert message.usage_metadata == {
        "input_tokens": 20,
        "output_tokens": 9,
        "total_tokens": 29,
        "input_token_details": {"cache_read": 16},
        "output_token_details": {"reasoning": 4},
    }
    assert total.generation_info == {
        "finish_reason": "tool_calls",
        "model_name": "Qwen/Q",
        "system_fingerprint": "fp",
        "service_tier": "default",
    }


def test_fragments_that_are_not_json_objects() -> None:
    """Fragments that parse to non-objects or fail become invalid calls, as in core."""
    for arguments in ['"just a string', "[1, 2", "}", "nul", "42"]:
        chunk = {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": None,
                                "function": {"name": None, "arguments": arguments},
                            }
                        ]
                    },
                    "finish_reason": None,
                }
            ]
        }
        run_both([chunk], None, wandb=False)


def _choice(delta: Any, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None, **extra}],
    }


FALLBACK_CHUNKS: dict[str, tuple[dict[str, Any], type[BaseMessageChunk]]] = {
    "user role": (_choice({"role": "user", "content": "x"}), AIMessageChunk),
    "human default class": (_choice({"content": "x"}), HumanMessageChunk),
    "system default class": (_choice({"content": "x"}), SystemMessageChunk),
    "chat default class": (_choice({"content": "x"}), ChatMessageChunk),
    "system role": (_choice({"role": "system", "content": "x"}), SystemMessageChunk),
    "function_call": (
        _choice({"function_call": {"name": "f", "arguments": ""}}),
        AIMessageChunk,
    ),
    "list content": (
        _choice({"content": [{"type": "text", "text": "x"}]}),
        AIMessageChunk,
    ),
    "integer id": (_choice({"id": 7, "content": "x"}), AIMessageChunk),
    "fragment without function": (
        _choice({"tool_calls": [{"index": 0, "id": "c"}]}),
        AIMessageChunk,
    ),
    "fragment without index": (
        _choice({"tool_calls": [{"function": {"name": "f", "arguments": ""}}]}),
        AIMessageChunk,
    ),
    "string index": (
        _choice({"tool_calls": [{"index": "0", "function": {"arguments": "{"}}]}),
        AIMessageChunk,
    ),
    "null delta": (_choice(None), AIMessageChunk),
    "missing delta": ({"choices": [{"index": 0}]}, AIMessageChunk),
    "beta content.delta": ({"type": "content.delta", "delta": "x"}, AIMessageChunk),
    "beta wrapped chunk": (
        {"chunk": {"choices": [{"delta": {"content": "x"}}]}},
        AIMessageChunk,
    ),
    "priority tier usage": (
        {
            **_choice({"content": "x"}),
            "service_tier": "priority",
            "usage": {"prompt_tokens": 1},
        },
        AIMessageChunk,
    ),
    "float token count": (
        {"choices": [], "usage": {"prompt_tokens": 1.0, "completion_tokens": 2}},
        AIMessageChunk,
    ),
    "usage chunk after human class": (
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
        HumanMessageChunk,
    ),
}


@pytest.mark.parametrize(
    ("chunk", "default"), FALLBACK_CHUNKS.values(), ids=FALLBACK_CHUNKS.keys()
)
def test_uncommon_chunks_fall_back(
    chunk: dict[str, Any], default: type[BaseMessageChunk]
) -> None:
    assert chunk_to_generation_chunk(chunk, default, None) is None
    assert (
        chunk_to_generation_chunk(
            chunk, default, None, model_provider="wandb", reasoning_keys=WANDB_REASONING
        )
        is None
    )


def test_usage_chunk_matches_parent_exactly() -> None:
    chunk = {
        "id": "c",
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 0},
    }
    fast, parent = run_both([chunk], {"a": 1}, wandb=False)
    assert json.dumps(dumpd(fast[0])) == json.dumps(dumpd(parent[0]))
    # An explicit total of 0 is kept, not recomputed.
    assert fast[0].message.usage_metadata["total_tokens"] == 0  # type: ignore[attr-defined]
    assert fast[0].message.response_metadata == {}
    fast, parent = run_both([chunk], None, wandb=True)
    assert fast[0].message.response_metadata == {"model_provider": "wandb"}


def test_returned_objects_are_independent() -> None:
    """Nothing the fast path returns shares mutable state with its inputs or peers."""
    base = {"run": "r"}
    chunk = _choice({"content": "x"})
    first = chunk_to_generation_chunk(chunk, AIMessageChunk, base)
    second = chunk_to_generation_chunk(chunk, AIMessageChunk, base)
    assert first is not None and second is not None
    first.message.additional_kwargs["k"] = 1
    first.message.response_metadata["k"] = 1
    assert first.generation_info is not None
    first.generation_info["k"] = 1
    assert second.message.additional_kwargs == {}
    assert second.message.response_metadata == {"model_provider": "openai"}
    assert second.generation_info == {"run": "r"}
    assert base == {"run": "r"}


# ---------------------------------------------------------------------- fence


@pytest.mark.installed_releases
def test_the_fence_opens_exactly_for_the_proven_releases() -> None:
    """Open on the releases the proofs ran on; shut on any other, where the
    parent's converters serve (the proofs above still run, forced on: if they
    pass on a new release, raise the bound in ``MESSAGES_PROVEN`` /
    ``CHUNKS_PROVEN``)."""

    def within(proven: dict[str, tuple[Any, Any]]) -> bool:
        for package, (low, high) in proven.items():
            text = _fast_messages.installed_version(package)
            release = _fast_messages.parse_release(text) if text else None
            if release is None or not low <= release <= high:
                return False
        return True

    messages, chunks = _fast_messages.messages_fence({}), _fast_chunks.chunk_fence({})
    assert messages.enabled == within(_fast_messages.MESSAGES_PROVEN), messages.reason
    if chunks.enabled:
        assert within(_fast_chunks.CHUNKS_PROVEN), chunks.reason
    # The import-time decision agrees, unless this process switched them off.
    if os.environ.get(FAST_PATHS_ENV) is None:
        assert messages == _fast_messages.MESSAGES_FENCE
        assert chunks == _fast_chunks.CHUNK_FENCE


@pytest.mark.parametrize(
    ("text", "release"),
    [
        ("1.7.4", (1, 7, 4)),
        ("1.8", (1, 8, 0)),
        ("2", (2, 0, 0)),
        ("1.7.4.1", (1, 7, 4, 1)),
        (" 1.4.0 ", (1, 4, 0)),
        ("1.8.0rc1", None),
        ("1.7.5.dev0", None),
        ("1.7.4.post1", None),
        ("1.7.4+local", None),
        ("1.x", None),
        ("", None),
        ("1.\u0667.4", None),  # a non-ASCII digit
    ],
)
def test_parse_release(text: str, release: tuple[int, ...] | None) -> None:
    assert _fast_messages.parse_release(text) == release


PROVEN = {"pkg": ((1, 4, 0), (1, 7, 4))}


@pytest.mark.parametrize(
    ("installed", "enabled"),
    [
        ("1.4.0", True),
        ("1.5", True),
        ("1.7.4", True),
        ("1.7.5", False),
        ("1.8.0", False),
        ("1.3.9", False),
        ("1.7.4.post1", False),
        ("1.5.0rc1", False),
        (None, False),
    ],
)
def test_fence_admits_exactly_the_proven_range(
    monkeypatch: pytest.MonkeyPatch, installed: str | None, enabled: bool
) -> None:
    monkeypatch.setattr(_fast_messages, "installed_version", lambda _: installed)
    fence = _fast_messages.check_fence("things", PROVEN, {})
    assert fence.enabled is enabled
    if enabled:
        assert fence.reason == (
            f"ChatWandb things: fast path (pkg {installed}: within the releases it "
            "was proven equal against)"
        )
    else:
        assert fence.reason == (
            f"ChatWandb things: langchain-openai's converters (pkg "
            f"{installed or 'not installed'} is outside 1.4.0 to 1.7.4, the releases "
            "the fast path was proven equal against)"
        )


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("0", False),
        ("false", False),
        ("OFF", False),
        (" no ", False),
        ("1", True),
        ("true", True),
        ("", True),
    ],
)
def test_environment_switch(value: str, enabled: bool) -> None:
    env = {FAST_PATHS_ENV: value}
    for fence in (_fast_messages.messages_fence(env), _fast_chunks.chunk_fence(env)):
        assert fence.enabled is enabled
        if not enabled:
            assert f"switched off: {FAST_PATHS_ENV}={value}" in fence.reason


def test_chunk_fence_checks_the_classes_it_assembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A langchain-core within range whose AIMessageChunk gained a field.
    monkeypatch.setattr(
        _fast_chunks, "_AI_CHUNK_FIELDS", (*_fast_chunks._AI_CHUNK_FIELDS, "new")
    )
    fence = _fast_chunks.chunk_fence({})
    assert not fence.enabled
    assert "no longer has the fields" in fence.reason
    assert _fast_messages.messages_fence({}).enabled


def test_each_fast_path_names_what_it_depends_on() -> None:
    assert set(_fast_messages.MESSAGES_PROVEN) == {"langchain-openai", "langchain-core"}
    assert set(_fast_chunks.CHUNKS_PROVEN) == {
        "langchain-openai",
        "langchain-core",
        "pydantic",
    }
    # The floors are pyproject's (.ci/lowest checks pyproject against its pins).
    assert _fast_messages.LANGCHAIN_OPENAI_PROVEN[0] == (1, 4, 0)
    assert _fast_messages.LANGCHAIN_CORE_PROVEN[0] == (1, 6, 0)
    assert _fast_chunks.PYDANTIC_PROVEN[0] == (2, 10, 6)


_IMPORT_AND_REPORT = """
    import logging
    logging.basicConfig(level=logging.DEBUG, format="%(name)s|%(message)s")
    from langchain_wandb_router.chat import _fast_chunks, _fast_messages
    print(_fast_messages.MESSAGES_FASTPATH_ENABLED, _fast_chunks.CHUNK_FASTPATH_ENABLED)
"""


def _import_fresh(env: dict[str, str]) -> tuple[str, list[str]]:
    clean = {k: v for k, v in os.environ.items() if k != FAST_PATHS_ENV}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IMPORT_AND_REPORT)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "_fast_" in line]
    return result.stdout.strip(), lines


@pytest.mark.installed_releases
@pytest.mark.parametrize("value", [None, "0"])
def test_switch_is_read_at_import_and_logged_once_per_fast_path(
    value: str | None,
) -> None:
    flags, lines = _import_fresh({} if value is None else {FAST_PATHS_ENV: value})
    prefix = "langchain_wandb_router.chat."
    if value is None:
        # What the fences decide on the releases really installed here.
        messages, chunks = (
            _fast_messages.messages_fence({}),
            _fast_chunks.chunk_fence({}),
        )
        assert flags == f"{messages.enabled} {chunks.enabled}"
        assert [line.split(":")[0] for line in lines] == [
            f"{prefix}_fast_messages|ChatWandb request messages",
            f"{prefix}_fast_chunks|ChatWandb stream chunks",
        ]
        for line, fence in zip(lines, (messages, chunks), strict=True):
            assert line.endswith(fence.reason)
    else:
        assert flags == "False False"
        assert lines == [
            f"{prefix}_fast_messages|ChatWandb request messages: langchain-openai's "
            f"converters (switched off: {FAST_PATHS_ENV}=0)",
            f"{prefix}_fast_chunks|ChatWandb stream chunks: langchain-openai's "
            f"converters (switched off: {FAST_PATHS_ENV}=0)",
        ]


# ------------------------------------------------- ChatWandb, switched off


def refence(monkeypatch: pytest.MonkeyPatch) -> tuple[Fence, Fence]:
    """Take the import-time decisions again, as a fresh import would now."""
    messages, chunks = _fast_messages.messages_fence(), _fast_chunks.chunk_fence()
    monkeypatch.setattr(_fast_messages, "MESSAGES_FENCE", messages)
    monkeypatch.setattr(_fast_messages, "MESSAGES_FASTPATH_ENABLED", messages.enabled)
    monkeypatch.setattr(_fast_chunks, "CHUNK_FENCE", chunks)
    monkeypatch.setattr(_fast_chunks, "CHUNK_FASTPATH_ENABLED", chunks.enabled)
    return messages, chunks


def _past(release: tuple[int, ...]) -> str:
    """The release right after ``release`` (its last number plus one)."""
    return _fast_messages.dotted((*release[:-1], release[-1] + 1))


# How each off switch is reached: ChatWandb's field, the environment variable,
# or a release outside the proven range (the fence's version source patched).
# The newer releases follow the proven bounds, so raising a bound keeps them
# outside it.
OFF_WAYS: dict[str, dict[str, str]] = {
    "disable_fast_paths=True": {},
    f"{FAST_PATHS_ENV}=0": {},
    "langchain-openai newer": {
        "langchain-openai": _past(_fast_messages.LANGCHAIN_OPENAI_PROVEN[1])
    },
    "langchain-openai older": {"langchain-openai": "1.3.9"},
    "langchain-core newer": {
        "langchain-core": _past(_fast_messages.LANGCHAIN_CORE_PROVEN[1])
    },
    "langchain-openai pre-release": {
        "langchain-openai": _past(_fast_messages.LANGCHAIN_OPENAI_PROVEN[1]) + "rc1"
    },
    "pydantic newer": {"pydantic": _past(_fast_chunks.PYDANTIC_PROVEN[1])},
}


@contextlib.contextmanager
def switched_off(way: str) -> Iterator[dict[str, Any]]:
    """Reach ``way``; yields the ChatWandb kwargs it needs (restored after)."""
    with pytest.MonkeyPatch.context() as mp:
        if way == "disable_fast_paths=True":
            yield {"disable_fast_paths": True}
            return
        if way == f"{FAST_PATHS_ENV}=0":
            mp.setenv(FAST_PATHS_ENV, "0")
        else:
            real = _fast_messages.installed_version
            fake = OFF_WAYS[way]
            mp.setattr(
                _fast_messages, "installed_version", lambda p: fake.get(p) or real(p)
            )
        messages, chunks = refence(mp)
        if way == "pydantic newer":  # only the chunk fast path depends on it
            assert messages.enabled
        else:
            assert not messages.enabled
        assert not chunks.enabled
        yield {}


def wandb_model(**kwargs: Any) -> ChatWandb:
    return ChatWandb(
        model="Qwen/Qwen3-235B-A22B-Thinking-2507",
        api_key="property-test-key",
        base_url="http://127.0.0.1:9/v1",
        **kwargs,
    )


def request_of(llm: ChatWandb, messages: list[BaseMessage]) -> tuple[str, str]:
    payload = llm._get_request_payload(messages, stop=["x"], temperature=0.5)
    params = llm._get_invocation_params(stop=["x"], temperature=0.5)
    return json.dumps(payload, ensure_ascii=False), json.dumps(params, default=str)


def chat_wandb_stream(
    llm: ChatWandb, events: list[dict[str, Any]]
) -> list[ChatGenerationChunk]:
    """The chunks ChatWandb yields for these SSE events (as ``_stream`` does)."""
    tracker = StreamTracker(llm._convert_chunk_to_generation_chunk, None)
    return [c for event in events if (c := tracker.convert(event)) is not None]


@pytest.mark.parametrize("way", OFF_WAYS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(conversations.filter(bool))
def test_chat_wandb_requests_are_the_same_switched_off(
    way: str, messages: list[BaseMessage]
) -> None:
    fast = request_of(wandb_model(), messages)
    with switched_off(way) as kwargs:
        off = request_of(wandb_model(**kwargs), messages)
    assert fast == off


@pytest.mark.parametrize("way", OFF_WAYS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(wandb_streams())
def test_chat_wandb_stream_chunks_are_the_same_switched_off(
    way: str, events: list[dict[str, Any]]
) -> None:
    fast = chat_wandb_stream(wandb_model(), events)
    with switched_off(way) as kwargs:
        off = chat_wandb_stream(wandb_model(**kwargs), events)
    assert len(fast) == len(off)
    for ours, theirs in zip(fast, off, strict=True):
        assert_same_generation(ours, theirs)
    if fast:
        assert_same_sum(fast, off)


@pytest.mark.parametrize("way", OFF_WAYS)
def test_switched_off_chat_wandb_calls_the_parent(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not vacuous: on, the parent's converters are never called; off, they are."""
    calls = {"messages": 0, "chunks": 0}
    real_message = _convert_message_to_dict
    real_chunk = BaseChatOpenAI._convert_chunk_to_generation_chunk

    def message_spy(*args: Any, **kwargs: Any) -> Any:
        calls["messages"] += 1
        return real_message(*args, **kwargs)

    def chunk_spy(*args: Any, **kwargs: Any) -> Any:
        calls["chunks"] += 1
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(
        "langchain_openai.chat_models.base._convert_message_to_dict", message_spy
    )
    monkeypatch.setattr(BaseChatOpenAI, "_convert_chunk_to_generation_chunk", chunk_spy)
    history = [HumanMessage("hi"), AIMessage("", tool_calls=[]), HumanMessage("go")]
    events = [
        {"model": "m", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"model": "m", "choices": [], "usage": {"prompt_tokens": 1}},
    ]

    def run(**kwargs: Any) -> dict[str, int]:
        calls.update(messages=0, chunks=0)
        llm = wandb_model(**kwargs)
        request_of(llm, history)
        chat_wandb_stream(llm, events)
        return dict(calls)

    assert run() == {"messages": 0, "chunks": 0}
    with switched_off(way) as kwargs:
        off = run(**kwargs)
    assert off["chunks"] == len(events)
    # pydantic matters to the chunk fast path only.
    assert off["messages"] == (0 if way == "pydantic newer" else len(history))


def test_disable_fast_paths_is_not_serialized_unless_set() -> None:
    assert "disable_fast_paths" not in dumpd(wandb_model())["kwargs"]
    assert dumpd(wandb_model(disable_fast_paths=True))["kwargs"]["disable_fast_paths"]
