"""LangChain's model hooks, and ChatWandb's calls: requests, retries, chunks.

:class:`CoreHooks` writes LangChain's four hooks once, for ChatWandb and
WandbRouter alike. :class:`WandbCalls` answers them on the transport: it
builds the request (URL, headers, body, timeout, the call's deadline, what a
404 should say), picks the pooled (or the user's) httpx client, runs the
attempts under the retry policy, and shapes results and stream chunks. The
sync and async calls share every step but the ones that block (sending,
iterating, the token callback).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from langchain_wandb_router import transport as _transport
from langchain_wandb_router.catalog._models import get_model_info, suggest_model_id
from langchain_wandb_router.chat._chunks import (
    StreamTracker,
    attach_parsed,
    fast_chunk,
    shape_chunk,
    shape_result,
)
from langchain_wandb_router.chat._fields import check_stream_usage
from langchain_wandb_router.chat._params import WandbParams
from langchain_wandb_router.errors import not_found_advice
from langchain_wandb_router.transport import _deadline, _retry
from langchain_wandb_router.transport._config import DEFAULT_BASE_URL

__all__ = ["CoreCall", "CoreHooks", "WandbCalls"]

# Reasoning models can think for minutes on a non-streamed call; connecting
# should still fail fast.
_DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


# Not frozen: a frozen dataclass sets each field through object.__setattr__,
# and one is made on every call.
@dataclass(slots=True)
class CoreCall:
    """One call of LangChain's model hooks, as one value."""

    messages: list[BaseMessage]
    stop: list[str] | None
    run_manager: Any
    """The call's run manager (sync or async, as the hook), if any."""
    kwargs: dict[str, Any]


