"""Fast stream-chunk conversion for ChatWandb, equal to langchain-openai's.

:func:`chunk_to_generation_chunk` turns one streamed chunk dict into a
``ChatGenerationChunk``. It covers the shapes W&B streams actually have and
returns ``None`` for anything else, so the caller falls back to
langchain-openai. The output is the same as langchain-openai's private
``_convert_chunk_to_generation_chunk`` (proven by property tests), only
cheaper: the parent builds a message through pydantic validation, then mutates
it, then validates a generation around it. Here each object is assembled once
from values that are already valid, the way ``model_construct`` does, which is
only sound while core's classes have the fields and validators this module
reproduces and pydantic keeps instances the way it does.

So the fast path is fenced (see ``_fast_messages``): it runs only on the
langchain-openai, langchain-core and pydantic releases it was proven equal
against (:data:`CHUNKS_PROVEN`), while core's classes still have the shape it
assembles, and unless switched off; decided once at import, logged on one
DEBUG line. Otherwise ChatWandb uses langchain-openai's converter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import (
    AIMessageChunk,
    BaseMessageChunk,
    HumanMessageChunk,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils.json import parse_partial_json
from pydantic import BaseModel

from langchain_wandb_router.chat._fast_messages import (
    LANGCHAIN_CORE_PROVEN,
    LANGCHAIN_OPENAI_PROVEN,
    Fence,
    Release,
    check_fence,
)

__all__ = [
    "CHUNKS_PROVEN",
    "CHUNK_FASTPATH_ENABLED",
    "CHUNK_FENCE",
    "PYDANTIC_PROVEN",
    "chunk_fence",
    "chunk_to_generation_chunk",
]

logger = logging.getLogger(__name__)

# What this module reproduces, per class: its fields in order and its
# validators. Assembling objects without validation is exact only while these
# hold, so any change in langchain-core turns the chunk fast path off.
_AI_CHUNK_FIELDS = (
    "content",
    "additional_kwargs",
    "response_metadata",
    "type",
    "name",
    "id",
    "tool_calls",
    "invalid_tool_calls",
    "usage_metadata",
    "tool_call_chunks",
    "chunk_position",
)
_AI_CHUNK_VALIDATORS = frozenset(
    {"_backwards_compat_tool_calls", "init_tool_calls", "init_server_tool_calls"}
)
_GENERATION_FIELDS = ("text", "generation_info", "type", "message")
_GENERATION_VALIDATORS = frozenset({"set_text"})

PYDANTIC_PROVEN: tuple[Release, Release] = ((2, 10, 6), (2, 14, 4))
"""The pydantic releases the proofs ran on (objects are assembled, not validated)."""

CHUNKS_PROVEN: dict[str, tuple[Release, Release]] = {
    # Before 1.4 the parent differs on the finish chunk (1.1 marks it
    # ``chunk_position="last"``) and on usage (``or 0`` defaults, no
    # ``cache_creation``): the floor is where the behaviour reproduced begins.
    "langchain-openai": LANGCHAIN_OPENAI_PROVEN,
    "langchain-core": LANGCHAIN_CORE_PROVEN,
    "pydantic": PYDANTIC_PROVEN,
}
"""What the chunk fast path needs, package by package, inclusive."""


def _shape_is(model: type[BaseModel], fields: tuple[str, ...], validators: Any) -> bool:
    decorators = model.__pydantic_decorators__
    return (
        tuple(model.model_fields) == fields
        and frozenset(decorators.model_validators) == validators
        and not decorators.field_validators
        and not decorators.validators
        and not decorators.root_validators
        and model.__pydantic_post_init__ is None
    )


def chunk_fence(env: Mapping[str, str] | None = None) -> Fence:
    """The chunk fast path's fence for this installation and ``env``."""
    fence = check_fence(
        "stream chunks", CHUNKS_PROVEN, os.environ if env is None else env
    )
    if fence.enabled and not (
        _shape_is(AIMessageChunk, _AI_CHUNK_FIELDS, _AI_CHUNK_VALIDATORS)
        and _shape_is(ChatGenerationChunk, _GENERATION_FIELDS, _GENERATION_VALIDATORS)
    ):
        return Fence(
            False,
            "ChatWandb stream chunks: langchain-openai's converters (langchain-core's "
            "AIMessageChunk or ChatGenerationChunk no longer has the fields and "
            "validators the fast path assembles)",
        )
    return fence


CHUNK_FENCE: Fence = chunk_fence()
"""The decision taken at import (see :data:`CHUNK_FASTPATH_ENABLED`)."""

CHUNK_FASTPATH_ENABLED: bool = CHUNK_FENCE.enabled
"""Whether :func:`chunk_to_generation_chunk` is active (else it returns ``None``).

Decided once, at import, by :data:`CHUNK_FENCE`. Tests set it to force either
path.
"""

logger.debug("%s", CHUNK_FENCE.reason)

_set = object.__setattr__
_NEW_AI_CHUNK = AIMessageChunk.__new__
_NEW_GENERATION = ChatGenerationChunk.__new__

