"""A reply on the wire: the JSON completion body and the SSE chunks of a stream.

What W&B sends for one :class:`~langchain_wandb_router.testing._responder.Reply`:
the ``chat.completion`` object, or ``chat.completion.chunk`` events (role,
reasoning and content in word-sized pieces, tool calls as fragments, the
finish chunk, then a usage chunk whose ``choices`` is empty). Reasoning goes in
``reasoning`` (W&B now) or ``reasoning_content`` (2025).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_wandb_router.testing._responder import Reply

__all__ = ["completion_body", "stream_events", "usage_body"]

_PIECE_RE = re.compile(r"\S+\s*|\s+")
_ARG_SLICE = 8


def usage_body(reply: Reply, cached_tokens: int) -> dict[str, Any]:
    """The ``usage`` object, with ``prompt_tokens_details`` if tokens were cached."""
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if cached_tokens:
        usage["prompt_tokens_details"] = {
            "cached_tokens": min(cached_tokens, reply.prompt_tokens)
        }
    return usage


def completion_body(
    model: str, reply: Reply, n: int, reasoning_field: str, cached_tokens: int
) -> dict[str, Any]:
    """The JSON answer of the ``n``-th request."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content or None,
    }
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    if reasoning_field == "reasoning" or reply.reasoning is not None:
        message[reasoning_field] = reply.reasoning
    return {
        "id": f"chatcmpl-{n:06d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage_body(reply, cached_tokens),
    }


def stream_events(
    model: str, reply: Reply, n: int, reasoning_field: str, cached_tokens: int
) -> Iterator[dict[str, Any]]:
    """The SSE events of the ``n``-th request, in order (``[DONE]`` not included)."""
    base = {
        "id": f"chatcmpl-{n:06d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if reasoning_field == "reasoning":
            delta.setdefault("reasoning", None)
        return {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in _PIECE_RE.findall(reply.reasoning or ""):
        yield chunk({reasoning_field: piece})
    for piece in _PIECE_RE.findall(reply.content):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        fn = call["function"]
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": fn["name"], "arguments": ""},
                    }
                ]
            }
        )
        args = fn["arguments"]
        for start in range(0, len(args), _ARG_SLICE):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "function": {"arguments": args[start : start + _ARG_SLICE]},
                        }
                    ]
                }
            )
    yield chunk({}, reply.finish_reason)
    yield {**base, "choices": [], "usage": usage_body(reply, cached_tokens)}
