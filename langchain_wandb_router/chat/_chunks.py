"""Shaping W&B's output into LangChain messages and chunks, for ChatWandb.

W&B names its reasoning field two ways, core's v1 content blocks need distinct
merge indices when a stream carries both reasoning and tool calls, and a
stream needs a little state: the chunk class to continue, and the text the
caller has already been given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_wandb_router.catalog._pricing import call_cost_usd
from langchain_wandb_router.chat._fast_chunks import chunk_to_generation_chunk
from langchain_wandb_router.chat._structured import parse_structured
from langchain_wandb_router.errors import (
    WandbError,
    stream_interrupted,
)

__all__ = [
    "REASONING_KEYS",
    "ChunkConverter",
    "StreamTracker",
    "attach_parsed",
    "fast_chunk",
    "index_v1_blocks",
    "price_usage_chunk",
    "reasoning_of",
    "shape_chunk",
    "shape_result",
]

REASONING_KEYS = ("reasoning", "reasoning_content")
"""Where W&B puts reasoning text, in order of preference."""

ChunkConverter = Callable[
    [dict[str, Any], type, "dict[str, Any] | None"], ChatGenerationChunk | None
]
"""``BaseChatOpenAI._convert_chunk_to_generation_chunk``'s shape."""


def reasoning_of(fields: Mapping[str, Any]) -> str | None:
    """W&B's reasoning text: ``reasoning`` now, ``reasoning_content`` in 2025."""
    for key in REASONING_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def index_v1_blocks(message: AIMessageChunk) -> None:
    """Give v1 stream blocks distinct merge indices per kind.

    Left alone, core numbers a reasoning block 0 and the first tool-call chunk
    keeps the wire's ``index: 0``, so adding the chunks merges the two into one
    broken block. String ``lc_`` indices keep reasoning, text and each tool
    call apart; tool calls are still matched to their block by id at the end.
    """
    blocks = message.content_blocks
    if not blocks:
        return
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_call_chunk":
            block["index"] = f"lc_tool_{block.get('index') or 0}"
        else:
            block["index"] = f"lc_{kind}"
    message.content = blocks  # type: ignore[assignment]


def shape_result(
    result: ChatResult, response: Mapping[str, Any], model: str
) -> ChatResult:
    """Add W&B's reasoning, provider, served model and cost to a JSON answer.

    Args:
        result: What BaseChatOpenAI made of ``response``.
        response: W&B's decoded chat.completion.
        model: The requested model, for answers that do not name one.
    """
    served = response.get("model") or model
    for generation, choice in zip(
        result.generations, response.get("choices") or [], strict=False
    ):
        message = generation.message
        reasoning = reasoning_of(choice.get("message") or {})
        if reasoning is not None:
            message.additional_kwargs["reasoning_content"] = reasoning
        message.response_metadata["model_provider"] = "wandb"
        message.response_metadata["model_name"] = served
        if isinstance(message, AIMessage):
            cost = call_cost_usd(served, message.usage_metadata)
            if cost is not None:
                message.response_metadata["cost_usd"] = cost
    if result.llm_output is not None:
        result.llm_output["model_provider"] = "wandb"
    return result


def shape_chunk(
    generation_chunk: ChatGenerationChunk,
    chunk: Mapping[str, Any],
    model: str,
    *,
    v1: bool,
) -> ChatGenerationChunk:
    """Add W&B's reasoning, provider and cost to one streamed chunk.

    Args:
        generation_chunk: What BaseChatOpenAI made of ``chunk``.
        chunk: One decoded SSE event.
        model: The requested model, for events that do not name one.
        v1: Whether the model emits ``output_version="v1"`` content blocks.
    """
    message = generation_chunk.message
    message.response_metadata["model_provider"] = "wandb"
    choices = chunk.get("choices")
    if choices:
        reasoning = reasoning_of(choices[0].get("delta") or {})
        if reasoning is not None:
            message.additional_kwargs["reasoning_content"] = reasoning
    else:
        price_usage_chunk(generation_chunk, chunk, model)
    if v1 and isinstance(message, AIMessageChunk):
        index_v1_blocks(message)
    return generation_chunk