# What validation leaves in ``model_fields_set`` for the parent's objects.
_AI_SET = ("content", "additional_kwargs", "id", "tool_call_chunks")
_AI_SET_WITH_CALLS = (*_AI_SET, "tool_calls", "invalid_tool_calls")
_GENERATION_SET = ("message", "generation_info", "text")

_PRICED_TIERS = frozenset({"priority", "flex"})


def _build_ai_chunk(
    content: str,
    additional_kwargs: dict[str, Any],
    response_metadata: dict[str, Any],
    id_: str | None,
    chunks: list[ToolCallChunk],
    usage: dict[str, Any] | None,
) -> AIMessageChunk:
    """Assemble the message the parent's validation would produce."""
    if chunks:
        tool_calls, invalid = _parse_tool_call_chunks(chunks)
        fields_set = set(_AI_SET_WITH_CALLS)
    else:
        tool_calls, invalid = [], []
        fields_set = set(_AI_SET)
    if usage is not None:
        fields_set.add("usage_metadata")
    message = _NEW_AI_CHUNK(AIMessageChunk)
    _set(
        message,
        "__dict__",
        {
            "content": content,
            "additional_kwargs": additional_kwargs,
            "response_metadata": response_metadata,
            "type": "AIMessageChunk",
            "name": None,
            "id": id_,
            "tool_calls": tool_calls,
            "invalid_tool_calls": invalid,
            "usage_metadata": usage,
            "tool_call_chunks": chunks,
            "chunk_position": None,
        },
    )
    _set(message, "__pydantic_fields_set__", fields_set)
    _set(message, "__pydantic_extra__", {})
    _set(message, "__pydantic_private__", None)
    return message


def _parse_tool_call_chunks(
    chunks: list[ToolCallChunk],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Core's ``init_tool_calls`` for a chunk that carries tool-call fragments."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for chunk in chunks:
        args = chunk["args"]
        try:
            parsed = parse_partial_json(args) if args else {}
        except Exception:  # core counts any parse failure as an invalid call
            parsed = None
        if isinstance(parsed, dict):
            calls.append(
                tool_call(name=chunk["name"] or "", args=parsed, id=chunk["id"])
            )
        else:
            invalid.append(
                invalid_tool_call(
                    name=chunk["name"], args=args, id=chunk["id"], error=None
                )
            )
    return calls, invalid


def _build_generation(
    message: BaseMessageChunk, generation_info: dict[str, Any] | None
) -> ChatGenerationChunk:
    generation = _NEW_GENERATION(ChatGenerationChunk)
    _set(
        generation,
        "__dict__",
        {
            "text": message.text,
            "generation_info": generation_info,
            "type": "ChatGenerationChunk",
            "message": message,
        },
    )
    _set(generation, "__pydantic_fields_set__", set(_GENERATION_SET))
    _set(generation, "__pydantic_extra__", None)
    _set(generation, "__pydantic_private__", None)
    return generation


# The usage counts W&B sends (prompt, completion, total), read together.
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _usage_metadata(
    usage: Any, chunk: Mapping[str, Any]
) -> dict[str, Any] | Literal[False]:
    """langchain-openai's ``_create_usage_metadata`` for a chunk's ``usage``.

    Returns ``False`` (fall back) for priced service tiers and for counts that
    are not plain integers.
    """
    if not isinstance(usage, dict) or chunk.get("service_tier") in _PRICED_TIERS:
        return False
    prompt, completion, total = (usage.get(key) for key in _COUNTS)
    if not _none_or(int, prompt, completion, total):
        return False
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    if not isinstance(prompt_details, dict) or not isinstance(completion_details, dict):
        return False
    input_tokens = prompt if prompt is not None else 0
    output_tokens = completion if completion is not None else 0
    input_details = {
        key: value
        for key, value in (
            ("audio", prompt_details.get("audio_tokens")),
            ("cache_read", prompt_details.get("cached_tokens")),
            ("cache_creation", prompt_details.get("cache_write_tokens")),
        )
        if value is not None
    }
    output_details = {
        key: value
        for key, value in (
            ("audio", completion_details.get("audio_tokens")),
            ("reasoning", completion_details.get("reasoning_tokens")),
        )
        if value is not None
    }
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total if total is not None else input_tokens + output_tokens,
        "input_token_details": input_details,
        "output_token_details": output_details,
    }


def _tool_call_chunks(raw: Any) -> list[ToolCallChunk] | None:
    """The delta's tool-call fragments, or ``None`` for an unusual shape."""
    if not isinstance(raw, list):
        return None
    chunks: list[ToolCallChunk] = []
    for fragment in raw:
        if not isinstance(fragment, dict):
            return None
        function = fragment.get("function")
        index = fragment.get("index", ...)
        if not isinstance(function, dict) or not (index is None or type(index) is int):
            return None
        name = function.get("name")
        args = function.get("arguments")
        id_ = fragment.get("id")
        if not _none_or(str, name, args, id_):
            return None
        chunks.append(tool_call_chunk(name=name, args=args, id=id_, index=index))
    return chunks


