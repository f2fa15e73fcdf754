"""ChatWandb's call hooks: requests, retries, results and stream chunks.

:class:`WandbCalls` implements ``_generate``/``_agenerate``/``_stream``/
``_astream`` on the transport: it builds the request (URL, headers, body,
timeout, the call's deadline, the catalog's successor for 404s), picks the
pooled (or the user's) httpx client, runs the attempts under the retry policy,
and shapes results and stream chunks. The sync and async hooks share every
step but the ones that block (sending, iterating, the token callback).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Iterator
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
from langchain_wandb_router.catalog._models import get_model_info
from langchain_wandb_router.chat._chunks import (
    StreamTracker,
    attach_parsed,
    fast_chunk,
    shape_chunk,
    shape_result,
)
from langchain_wandb_router.chat._fields import check_stream_usage
from langchain_wandb_router.chat._params import WandbParams
from langchain_wandb_router.transport import _deadline

__all__ = ["WandbCalls"]

# Reasoning models can think for minutes on a non-streamed call; connecting
# should still fail fast.
_DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


class WandbCalls(WandbParams):
    """The call hooks, on W&B's transport (no openai SDK client)."""

    # Model id -> the catalog's successor, for 404 messages (model= per call).
    _successors: dict[str, str | None] = PrivateAttr(default_factory=dict)

    # -------------------------------------------------------------------- calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        payload = self._json_payload(messages, stop, kwargs)
        # Twin of _agenerate's: the retried send blocks here, awaits there.
        with _deadline.bounded(self._own_deadline()) as deadline:
            req, client = self._request(payload, deadline), self._sync_http()
            response = self.retry_policy.call(
                lambda: _transport.post_json(client, req),
                self.max_retries,
                req.model,
                deadline,
            )
        return self._finish_result(response, kwargs.get("response_format"))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        payload = self._json_payload(messages, stop, kwargs)
        with _deadline.bounded(self._own_deadline()) as deadline:
            req, client = self._request(payload, deadline), self._async_http()
            response = await self.retry_policy.acall(
                lambda: _transport.apost_json(client, req),
                self.max_retries,
                req.model,
                deadline,
            )
        return self._finish_result(response, kwargs.get("response_format"))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tracker, req = self._open_stream(messages, stop, stream_usage, kwargs)
        client = self._sync_http()
        events = self.retry_policy.stream(
            lambda: _transport.stream_events(client, req),
            self.max_retries,
            req.model,
            req.deadline,
        )
        # Twin of _astream's loop: `for` and a plain callback here, `async for`
        # and an awaited one there; a generator cannot serve both.
        with tracker.translating_errors(req.model):
            for event in events:
                chunk = tracker.convert(event)
                if chunk is None:
                    continue
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        final = tracker.parsed_chunk()
        if final is not None:
            yield final

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tracker, req = self._open_stream(messages, stop, stream_usage, kwargs)
        client = self._async_http()
        events = self.retry_policy.astream(
            lambda: _transport.astream_events(client, req),
            self.max_retries,
            req.model,
            req.deadline,
        )
        with tracker.translating_errors(req.model):
            async for event in events:
                chunk = tracker.convert(event)
                if chunk is None:
                    continue
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        final = tracker.parsed_chunk()
        if final is not None:
            yield final

    # ------------------------------------------------- the steps both share

    def _json_payload(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        # A JSON answer, even with streaming=True (e.g. under disable_streaming).
        kwargs["stream"] = False
        return self._get_request_payload(messages, stop=stop, **kwargs)

    def _finish_result(self, response: dict[str, Any], schema: Any) -> ChatResult:
        result = self._create_chat_result(response, {})
        attach_parsed(result, schema)
        return result

    def _open_stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        stream_usage: bool | None,
        kwargs: dict[str, Any],
    ) -> tuple[StreamTracker, _transport.Request]:
        """The stream's payload, chunk tracker and request (deadline in it)."""
        # Usage is always requested: cost, budgets and usage callbacks need it,
        # and W&B sends it anyway; asking for a stream without it is refused.
        check_stream_usage(stream_usage)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        tracker = StreamTracker(
            self._convert_chunk_to_generation_chunk, kwargs.get("response_format")
        )
        # Never held across a yield: the request carries the deadline instead.
        with _deadline.bounded(self._own_deadline()) as deadline:
            return tracker, self._request(payload, deadline)

    # ----------------------------------------------------- requests and clients

    def _request(
        self, payload: dict[str, Any], deadline: float | None
    ) -> _transport.Request:
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
            deadline=deadline,
        )

    def _own_deadline(self) -> float | None:
        """This call's own deadline (monotonic seconds), from ``deadline``.

        Entered with :func:`_deadline.bounded`, which keeps a caller's earlier
        one; the request carries the result, because streams run in their
        consumer's context, where the variable must not stay set.
        """
        seconds = self.deadline
        return None if seconds is None else time.monotonic() + seconds

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
    _fn = vars(WandbCalls)[_hook]
    _fn.__signature__ = inspect.signature(_fn)