class CoreHooks:
    """LangChain's four model hooks, written once for ChatWandb and WandbRouter.

    LangChain calls ``_generate``/``_agenerate``/``_stream``/``_astream`` by
    name with fixed signatures, sync and async (a twin by LangChain's
    design); each hands the call, as one :class:`CoreCall`, to the model's own
    ``_answer``/``_aanswer``/``_chunks``/``_achunks``.
    """

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(CoreCall(messages, stop, run_manager, kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._aanswer(CoreCall(messages, stop, run_manager, kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        return self._chunks(CoreCall(messages, stop, run_manager, kwargs))

    def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        # A plain function returning the model's async iterator: no second
        # generator layer on every chunk.
        return self._achunks(CoreCall(messages, stop, run_manager, kwargs))

    def _answer(self, call: CoreCall) -> ChatResult:
        raise NotImplementedError

    async def _aanswer(self, call: CoreCall) -> ChatResult:
        raise NotImplementedError

    def _chunks(self, call: CoreCall) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError

    def _achunks(self, call: CoreCall) -> AsyncIterator[ChatGenerationChunk]:
        raise NotImplementedError


class WandbCalls(CoreHooks, WandbParams):
    """The call hooks, on W&B's transport (no openai SDK client)."""

    # Model id -> the catalog's successor, for 404 messages (model= per call).
    _successors: dict[str, str | None] = PrivateAttr(default_factory=dict)
    # Model id -> what else a 404 should say (model= per call).
    _advice: dict[str, str | None] = PrivateAttr(default_factory=dict)

    # ---------------------------------------------------- the calls, sync and async
    # The thin interpreters of the shared steps below (request, retry
    # arguments, result or chunks): each pair differs only in blocking or
    # awaiting the send, the iteration and the token callback.

    def _answer(self, call: CoreCall) -> ChatResult:
        req = self._json_request(call.messages, call.stop, call.kwargs)
        send = functools.partial(_transport.post_json, self._sync_http(), req)
        response = self.retry_policy.call(send, *self._retrying(req))
        return self._finish_result(response, call.kwargs)

    async def _aanswer(self, call: CoreCall) -> ChatResult:
        req = self._json_request(call.messages, call.stop, call.kwargs)
        send = functools.partial(_transport.apost_json, self._async_http(), req)
        try:
            response = await self.retry_policy.acall(send, *self._retrying(req))
        except asyncio.CancelledError as exc:
            # Core ends a model run only for errors its gather() returns; a
            # cancelled call (a LangGraph run cancelled, a hedge that lost)
            # would leave the run open in every tracer. End it here.
            if call.run_manager is not None:
                await asyncio.shield(call.run_manager.on_llm_error(exc))
            raise
        return self._finish_result(response, call.kwargs)

    def _chunks(self, call: CoreCall) -> Iterator[ChatGenerationChunk]:
        tracker, req = self._stream_request(call)
        send = functools.partial(_transport.stream_events, self._sync_http(), req)
        run_manager = call.run_manager

        def opening() -> tuple[dict[str, Any], Iterator[dict[str, Any]]] | None:
            return _retry.open_first(send())

        with tracker.translating_errors(req.model):
            opened = self.retry_policy.call(opening, *self._retrying(req))
            with _retry.streamed(opened) as events:
                for event in events:
                    if (chunk := tracker.convert(event)) is not None:
                        if run_manager:
                            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
        if (final := tracker.parsed_chunk()) is not None:
            yield final

    async def _achunks(self, call: CoreCall) -> AsyncIterator[ChatGenerationChunk]:
        tracker, req = self._stream_request(call)
        send = functools.partial(_transport.astream_events, self._async_http(), req)
        run_manager = call.run_manager

        def opening() -> Awaitable[
            tuple[dict[str, Any], AsyncIterator[dict[str, Any]]] | None
        ]:
            return _retry.aopen_first(send())

        with tracker.translating_errors(req.model):
            opened = await self.retry_policy.acall(opening, *self._retrying(req))
            async with _retry.astreamed(opened) as events:
                async for event in events:
                    if (chunk := tracker.convert(event)) is not None:
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
        if (final := tracker.parsed_chunk()) is not None:
            yield final

    # ------------------------------------------------- the steps both share

    def _json_request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> _transport.Request:
        """The request for a JSON answer, the call's deadline in it."""
        # A JSON answer, even with streaming=True (e.g. under disable_streaming).
        kwargs["stream"] = False
        return self._request(self._get_request_payload(messages, stop=stop, **kwargs))

    def _stream_request(
        self, call: CoreCall
    ) -> tuple[StreamTracker, _transport.Request]:
        """The stream's chunk tracker and request (the call's deadline in it)."""
        kwargs = call.kwargs  # this call's own dict: changing it is safe
        # Usage is always requested: cost, budgets and usage callbacks need it,
        # and W&B sends it anyway; asking for a stream without it is refused.
        check_stream_usage(kwargs.pop("stream_usage", None))
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(call.messages, stop=call.stop, **kwargs)
        tracker = StreamTracker(
            self._convert_chunk_to_generation_chunk, kwargs.get("response_format")
        )
        return tracker, self._request(payload)

    def _retrying(self, req: _transport.Request) -> tuple[int, str, float | None]:
        """The retry policy's arguments for ``req``: retries, label, deadline."""
        return self.max_retries, req.model, req.deadline

    def _finish_result(
        self, response: dict[str, Any], kwargs: dict[str, Any]
    ) -> ChatResult:
        """The ChatResult of a JSON answer, ``parsed`` attached when asked for."""
        result = self._create_chat_result(response, {})
        attach_parsed(result, kwargs.get("response_format"))
        return result

    # ----------------------------------------------------- requests and clients

    def _request(self, payload: dict[str, Any]) -> _transport.Request:
        """``payload`` made a request, carrying the call's deadline.

        The request carries the deadline rather than a context variable: the
        transport enters it around each blocking step, and never across a
        stream's yield (streams run in their consumer's context).
        """
        model = payload["model"]
        private = self._private()
        return _transport.Request(
            url=private["_url"],
            headers=private["_headers"],
            body=_transport.encode_body(payload),
            model=model,
            timeout=self.request_timeout
            if self.request_timeout is not None
            else _DEFAULT_TIMEOUT,
            successor=self._successor_of(model),
            deadline=self._call_deadline(),
            advice=self._advice_of(model),
        )

    def _call_deadline(self) -> float | None:
        """This call's deadline in monotonic seconds (``None``: none).

        Its own ``deadline``, or a caller's earlier one (the router's) if one
        is in force.
        """
        seconds = self.deadline
        own = None if seconds is None else time.monotonic() + seconds
        return _deadline.in_force(own)

    def _advice_of(self, model: str) -> str | None:
        """What a 404 for ``model`` should add (a close id, the base URL), cached."""
        advice: dict[str, str | None] = self._private()["_advice"]
        if model not in advice:
            base = self.openai_api_base
            advice[model] = not_found_advice(
                suggestion=suggest_model_id(model),
                base_url=base if base != DEFAULT_BASE_URL else None,
                default_base_url=DEFAULT_BASE_URL,
            )
        return advice[model]

    def _successor_of(self, model: str) -> str | None:
        """The catalog's successor for ``model`` (a 404 names it), cached."""
        successors: dict[str, str | None] = self._private()["_successors"]
        if model not in successors:
            info = get_model_info(model)
            successors[model] = info.successor if info is not None else None
        return successors[model]

    def _sync_http(self) -> _transport.SyncHTTP:
        client: _transport.SyncHTTP | None = self.http_client
        if client is not None:
            return client
        return _transport.sync_client(self._private()["_pool_key"])

    def _async_http(self) -> _transport.AsyncHTTP:
        client: _transport.AsyncHTTP | None = self.http_async_client
        if client is not None:
            return client
        return _transport.async_client(self._private()["_pool_key"])

    # ----------------------------------------------------------------- results

    def _create_chat_result(
        self,
        response: dict[str, Any] | Any,
        generation_info: dict[str, Any] | None = None,
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        return shape_result(result, response, self.model_name)

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        if self.output_version != "v1" and not self.disable_fast_paths:
            # None means a shape only the parent handles (or the fence is shut).
            fast = fast_chunk(
                chunk, default_chunk_class, base_generation_info, self.model_name
            )
            if fast is not None:
                return fast
        generation_chunk = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        if generation_chunk is None:
            return None
        v1 = self.output_version == "v1"
        return shape_chunk(generation_chunk, chunk, self.model_name, v1=v1)


# Core inspects the signature of _generate/_agenerate on every call (to learn
# whether it takes run_manager). A function's stored __signature__ is what
# inspect.signature returns without inspecting again.
for _hook in ("_generate", "_agenerate"):
    _fn = vars(CoreHooks)[_hook]
    _fn.__signature__ = inspect.signature(_fn)