def _none_or(kind: type, *values: Any) -> bool:
    """Whether each of ``values`` is ``None`` or exactly of type ``kind``."""
    for value in values:  # noqa: SIM110 - a loop: no generator per chunk
        if value is not None and type(value) is not kind:
            return False
    return True


def _reasoning(delta: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _usage_only_chunk(
    chunk: Mapping[str, Any],
    default_chunk_class: type[BaseMessageChunk],
    base_generation_info: Mapping[str, Any] | None,
    model_provider: str | None,
) -> ChatGenerationChunk | None:
    """The closing ``choices: []`` chunk: built the parent's way (once a stream)."""
    if default_chunk_class is not AIMessageChunk or "chunk" in chunk:
        return None
    usage = _usage_metadata(raw, chunk) if (raw := chunk.get("usage")) else None
    if usage is False:  # a shape only the parent handles
        return None
    message = AIMessageChunk(content="", usage_metadata=usage)
    if model_provider is not None:
        message.response_metadata["model_provider"] = model_provider
    return ChatGenerationChunk(
        message=message,
        generation_info=base_generation_info,
    )


def chunk_to_generation_chunk(
    chunk: Mapping[str, Any],
    default_chunk_class: type[BaseMessageChunk],
    base_generation_info: Mapping[str, Any] | None = None,
    *,
    model_provider: str | None = None,
    reasoning_keys: Sequence[str] = (),
) -> ChatGenerationChunk | None:
    """Convert one streamed Chat Completions chunk dict, or decline.

    With the defaults the result equals langchain-openai's
    ``BaseChatOpenAI._convert_chunk_to_generation_chunk`` under
    ``output_version="v0"`` (callers using v1 must not call this). Two options
    reproduce what ChatWandb adds on top, without a second pass:

    Args:
        chunk: One decoded SSE ``data:`` object.
        default_chunk_class: The class of the previous chunk's message
            (``AIMessageChunk`` for the first).
        base_generation_info: Generation info every chunk starts from.
        model_provider: ``None`` writes ``"openai"`` to the
            ``response_metadata["model_provider"]`` of choice chunks, as the
            parent does; a name (ChatWandb: ``"wandb"``) is written to every
            chunk, including the closing usage chunk.
        reasoning_keys: Delta fields holding reasoning text, in order of
            preference; the first non-empty string goes to
            ``additional_kwargs["reasoning_content"]``.

    Returns:
        The generation chunk, or ``None`` when the fast path is disabled (see
        :data:`CHUNK_FASTPATH_ENABLED`) or the chunk has a shape it does not
        cover (non-assistant roles or chunk classes, ``function_call``, list
        content, non-string ids, odd tool-call fragments, priced service tiers,
        non-integer token counts, a ``null`` delta); the caller then uses the
        parent, which also decides the ``null``-delta case.
    """
    if not CHUNK_FASTPATH_ENABLED or chunk.get("type") == "content.delta":
        return None
    choices = chunk.get("choices")
    if not choices:
        return _usage_only_chunk(
            chunk, default_chunk_class, base_generation_info, model_provider
        )
    if not isinstance(choices, list):
        return None
    choice = choices[0]
    if not isinstance(choice, dict):
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return None
    role = delta.get("role")
    if role == "user" or default_chunk_class is HumanMessageChunk:
        return None
    if role != "assistant" and default_chunk_class is not AIMessageChunk:
        return None
    if delta.get("function_call"):
        return None
    content = delta.get("content") or ""
    id_ = delta.get("id")
    # Written out rather than _none_or(str, id_): this runs on every chunk.
    if type(content) is not str or (id_ is not None and type(id_) is not str):
        return None

    usage = _usage_metadata(raw, chunk) if (raw := chunk.get("usage")) else None
    if usage is False:  # a shape only the parent handles
        return None
    tool_chunks: list[ToolCallChunk] = []
    if raw_calls := delta.get("tool_calls"):
        parsed_chunks = _tool_call_chunks(raw_calls)
        if parsed_chunks is None:
            return None
        tool_chunks = parsed_chunks

    additional_kwargs: dict[str, Any] = {}
    if reasoning_keys:
        reasoning = _reasoning(delta, reasoning_keys)
        if reasoning is not None:
            additional_kwargs["reasoning_content"] = reasoning

    generation_info = dict(base_generation_info) if base_generation_info else {}
    if finish_reason := choice.get("finish_reason"):
        generation_info["finish_reason"] = finish_reason
        for source, target in _FINISH_FIELDS:
            if value := chunk.get(source):
                generation_info[target] = value
    if logprobs := choice.get("logprobs"):
        generation_info["logprobs"] = logprobs

    message = _build_ai_chunk(
        content,
        additional_kwargs,
        {"model_provider": "openai" if model_provider is None else model_provider},
        id_,
        tool_chunks,
        usage,
    )
    return _build_generation(message, generation_info or None)


# Chunk-level fields the parent copies into generation_info on the finish chunk.
_FINISH_FIELDS = (
    ("model", "model_name"),
    ("system_fingerprint", "system_fingerprint"),
    ("service_tier", "service_tier"),
)
