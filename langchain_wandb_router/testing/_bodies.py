"""A reply on the wire: the JSON completion body and the SSE chunks of a stream.

What W&B sends for one :class:`~langchain_wandb_router.testing._responder.Reply`:
the ``chat.completion`` object, or ``chat.completion.chunk`` events (role,
reasoning and content in word-sized pieces, tool calls as fragments, the
finish chunk, then a usage chunk whose ``choices`` is empty). Reasoning goes in
``reasoning`` (W&B now) or ``reasoning_content`` (2025).

A request's ``n`` gives that many choices (the same answer each: the emulator
is deterministic), each with its ``index``; a stream interleaves their chunks
as servers do. ``logprobs``/``top_logprobs`` add OpenAI's ``logprobs`` object
to each choice, and to each content chunk for its delta.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from langchain_wandb_router.testing._logprobs import (
    PIECE_RE,
    content_logprobs,
    token_logprobs,
)
from langchain_wandb_router.testing._responder import Reply

__all__ = ["Answer", "Sampling", "sampling_error", "sampling_of", "usage_body"]

_ARG_SLICE = 8
_MAX_CHOICES = 128  # OpenAI's bound on n
_MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class Sampling:
    """What a request asks of the answer's shape: choices and logprobs.

    Attributes:
        choices: How many choices (``n``).
        top_logprobs: Alternatives per token, or ``None`` without ``logprobs``.
    """

    choices: int = 1
    top_logprobs: int | None = None


# One choice, no logprobs; frozen, so one instance serves every default.
_PLAIN = Sampling()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def sampling_error(body: dict[str, Any]) -> str | None:
    """Why ``n``/``logprobs``/``top_logprobs`` are invalid, or ``None``."""
    n = body.get("n")
    if n is not None and not (_is_int(n) and 1 <= n <= _MAX_CHOICES):
        return f"n must be an integer from 1 to {_MAX_CHOICES}, got {n!r}"
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        return f"logprobs must be a boolean, got {logprobs!r}"
    top = body.get("top_logprobs")
    if top is not None and not (_is_int(top) and 0 <= top <= _MAX_TOP_LOGPROBS):
        return f"top_logprobs must be an integer from 0 to {_MAX_TOP_LOGPROBS}"
    if top and not logprobs:
        return "logprobs must be set to true if top_logprobs is used"
    return None


def sampling_of(body: dict[str, Any]) -> Sampling:
    """The :class:`Sampling` of a request that passed :func:`sampling_error`."""
    top = body.get("top_logprobs") or 0
    return Sampling(
        choices=body.get("n") or 1,
        top_logprobs=top if body.get("logprobs") else None,
    )


def usage_body(reply: Reply, cached_tokens: int, choices: int = 1) -> dict[str, Any]:
    """The ``usage`` object, with ``prompt_tokens_details`` if tokens were cached.

    The prompt is read once; each choice's tokens are generated, so counted.
    """
    completion = reply.completion_tokens * choices
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }
    if cached_tokens:
        usage["prompt_tokens_details"] = {
            "cached_tokens": min(cached_tokens, reply.prompt_tokens)
        }
    return usage


def _tool_calls(reply: Reply, index: int) -> list[dict[str, Any]]:
    """The reply's tool calls as choice ``index`` makes them: ids stay unique."""
    if index == 0:
        return reply.tool_calls
    return [{**call, "id": f"{call['id']}_{index}"} for call in reply.tool_calls]


def _deltas(
    reply: Reply, index: int, reasoning_field: str, top: int | None
) -> Iterator[dict[str, Any]]:
    """Choice ``index``'s stream, one ``choices`` item per chunk."""

    def choice(
        delta: dict[str, Any],
        finish: str | None = None,
        logprobs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if reasoning_field == "reasoning":
            delta.setdefault("reasoning", None)
        return {
            "index": index,
            "delta": delta,
            "finish_reason": finish,
            "logprobs": logprobs,
        }

    yield choice({"role": "assistant", "content": ""})
    for piece in PIECE_RE.findall(reply.reasoning or ""):
        yield choice({reasoning_field: piece})
    for piece in PIECE_RE.findall(reply.content):
        logprobs = None if top is None else {"content": [token_logprobs(piece, top)]}
        yield choice({"content": piece}, logprobs=logprobs)
    for position, call in enumerate(_tool_calls(reply, index)):
        fn = call["function"]
        head = {"index": position, "id": call["id"], "type": "function"}
        yield choice(
            {
                "tool_calls": [
                    {**head, "function": {"name": fn["name"], "arguments": ""}}
                ]
            }
        )
        args = fn["arguments"]
        for start in range(0, len(args), _ARG_SLICE):
            piece = {"arguments": args[start : start + _ARG_SLICE]}
            yield choice({"tool_calls": [{"index": position, "function": piece}]})
    yield choice({}, reply.finish_reason)


@dataclass(frozen=True)
class Answer:
    """A successful reply, ready for the wire as JSON or as SSE events.

    Attributes:
        model: The model id the answer names.
        reply: What the model says (every choice says it).
        n: The request's number, in the ``chatcmpl-`` id.
        sampling: Choices and logprobs asked for.
        reasoning_field: ``reasoning`` (W&B now) or ``reasoning_content``.
        cached_tokens: Prompt tokens reported as read from the prefix cache.
    """

    model: str
    reply: Reply
    n: int
    sampling: Sampling = _PLAIN
    reasoning_field: str = "reasoning"
    cached_tokens: int = 0

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.n:06d}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model,
        }

    def _usage(self) -> dict[str, Any]:
        return usage_body(self.reply, self.cached_tokens, self.sampling.choices)

    def completion_body(self) -> dict[str, Any]:
        """The ``chat.completion`` JSON object."""
        reply, top = self.reply, self.sampling.top_logprobs
        logprobs = None if top is None else content_logprobs(reply.content, top)
        choices = []
        for index in range(self.sampling.choices):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply.content or None,
            }
            if reply.tool_calls:
                message["tool_calls"] = _tool_calls(reply, index)
            if self.reasoning_field == "reasoning" or reply.reasoning is not None:
                message[self.reasoning_field] = reply.reasoning
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "finish_reason": reply.finish_reason,
                    "logprobs": logprobs,
                }
            )
        return {
            **self._head("chat.completion"),
            "choices": choices,
            "usage": self._usage(),
        }

    def stream_events(self) -> Iterator[dict[str, Any]]:
        """The SSE events, in order (``[DONE]`` not included)."""
        head = self._head("chat.completion.chunk")
        streams = [
            _deltas(self.reply, i, self.reasoning_field, self.sampling.top_logprobs)
            for i in range(self.sampling.choices)
        ]
        # Round robin, as a server decoding the choices side by side sends them.
        for step in zip_longest(*streams):
            for item in step:
                if item is not None:
                    yield {**head, "choices": [item]}
        yield {**head, "choices": [], "usage": self._usage()}
