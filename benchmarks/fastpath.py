"""Fast converters vs langchain-openai's: CPU per call on ChatWandb's hot paths.

- messages: a 300-message agent history (questions, tool calls, tool results,
  answers with reasoning) and a 1000-message chat, converted to request dicts;
- chunks: a typical 200-chunk W&B stream (role, reasoning, content, a tool call
  in fragments, finish, usage) converted chunk by chunk.

Each figure is the best of several repeats of CPU time (``time.process_time``),
so other load on the machine inflates it little. The ratios are what matter.
ChatWandb's own rows compare it with itself under ``disable_fast_paths=True``
(langchain-openai's converters, as outside the fence's proven releases).

    python benchmarks/fastpath.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import BaseChatOpenAI, _convert_message_to_dict

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.chat import _fast_chunks, _fast_messages
from langchain_wandb_router.chat._fast_chunks import chunk_to_generation_chunk
from langchain_wandb_router.chat._fast_messages import messages_to_dicts

PROSE = (
    "The forecast for Zürich shows light rain in the morning, clearing by noon; "
    "temperatures stay between 9 and 14 °C with a westerly wind. "
)


def best_cpu(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best CPU seconds per call over ``repeat`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            for _ in range(number):
                fn()
            best = min(best, (time.process_time() - start) / number)
        finally:
            gc.enable()
    return best


def agent_history(size: int) -> list[BaseMessage]:
    """User turns, tool calls, tool results and answers, like an agent's state."""
    messages: list[BaseMessage] = [
        SystemMessage("You are a helpful travel agent. " * 20)
    ]
    turn = 0
    while len(messages) < size:
        turn += 1
        messages.append(
            HumanMessage(f"Turn {turn}: what about the weather in city {turn}?")
        )
        calls = [
            {
                "name": "get_weather",
                "args": {"city": f"City {turn}", "days": 3, "units": {"temp": "C"}},
                "id": f"call_{turn}_{i}",
            }
            for i in range(2)
        ]
        messages.append(
            AIMessage(
                "", tool_calls=calls, additional_kwargs={"reasoning_content": PROSE}
            )
        )
        for call in calls:
            result = {"city": call["args"]["city"], "days": [PROSE] * 3}
            messages.append(ToolMessage(json.dumps(result), tool_call_id=call["id"]))
        messages.append(
            AIMessage(PROSE * 8, additional_kwargs={"reasoning_content": PROSE * 2})
        )
    return messages[:size]


def chat_history(size: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("Be concise.")]
    while len(messages) < size:
        messages.append(HumanMessage("Tell me more about that. " * 4))
        messages.append(AIMessage(PROSE * 6))
    return messages[:size]


def wandb_stream() -> list[dict[str, Any]]:
    """200 chunks as W&B sends them for a reasoning model calling one tool."""
    base = {
        "id": "chatcmpl-000001",
        "object": "chat.completion.chunk",
        "created": 1_750_000_000,
        "model": "Qwen/Qwen3-235B-A22B-Thinking-2507",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        delta.setdefault("reasoning", None)
        return {
            **base,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            ],
        }

    words = (PROSE * 20).split()
    args = json.dumps(
        {"city": "Zürich", "days": 3, "units": {"temp": "C"}, "note": PROSE}
    )
    pieces = 25
    step = -(-len(args) // pieces)
    fragments = [args[i : i + step] for i in range(0, len(args), step)]
    # role + reasoning + content + tool header + fragments + finish + usage = 200
    content = 200 - 1 - 60 - 1 - len(fragments) - 1 - 1
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"reasoning": w + " "}) for w in words[:60]]
    events += [chunk({"content": w + " "}) for w in words[60 : 60 + content]]
    events.append(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        )
    )
    events += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]})
        for f in fragments
    ]
    events.append(chunk({}, "tool_calls"))
    events.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 812,
                "completion_tokens": 199,
                "total_tokens": 1011,
                "prompt_tokens_details": {"cached_tokens": 512},
            },
        }
    )
    return events