def price_usage_chunk(
    generation_chunk: ChatGenerationChunk, chunk: Mapping[str, Any], model: str
) -> None:
    """Put the call's cost on the stream's closing usage chunk (no ``choices``).

    The served model prices it. ``model_name`` itself came with the finish
    chunk; repeating it here would concatenate when chunks are added.

    Args:
        generation_chunk: The chunk made of ``chunk``; changed in place.
        chunk: The decoded SSE event, which has no ``choices``.
        model: The requested model, for events that do not name one.
    """
    message = generation_chunk.message
    if not isinstance(message, AIMessageChunk) or not message.usage_metadata:
        return
    cost = call_cost_usd(chunk.get("model") or model, message.usage_metadata)
    if cost is not None:
        info = dict(generation_chunk.generation_info or {})
        info["cost_usd"] = cost
        generation_chunk.generation_info = info


def fast_chunk(
    chunk: Mapping[str, Any],
    default_chunk_class: type,
    base_generation_info: Mapping[str, Any] | None,
    model: str,
) -> ChatGenerationChunk | None:
    """ChatWandb's ``output_version="v0"`` chunk, built in one pass.

    W&B's provider name, reasoning and (on the closing usage chunk) cost are
    put in as the chunk is built, instead of shaping the parent's chunk after.

    Args:
        chunk: The decoded SSE event.
        default_chunk_class: The class of the previous chunk's message.
        base_generation_info: Generation info every chunk starts from.
        model: The requested model, for pricing events that do not name one.

    Returns:
        The chunk, or ``None`` for a shape only the parent handles (or while
        the fast path is off).
    """
    fast = chunk_to_generation_chunk(
        chunk,
        default_chunk_class,
        base_generation_info,
        model_provider="wandb",
        reasoning_keys=REASONING_KEYS,
    )
    if fast is not None and not chunk.get("choices"):
        price_usage_chunk(fast, chunk, model)
    return fast


def attach_parsed(result: ChatResult, schema: Any) -> None:
    """Put pydantic structured output in ``additional_kwargs["parsed"]``.

    Args:
        result: A non-streamed result; its messages are changed in place.
        schema: The call's ``response_format``; only a pydantic class is used.
    """
    if not (isinstance(schema, type) and is_basemodel_subclass(schema)):
        return
    for generation in result.generations:
        parsed = parse_structured(schema, generation.message.text)
        if parsed is not None:
            generation.message.additional_kwargs["parsed"] = parsed


class StreamTracker:
    """Per-stream state: chunk class continuity and the text yielded so far.

    The text serves pydantic structured output (parsed at the end) and
    :class:`StreamInterruptedError` (what the caller already has). Keeping it
    costs one list append per chunk.
    """

    __slots__ = ("_chunk_class", "_convert", "_schema", "_text")

    def __init__(self, convert: ChunkConverter, schema: Any) -> None:
        self._convert = convert
        self._chunk_class: type = AIMessageChunk
        self._schema = (
            schema
            if isinstance(schema, type) and is_basemodel_subclass(schema)
            else None
        )
        self._text: list[str] = []

    def convert(self, event: dict[str, Any]) -> ChatGenerationChunk | None:
        """Turn one SSE event into a chunk (``None``: nothing to yield)."""
        chunk = self._convert(event, self._chunk_class, None)
        if chunk is None:
            return None
        self._chunk_class = chunk.message.__class__
        self._text.append(chunk.text)
        return chunk

    def interrupted(self, exc: WandbError, model: str) -> WandbError:
        """The error to raise for ``exc``, given what was already yielded.

        Before any output, ``exc`` itself. After it, a
        :class:`StreamInterruptedError` whose ``partial_text`` is that output:
        nothing retries past the first chunk, so the caller must learn that
        the answer is cut short, and what it already holds.
        """
        if not self._text:
            return exc
        return stream_interrupted(exc, model, partial_text="".join(self._text))

    @contextmanager
    def translating_errors(self, model: str) -> Iterator[None]:
        """Raise :meth:`interrupted`'s error for a ``WandbError`` in the block.

        Args:
            model: The requested model, for the message.
        """
        try:
            yield
        except WandbError as exc:
            error = self.interrupted(exc, model)
            if error is exc:
                raise
            raise error from exc

    def parsed_chunk(self) -> ChatGenerationChunk | None:
        """A closing chunk carrying ``parsed`` for pydantic structured output."""
        if self._schema is None:
            return None
        parsed = parse_structured(self._schema, "".join(self._text))
        if parsed is None:
            return None
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", additional_kwargs={"parsed": parsed})
        )
