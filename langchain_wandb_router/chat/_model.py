"""ChatWandb: a LangChain chat model for W&B Inference."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal, Self, cast

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.messages import (
    BaseMessage,
    get_buffer_string,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils import secret_from_env
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_wandb_router.catalog._models import (
    ModelInfo,
    get_model_info,
    normalize_model_id,
    retired_error,
    strip_prefix,
)
from langchain_wandb_router.chat._chunks import (
    StreamTracker,
    attach_parsed,
    fast_chunk,
    shape_chunk,
    shape_result,
)
from langchain_wandb_router.chat._fast_messages import messages_to_dicts
from langchain_wandb_router.chat._fields import check_refused_fields, check_stream_usage
from langchain_wandb_router.chat._payload import (
    DerivedParams,
    fast_payload,
    finish_payload,
    invocation_params,
)
from langchain_wandb_router.chat._structured import response_format_for
from langchain_wandb_router.chat._tokens import (
    estimate_message_tokens,
    estimate_text_tokens,
)
from langchain_wandb_router.transport import _deadline
from langchain_wandb_router.transport import _http as _transport
from langchain_wandb_router.transport._config import (
    API_KEY_ENV,
    chat_url,
    check_api_key,
    check_headers,
    missing_key_error,
    resolve_base_url,
    resolve_project,
)
from langchain_wandb_router.transport._retry import DEFAULT_POLICY, RetryPolicy

__all__ = ["ChatWandb"]

_USER_AGENT = "langchain-wandb-router/0.1"
# Reasoning models can think for minutes on a non-streamed call; connecting
# should still fail fast.
_DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


class ChatWandb(BaseChatOpenAI):
    r"""W&B Inference chat model: Qwen3, DeepSeek, Llama, Kimi, GLM, gpt-oss and more.

    Setup:
        Install ``langchain-wandb-router`` and set your key:

        .. code-block:: bash

            pip install langchain-wandb-router
            export WANDB_API_KEY="..."
            # optional: attribute usage to a team project
            export WANDB_INFERENCE_PROJECT="my-team/my-project"

    Key init args — completion params:
        model: str
            W&B model id; ``"Qwen/…"``, ``"wandb/Qwen/…"`` and ``"wandb:Qwen/…"``
            all work. LoRA artifacts (``"wandb-artifact:///…"``) too.
        temperature: float | None
        max_tokens: int | None
            Sent to W&B as ``max_tokens``.
        reasoning_effort: str | None
            For reasoning models that accept it.
        enable_thinking: bool | None
            Turns thinking on or off on models where it is a default
            (``chat_template_kwargs.enable_thinking``).

    Key init args — client params:
        api_key: SecretStr | None
            Defaults to ``WANDB_API_KEY``. ``OPENAI_API_KEY`` is never read.
        base_url: str
            Defaults to ``WANDB_INFERENCE_BASE_URL``, else W&B's endpoint.
        project: str | None
            ``"team/project"``, sent as ``OpenAI-Project``. Defaults to
            ``WANDB_INFERENCE_PROJECT``, else ``WANDB_ENTITY/WANDB_PROJECT``.
        default_headers: Mapping[str, str] | None
        timeout: float | httpx.Timeout | None
            Per step of one request: connect, each write, each read, the wait
            for a pooled connection. Default 10 s to connect, 600 s for the
            rest. A server that keeps sending a byte now and then never trips
            it; ``deadline`` bounds that.
        deadline: float | None
            Seconds for the whole call: every attempt, its retries and the
            backoff sleeps between them. No connect, write, read or pool wait
            goes past it, a slowly trickling server included; when it passes,
            ``WandbTimeoutError`` (or ``StreamInterruptedError`` once a stream
            has yielded output). Must be > 0. Default ``None``: no bound but
            ``timeout``. A tighter deadline set by a caller (WandbRouter's
            ``deadline=``) applies as well.
        default_query: Mapping[str, object] | None
            Query parameters appended to every request URL.
        max_retries: int
            Retries on 408/409/429/5xx, timeouts and connection errors, with
            backoff, jitter and ``Retry-After``. Default 2. None is made (nor
            slept for) that would start after the deadline.
        disable_fast_paths: bool
            Request messages and v0 stream chunks are built by converters of
            ours, proven equal to langchain-openai's on the langchain-openai,
            langchain-core (and, for chunks, pydantic) releases they were
            tested with; on any other release langchain-openai's own are used.
            ``True`` uses langchain-openai's for this model, as does
            ``LANGCHAIN_WANDB_ROUTER_FAST_PATHS=0`` in the environment for the
            whole process (read at import). Output is the same either way.
            Default ``False``.

        OpenAI-only fields (``organization``, Responses API settings, openai
        SDK clients...) are refused with a ValueError that says what to use.

    Instantiate:
        .. code-block:: python

            from langchain_wandb_router import ChatWandb

            llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")

    Invoke:
        .. code-block:: python

            llm.invoke("Hello!").content

    Stream:
        .. code-block:: python

            for chunk in llm.stream("Tell me a story"):
                print(chunk.text, end="")

    Tool calling:
        .. code-block:: python

            from pydantic import BaseModel, Field

            class GetWeather(BaseModel):
                '''Get the current weather in a given location.'''

                location: str = Field(..., description="e.g. San Francisco, CA")

            llm.bind_tools([GetWeather]).invoke("Weather in Paris?").tool_calls

    Structured output:
        .. code-block:: python

            class Joke(BaseModel):
                setup: str
                punchline: str

            llm.with_structured_output(Joke).invoke("A joke about cats")

    Reasoning:
        .. code-block:: python

            thinker = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Thinking-2507")
            msg = thinker.invoke("Is 9.11 larger than 9.9?")
            msg.additional_kwargs["reasoning_content"]  # also a "reasoning" block

    Token usage and cost:
        .. code-block:: python

            msg = llm.invoke("Hello")
            msg.usage_metadata  # input/output/total tokens
            msg.response_metadata["cost_usd"]  # from the catalog's prices

    Model profile:
        .. code-block:: python

            llm.profile["max_input_tokens"], llm.model_info.pricing
    """

    # Pydantic quotes the constructor's input (the start of it) in validation
    # errors; that input may hold the key.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    model_name: str = Field(alias="model")
    """W&B model id (the bare id is what the request carries)."""

    openai_api_key: SecretStr | None = Field(
        alias="api_key", default_factory=secret_from_env("WANDB_API_KEY", default=None)
    )
    """W&B API key; defaults to ``WANDB_API_KEY``."""

    openai_api_base: str | None = Field(alias="base_url", default=None)
    """W&B Inference base URL; ``WANDB_INFERENCE_BASE_URL`` or W&B's endpoint."""

    project: str | None = None
    """W&B ``team/project`` sent as the ``OpenAI-Project`` header."""

    enable_thinking: bool | None = None
    """``chat_template_kwargs.enable_thinking`` for default-on/off reasoning models."""

    max_retries: int = 2
    """Retries for retryable failures (429, 5xx, timeouts, connection errors)."""

    deadline: float | None = None
    """Seconds for the whole call, retries and backoff included (``None``: none)."""

    retry_policy: RetryPolicy = Field(default=DEFAULT_POLICY, exclude=True)
    """Backoff, ``Retry-After`` handling and the sleep functions (a test seam)."""

    stream_usage: bool | None = True
    """W&B reports usage on every stream; it is always requested."""

    disable_fast_paths: bool = False
    """Build requests and stream chunks with langchain-openai's converters only.

    The fast paths also stay off outside the releases they were proven equal
    against, and when ``LANGCHAIN_WANDB_ROUTER_FAST_PATHS=0`` is set.
    """

    # Never read OpenAI's proxy variable (the field itself is refused).
    openai_proxy: str | None = None

    _headers: dict[str, str] = PrivateAttr(default_factory=dict)
    _url: str = PrivateAttr(default="")
    # The pooled client's key: the URL without default_query.
    _pool_key: str = PrivateAttr(default="")
    # Built once per configuration; a field assignment clears it (__setattr__).
    _params: DerivedParams | None = PrivateAttr(default=None)
    # Model id -> the catalog's successor, for 404 messages (model= per call).
    _successors: dict[str, str | None] = PrivateAttr(default_factory=dict)

    @field_validator("model_name", mode="before")
    @classmethod
    def _bare_model_id(cls, value: Any) -> str:
        return normalize_model_id(value)

    @field_validator("max_retries")
    @classmethod
    def _check_retries(cls, value: int) -> int:
        if value < 0:
            msg = "max_retries must be >= 0."
            raise ValueError(msg)
        return value

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            msg = "deadline must be > 0 seconds, or None for no deadline."
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Resolve W&B settings; no OpenAI client and no OpenAI env var is involved.

        This replaces (by name) the parent's validator, which would read
        ``OPENAI_API_KEY`` and build openai SDK clients we never use.
        """
        check_refused_fields(self)
        if self.openai_api_key is None or not self.openai_api_key.get_secret_value():
            raise missing_key_error()
        # Named in the error: the argument, or the variable it defaulted to.
        source = "api_key" if "openai_api_key" in self.model_fields_set else API_KEY_ENV
        key = check_api_key(self.openai_api_key.get_secret_value(), source)
        self.openai_api_base = resolve_base_url(self.openai_api_base)
        self.project = resolve_project(self.project)
        if self.n is not None and self.n < 1:
            msg = "n must be at least 1."
            raise ValueError(msg)
        if self.n is not None and self.n > 1 and self.streaming:
            msg = "n must be 1 when streaming."
            raise ValueError(msg)
        headers = {
            **check_headers(self.default_headers),
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if self.project:
            headers["OpenAI-Project"] = self.project
        self._headers = headers
        self._pool_key = chat_url(self.openai_api_base)
        self._url = chat_url(self.openai_api_base, self.default_query)
        info = get_model_info(self.model_name)
        if info is not None and info.is_retired():
            raise retired_error(info)
        return self

    def _private(self) -> dict[str, Any]:
        """The private attributes, for hot paths.

        Reading ``self._url`` is a failed lookup along a long MRO, then
        pydantic's ``__getattr__``; a call reads several.
        """
        return cast("dict[str, Any]", self.__pydantic_private__)

    def _derived(self) -> DerivedParams:
        private = self._private()
        derived: DerivedParams | None = private["_params"]
        if derived is None or derived.model_kwargs != self.model_kwargs:
            params = super()._default_params
            if self.enable_thinking is not None:
                params["chat_template_kwargs"] = {
                    "enable_thinking": self.enable_thinking
                }
            derived = DerivedParams(dict(self.model_kwargs), params)
            private["_params"] = derived
        return derived

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._params = None

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """Copy; ``update`` bypasses ``__setattr__``, so drop the cached params."""
        copy = super().model_copy(update=update, deep=deep)
        copy._params = None
        return copy

    # ------------------------------------------------------------------ identity

    @property
    def _llm_type(self) -> str:
        return "chat-wandb"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Map the key field to its env var so ``dumps`` never writes it."""
        return {"openai_api_key": "WANDB_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """ChatWandb can be serialized (without its key)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """The defining module, which ``langchain_core.load`` imports.

        BaseChatOpenAI returns OpenAI's legacy namespace; ours is core's default.
        Load with ``loads(text, allowed_objects=[ChatWandb],
        valid_namespaces=["langchain_wandb_router"],
        secrets_map={"WANDB_API_KEY": key})``.
        """
        # Stable across moves: the module ChatWandb was first published in
        # (kept as a re-export), so what was serialized then still loads.
        return ["langchain_wandb_router", "chat_model"]

    @property
    def model_info(self) -> ModelInfo | None:
        """The catalog entry for this model (``None`` for unknown ids)."""
        return get_model_info(self.model_name)

    def _resolve_model_profile(self) -> ModelProfile | None:
        info = get_model_info(self.model_name)
        return info.to_profile() if info is not None else None

    def _use_responses_api(self, payload: dict[str, Any]) -> bool:
        return False

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "wandb"
        # Tracing must never raise: strip the prefix, validate nothing.
        params["ls_model_name"] = strip_prefix(
            str(kwargs.get("model", self.model_name))
        )
        return params

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # Read twice a call (run start and tracing params): BaseChatOpenAI's
        # answer for no stop and no kwargs is kept, the call's go on top.
        params: dict[str, Any] | None = None
        if not self.disable_fast_paths:
            derived = self._derived()
            if derived.invocation is None:
                derived.invocation = super()._get_invocation_params()
            params = invocation_params(derived, stop, kwargs)
        if params is None:
            # Fast paths off, or remote MCP tools (the parent redacts them).
            params = super()._get_invocation_params(stop=stop, **kwargs)
        # Traces key on the invocation params: a pydantic schema class there is
        # neither readable nor serializable, its JSON form is both.
        schema = params.get("response_format")
        if isinstance(schema, type):
            params["response_format"] = response_format_for(
                schema, params.get("strict")
            )
        return params

    @property
    def _default_params(self) -> dict[str, Any]:
        # Built once per configuration; callers get a copy they may change.
        return dict(self._derived().default_params)

    # ------------------------------------------------------------ token counts

    def get_num_tokens(self, text: str) -> int:
        """Count with ``custom_get_token_ids`` if given, else estimate offline.

        W&B models use their own tokenizers, so tiktoken's counts would be wrong.
        """
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(  # type: ignore[override]
        self, messages: list[BaseMessage], tools: Any = None
    ) -> int:
        """Count input tokens; see :meth:`get_num_tokens`."""
        if self.custom_get_token_ids is not None:
            return sum(self.get_num_tokens(get_buffer_string([m])) for m in messages)
        return estimate_message_tokens(messages)

    # ------------------------------------------------------- structured output

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """As BaseChatOpenAI's, but ``method`` defaults to ``"json_schema"``.

        W&B constrains the answer to the schema through ``response_format``
        (``json_schema``), which needs no tool call; BaseChatOpenAI defaults to
        ``"function_calling"``. Pass ``method="function_calling"`` or
        ``"json_mode"`` to choose otherwise.
        """
        return super().with_structured_output(
            schema, method=method, include_raw=include_raw, strict=strict, **kwargs
        )

    # ------------------------------------------------------------------ payload

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        # _generate and _stream pass a list of messages: tried as it is (the
        # fast path declines anything but exact message classes).
        if type(input_) is list:
            messages = cast("list[BaseMessage]", input_)
        else:
            messages = self._convert_input(input_).to_messages()
        dicts = None if self.disable_fast_paths else messages_to_dicts(messages)
        if dicts is None:
            messages = self._convert_input(input_).to_messages()
            payload: dict[str, Any] = super()._get_request_payload(
                messages, stop=stop, **kwargs
            )
        else:
            payload = fast_payload(self._default_params, dicts, stop, kwargs)
        return finish_payload(
            payload, messages, kwargs, model=self.model_name, plain=dicts is not None
        )

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

    # -------------------------------------------------------------------- calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # A JSON answer, even with streaming=True (e.g. under disable_streaming).
        kwargs["stream"] = False
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
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
        kwargs["stream"] = False  # see _generate
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        with _deadline.bounded(self._own_deadline()) as deadline:
            req, client = self._request(payload, deadline), self._async_http()
            response = await self.retry_policy.acall(
                lambda: _transport.apost_json(client, req),
                self.max_retries,
                req.model,
                deadline,
            )
        return self._finish_result(response, kwargs.get("response_format"))

    def _finish_result(self, response: dict[str, Any], schema: Any) -> ChatResult:
        result = self._create_chat_result(response, {})
        attach_parsed(result, schema)
        return result

    def _stream_payload(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        stream_usage: bool | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        # Usage is always requested: cost, budgets and usage callbacks need it,
        # and W&B sends it anyway; asking for a stream without it is refused.
        check_stream_usage(stream_usage)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        return self._get_request_payload(messages, stop=stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        payload = self._stream_payload(messages, stop, stream_usage, kwargs)
        tracker = StreamTracker(
            self._convert_chunk_to_generation_chunk, kwargs.get("response_format")
        )
        # Never held across a yield: the request carries the deadline instead.
        with _deadline.bounded(self._own_deadline()) as deadline:
            req, client = self._request(payload, deadline), self._sync_http()
        events = self.retry_policy.stream(
            lambda: _transport.stream_events(client, req),
            self.max_retries,
            req.model,
            deadline,
        )
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
        payload = self._stream_payload(messages, stop, stream_usage, kwargs)
        tracker = StreamTracker(
            self._convert_chunk_to_generation_chunk, kwargs.get("response_format")
        )
        with _deadline.bounded(self._own_deadline()) as deadline:
            req, client = self._request(payload, deadline), self._async_http()
        events = self.retry_policy.astream(
            lambda: _transport.astream_events(client, req),
            self.max_retries,
            req.model,
            deadline,
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


# Core inspects the signature of _generate/_agenerate on every call (to learn
# whether it takes run_manager). A function's stored __signature__ is what
# inspect.signature returns without inspecting again.
for _hook in ("_generate", "_agenerate"):
    _fn = vars(ChatWandb)[_hook]
    _fn.__signature__ = inspect.signature(_fn)