def report(label: str, parent: float, fast: float, unit: str = "call") -> None:
    print(
        f"{label:<44} parent {parent * 1e6:10.1f} µs/{unit}   "
        f"fast {fast * 1e6:9.1f} µs/{unit}   x{parent / fast:6.1f}"
    )


def bench_messages(repeat: int) -> None:
    for label, messages, number in (
        ("300-message agent history", agent_history(300), 20),
        ("1000-message chat", chat_history(1000), 10),
    ):
        assert messages_to_dicts(messages) == [
            _convert_message_to_dict(m) for m in messages
        ]
        parent = best_cpu(
            lambda m=messages: [_convert_message_to_dict(x) for x in m], number, repeat
        )
        fast = best_cpu(lambda m=messages: messages_to_dicts(m), number, repeat)
        report(label, parent, fast)


def convert_all(
    convert: Callable[[dict[str, Any], type], Any], stream: list[dict[str, Any]]
) -> None:
    default: type = AIMessageChunk
    for event in stream:
        default = convert(event, default).message.__class__


def collect(
    convert: Callable[[dict[str, Any], type], Any], stream: list[dict[str, Any]]
) -> list[Any]:
    default: type = AIMessageChunk
    out = []
    for event in stream:
        chunk = convert(event, default)
        default = chunk.message.__class__
        out.append(chunk)
    return out


def bench_chunks(repeat: int) -> None:
    stream = wandb_stream()
    assert len(stream) == 200, len(stream)
    openai = ChatOpenAI(model="x", api_key="sk-test", base_url="http://127.0.0.1:1")
    # A model id outside the catalog: no cost lookup on the usage chunk.
    settings: dict[str, Any] = {
        "model": "bench/unknown",
        "api_key": "k",
        "base_url": "http://127.0.0.1:1",
    }
    wandb = ChatWandb(**settings)
    wandb_off = ChatWandb(**settings, disable_fast_paths=True)
    n = len(stream)

    def parent(event: dict[str, Any], default: type) -> Any:
        return BaseChatOpenAI._convert_chunk_to_generation_chunk(
            openai, event, default, None
        )

    def fast(event: dict[str, Any], default: type) -> Any:
        return chunk_to_generation_chunk(event, default, None)

    def chat_wandb(event: dict[str, Any], default: type) -> Any:
        return wandb._convert_chunk_to_generation_chunk(event, default, None)

    # ChatWandb itself, fast paths switched off (the parent's converter, then
    # ChatWandb's shaping) against on: same outputs, compared first.
    def chat_wandb_parent(event: dict[str, Any], default: type) -> Any:
        return wandb_off._convert_chunk_to_generation_chunk(event, default, None)

    assert collect(chat_wandb_parent, stream) == collect(chat_wandb, stream)
    for label, slow, quick in (
        ("200-chunk stream, langchain-openai semantics", parent, fast),
        ("200-chunk stream, ChatWandb semantics", chat_wandb_parent, chat_wandb),
    ):
        t_slow = best_cpu(lambda s=slow: convert_all(s, stream), 10, repeat) / n
        t_fast = best_cpu(lambda q=quick: convert_all(q, stream), 10, repeat) / n
        report(label, t_slow, t_fast, "chunk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(
        f"langchain-openai {version('langchain-openai')}, "
        f"langchain-core {version('langchain-core')}, pydantic {version('pydantic')}"
    )
    fences = (_fast_messages.MESSAGES_FENCE, _fast_chunks.CHUNK_FENCE)
    for fence in fences:
        print(fence.reason)
    if not all(fence.enabled for fence in fences):
        raise SystemExit("a fast path is off here: nothing to compare")
    bench_messages(args.repeat)
    bench_chunks(args.repeat)


if __name__ == "__main__":
    main()
