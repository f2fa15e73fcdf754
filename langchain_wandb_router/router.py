"""WandbRouter: a chat model that picks the W&B model per call."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    ensure_config,
)
from langchain_core.tools import BaseTool
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from langchain_wandb_router import _routing
from langchain_wandb_router._attempts import (
    Attempts,
    StreamTally,
    aclose,
    guard,
    interrupted,
    note_attempts,
)
from langchain_wandb_router._config import (
    check_headers,
    missing_key_error,
    resolve_base_url,
    resolve_project,
)
from langchain_wandb_router._pricing import call_cost_usd
from langchain_wandb_router._retry import DEFAULT_POLICY, RetryPolicy
from langchain_wandb_router._routing import (
    Candidate,
    Cooldown,
    Route,
    RoutingContext,
    as_routes,
)
from langchain_wandb_router._structured import (
    json_structured_output,
    normalize_tool_choice,
)
from langchain_wandb_router.catalog import strip_prefix
from langchain_wandb_router.chat_model import ChatWandb
from langchain_wandb_router.errors import (
    BudgetExceededError,
    NoRouteAvailableError,
)

__all__ = ["Route", "RoutingContext", "WandbRouter"]

Selector = Callable[[RoutingContext], Any]


class WandbRouter(BaseChatModel):
    r"""A chat model that routes each call to a W&B model, with fallbacks.

    Setup:
        .. code-block:: bash

            pip install "langchain-wandb-router[agents]"
            export WANDB_API_KEY="..."

    Instantiate — one model, a fallback list, or a function of the context:
        .. code-block:: python

            from langchain_wandb_router import Route, WandbRouter

            router = WandbRouter(models="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")
            router = WandbRouter(
                models=[
                    "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
                    Route("wandb/deepseek-ai/DeepSeek-V3.1", max_retries=1),
                ]
            )
            router = WandbRouter(
                models=lambda ctx: "wandb/moonshotai/Kimi-K2.5"
                if ctx.get("task") == "complex"
                else "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
            )
            router.invoke("hi", config={"configurable": {"task": "complex"}})

    Capabilities: before any request, routes that cannot serve the call are
    skipped: no tool calling when tools are bound, no vision for images, a
    context window smaller than the input, retired models (or their successor
    with ``upgrade_retired=True``). Nothing left raises ``NoRouteAvailableError``
    saying why each route was excluded.

    Retries and fallbacks: one loop, here. Routes built by the router have
    transport retries off; 429/5xx/timeouts/connection errors are retried
    ``max_retries`` times per route (backoff, jitter, ``Retry-After``), then the
    next route is tried. 400/401/402/403 surface at once unless listed in
    ``fallback_statuses``. A model failing ``cooldown_failures`` times in a row
    is skipped for ``cooldown_seconds``.

    Streaming: falls back freely before the first chunk; after it, a failure
    raises ``StreamInterruptedError`` — answers are never spliced.

    The served model is the truth: ``response_metadata["model_name"]`` and
    ``response_metadata["routing"]`` (chosen model, reason, attempts).

    Force a model for one call:
        .. code-block:: python

            forced = {"configurable": {"wandb_model": "wandb/openai/gpt-oss-120b"}}
            router.invoke("hi", config=forced)
    """

    models: Any
    """A model id, a list of routes, or ``(RoutingContext) -> str | list``."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("WANDB_API_KEY", default=None)
    )
    """W&B API key; defaults to ``WANDB_API_KEY``."""

    base_url: str | None = None
    """W&B base URL; ``WANDB_INFERENCE_BASE_URL`` or W&B's endpoint."""

    project: str | None = None
    """``team/project`` for the ``OpenAI-Project`` header."""

    default_headers: dict[str, str] | None = None
    timeout: float | None = None
    max_retries: int = Field(default=2, ge=0)
    """Router retries per route for retryable errors (2 → up to 3 requests)."""

    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    streaming: bool = False
    model_settings: dict[str, Any] = Field(default_factory=dict)
    """More ChatWandb arguments for every route (e.g. ``enable_thinking``)."""

    retry_policy: RetryPolicy = Field(default=DEFAULT_POLICY, exclude=True)
    """Backoff, ``Retry-After`` handling and the sleep functions (a test seam)."""

    upgrade_retired: bool = False
    """Replace a retired route by its successor instead of skipping it."""

    fallback_statuses: frozenset[int] = frozenset()
    """Non-retryable statuses that should still fall back (e.g. ``{400, 402}``)."""

    cooldown_failures: int = Field(default=3, ge=0)
    cooldown_seconds: float = Field(default=30.0, ge=0)
    budget_usd: float | None = Field(default=None, ge=0)
    """Refuse calls once this much has been spent through the router."""

    _static: list[Route] | None = PrivateAttr(default=None)
    _chat_models: dict[tuple[Any, ...], ChatWandb] = PrivateAttr(default_factory=dict)
    _build_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cooldown: Cooldown = PrivateAttr()
    _spent: float = PrivateAttr(default=0.0)
    _spent_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _validate_router(self) -> Self:
        if not callable(self.models) or isinstance(self.models, BaseChatModel):
            self._static = as_routes(self.models)
        needs_key = self._static is None or any(
            isinstance(r.model, str) for r in self._static
        )
        if needs_key and (self.api_key is None or not self.api_key.get_secret_value()):
            raise missing_key_error()
        self.base_url = resolve_base_url(self.base_url)
        self.project = resolve_project(self.project)
        self.default_headers = check_headers(self.default_headers) or None
        self._cooldown = Cooldown(self.cooldown_failures, self.cooldown_seconds)
        return self

    # ------------------------------------------------------------------ identity

    @property
    def _llm_type(self) -> str:
        return "wandb-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"models": self._describe_models(), "max_retries": self.max_retries}

    def _describe_models(self) -> Any:
        if self._static is None:
            return getattr(self.models, "__name__", "selector")
        return [r.label for r in self._static]

    @property
    def spent_usd(self) -> float:
        """What calls through this router have cost so far (known prices only)."""
        return self._spent

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What every static route can promise: the intersection of their profiles."""
        if callable(self.models) and not isinstance(self.models, BaseChatModel):
            return None  # a selector can pick anything
        return _routing.common_profile(as_routes(self.models))

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(ls_provider="wandb", ls_model_type="chat")
        plan = self._plan_early(kwargs)
        forced = kwargs.get("model")
        if plan is not None:
            params["ls_model_name"] = plan.candidates[0].label
        elif forced:
            params["ls_model_name"] = strip_prefix(str(forced))
        elif self._static is not None:
            params["ls_model_name"] = self._static[0].label
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # --------------------------------------------------------- config capture

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Invoke; the config is kept so the selector can read it."""
        with _call_scope(input, config) as cfg:
            return super().invoke(input, cfg, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async invoke; see :meth:`invoke`."""
        with _call_scope(input, config) as cfg:
            return await super().ainvoke(input, cfg, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream; the route is chosen (config in view) before the first chunk."""
        # The scope opens and closes within one step of this generator, so the
        # context is the same at both ends even if the caller abandons it.
        with _call_scope(input, config) as cfg:
            iterator = super().stream(input, cfg, stop=stop, **kwargs)
            first = next(iterator, None)
        if first is None:
            return
        yield first
        yield from iterator

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async stream; see :meth:`stream`."""
        with _call_scope(input, config) as cfg:
            iterator = super().astream(input, cfg, stop=stop, **kwargs)
            first = await anext(iterator, None)
        if first is None:
            return
        yield first
        async for chunk in iterator:
            yield chunk

    # ------------------------------------------------------------ tools, schema

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; they go to whichever model serves the call, fallbacks too."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = normalize_tool_choice(tool_choice)
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: str = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output through the router, whichever model serves.

        ``method`` is ``json_schema`` (default), ``json_mode`` or
        ``function_calling``; ``include_raw=True`` keeps the raw message even
        when parsing fails.
        """
        if method == "function_calling":
            return super().with_structured_output(
                schema, include_raw=include_raw, **kwargs
            )
        return json_structured_output(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            **kwargs,
        )

    # ------------------------------------------------------------------ routes

    def _chat_model(self, route: Route) -> BaseChatModel:
        """The model for a route; W&B ids share one cached ChatWandb each."""
        if isinstance(route.model, BaseChatModel):
            return route.model
        headers = {**(self.default_headers or {}), **(route.headers or {})}
        settings = {**self.model_settings, **(route.model_settings or {})}
        key = (
            route.model,
            tuple(sorted(headers.items())),
            repr(sorted(settings.items())),
        )
        model = self._chat_models.get(key)
        if model is None:
            with self._build_lock:
                model = self._chat_models.get(key)
                if model is None:
                    params: dict[str, Any] = {
                        "model": route.model,
                        "api_key": self.api_key,
                        "base_url": self.base_url,
                        "project": self.project,
                        "default_headers": headers or None,
                        "timeout": self.timeout,
                        "temperature": self.temperature,
                        "max_tokens": self.max_tokens,
                        "stop": self.stop,
                        "output_version": self.output_version,
                        **settings,
                        # The router owns the one retry loop.
                        "max_retries": 0,
                    }
                    model = ChatWandb(
                        **{k: v for k, v in params.items() if v is not None}
                    )
                    self._chat_models[key] = model
        return model

    def _plan_early(self, kwargs: Mapping[str, Any]) -> _routing.Plan | None:
        """Plan the call in progress before its run starts, for tracing.

        ``_generate`` then reuses the plan, so the selector runs once. Never
        raises: a failure here happens again inside the run, where it is traced.
        """
        call = _routing.CURRENT_CALL.get()
        if call is None or call.input is None:
            return None
        if call.plan is None:
            try:
                messages = self._convert_input(call.input).to_messages()
                ctx = _routing.build_context(messages, kwargs)
                call.plan = self._plan(ctx, kwargs, self._select(ctx))
            except Exception:
                return None
        return call.plan

    def _planned(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any]
    ) -> _routing.Plan:
        plan = _take_early_plan()
        if plan is None:
            ctx = _routing.build_context(messages, kwargs)
            plan = self._plan(ctx, kwargs, self._select(ctx))
        return plan

    async def _aplanned(
        self, messages: list[BaseMessage], kwargs: Mapping[str, Any]
    ) -> _routing.Plan:
        plan = _take_early_plan()
        if plan is None:
            ctx = _routing.build_context(messages, kwargs)
            plan = self._plan(ctx, kwargs, await self._aselect(ctx))
        return plan

    def _plan(
        self, ctx: RoutingContext, kwargs: Mapping[str, Any], selected: Any
    ) -> _routing.Plan:
        forced = _routing.forced_model(ctx, kwargs)
        if forced is not None:
            routes, reason = as_routes(forced), "forced for this call"
        elif self._static is not None:
            routes, reason = self._static, "first choice"
        else:
            routes, reason = as_routes(selected), "chosen by selector"
        candidates, excluded = _routing.filter_routes(
            routes, ctx, upgrade_retired=self.upgrade_retired, reason=reason
        )
        candidates, cooling = self._cooldown.order(candidates)
        excluded.update(cooling)
        if not candidates:
            detail = "; ".join(f"{k}: {v}" for k, v in excluded.items())
            msg = f"No W&B model can serve this request ({detail})."
            raise NoRouteAvailableError(msg, reasons=excluded)
        return _routing.Plan(ctx, candidates, excluded)

    def _check_budget(self) -> None:
        if self.budget_usd is not None and self._spent >= self.budget_usd:
            msg = (
                f"Budget of ${self.budget_usd:.4f} reached (spent ${self._spent:.4f}); "
                "raise budget_usd or use a new router."
            )
            raise BudgetExceededError(msg)

    def _charge(self, label: str, message: BaseMessage) -> None:
        """Count one answer's cost (its own figure, else the catalog's)."""
        cost = message.response_metadata.get("cost_usd")
        if cost is None and isinstance(message, AIMessage):
            cost = call_cost_usd(label, message.usage_metadata)
        self._add_spend(cost)

    def _add_spend(self, cost: float | None) -> None:
        if cost:
            with self._spent_lock:
                self._spent += cost

    def _call_kwargs(
        self, model: BaseChatModel, kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        call = {k: v for k, v in kwargs.items() if k != "model"}
        if not isinstance(model, ChatWandb) and call.get("tools"):
            tools = call.pop("tools")
            choice = call.pop("tool_choice", None)
            bound = model.bind_tools(tools, tool_choice=choice)
            call.update(getattr(bound, "kwargs", {}))
        return call

    def _after_failure(
        self,
        cand: Candidate,
        attempt: int,
        retries: int,
        error: Exception,
        run: Attempts,
        started: float,
    ) -> float | None:
        """Record a failure; return a retry delay, ``None`` to fall back, or raise."""
        run.failed(cand.label, error, started)
        self._cooldown.failure(cand.label)
        if not self.retry_policy.is_retryable(error):
            if _routing.should_fall_back(error, self.fallback_statuses):
                return None
            note_attempts(error, run)
            raise error
        if attempt < retries:
            return self.retry_policy.delay(attempt + 1, error)
        return None

    def _record(self, cand: Candidate, run: Attempts, started: float) -> dict[str, Any]:
        run.succeeded(cand.label, started)
        self._cooldown.success(cand.label)
        reason = cand.reason
        if len(run.records) > 1 and run.records[-2]["error"]:
            reason = f"{reason}; after {run.records[-2]['model']} failed"
        return {
            "model": cand.label,
            "reason": reason,
            "attempts": run.records,
            "excluded": run.excluded,
        }

    def _exhausted(self, run: Attempts) -> BaseException:
        if run.last_error is not None:
            note_attempts(run.last_error, run)
            return run.last_error
        msg = "No W&B model could be tried."
        return NoRouteAvailableError(msg, reasons=run.excluded)

    def _annotate(
        self, result: ChatResult, cand: Candidate, record: dict[str, Any]
    ) -> None:
        for generation in result.generations:
            meta = generation.message.response_metadata
            meta.setdefault("model_name", cand.label)
            meta["routing"] = record
            self._charge(cand.label, generation.message)
        result.llm_output = {**(result.llm_output or {}), "model_name": record["model"]}

    # ------------------------------------------------------------------- calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._check_budget()
        plan = self._planned(messages, kwargs)
        run = Attempts(plan.excluded)
        for cand in plan.candidates:
            model = self._chat_model(cand.route)
            call = self._call_kwargs(model, kwargs)
            retries = self._retries(cand)
            for attempt in range(retries + 1):
                started = time.monotonic()
                try:
                    result = model._generate(messages, stop=stop, **call)
                except Exception as exc:
                    delay = self._after_failure(
                        cand, attempt, retries, exc, run, started
                    )
                    if delay is None:
                        break
                    self.retry_policy.sleep(delay)
                    continue
                self._annotate(result, cand, self._record(cand, run, started))
                return result
        raise self._exhausted(run)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._check_budget()
        plan = await self._aplanned(messages, kwargs)
        run = Attempts(plan.excluded)
        for cand in plan.candidates:
            model = self._chat_model(cand.route)
            call = self._call_kwargs(model, kwargs)
            retries = self._retries(cand)
            for attempt in range(retries + 1):
                started = time.monotonic()
                try:
                    result = await model._agenerate(messages, stop=stop, **call)
                except Exception as exc:
                    delay = self._after_failure(
                        cand, attempt, retries, exc, run, started
                    )
                    if delay is None:
                        break
                    await self.retry_policy.asleep(delay)
                    continue
                self._annotate(result, cand, self._record(cand, run, started))
                return result
        raise self._exhausted(run)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._check_budget()
        plan = self._planned(messages, kwargs)
        run = Attempts(plan.excluded)
        for cand in plan.candidates:
            model = self._chat_model(cand.route)
            call = self._call_kwargs(model, kwargs)
            retries = self._retries(cand)
            for attempt in range(retries + 1):
                started = time.monotonic()
                chunks = model._stream(messages, stop=stop, **call)
                try:
                    first = next(chunks)
                except StopIteration:
                    self._record(cand, run, started)
                    return
                except Exception as exc:
                    delay = self._after_failure(
                        cand, attempt, retries, exc, run, started
                    )
                    if delay is None:
                        break
                    self.retry_policy.sleep(delay)
                    continue
                # Committed to this model: from here on, no fallback and no retry.
                first.message.response_metadata["routing"] = self._record(
                    cand, run, started
                )
                tally = StreamTally(self._add_spend)
                for chunk in guard(
                    tally.see(first), chunks, cand, self._cooldown, tally
                ):
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                tally.close()
                return
        raise self._exhausted(run)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self._check_budget()
        plan = await self._aplanned(messages, kwargs)
        run = Attempts(plan.excluded)
        for cand in plan.candidates:
            model = self._chat_model(cand.route)
            call = self._call_kwargs(model, kwargs)
            retries = self._retries(cand)
            for attempt in range(retries + 1):
                started = time.monotonic()
                chunks = model._astream(messages, stop=stop, **call)
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    self._record(cand, run, started)
                    return
                except Exception as exc:
                    await aclose(chunks)
                    delay = self._after_failure(
                        cand, attempt, retries, exc, run, started
                    )
                    if delay is None:
                        break
                    await self.retry_policy.asleep(delay)
                    continue
                first.message.response_metadata["routing"] = self._record(
                    cand, run, started
                )
                tally = StreamTally(self._add_spend)
                yield tally.see(first)
                try:
                    async for chunk in chunks:
                        chunk = tally.see(chunk)
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                except BaseException as exc:
                    await aclose(chunks)
                    raise interrupted(cand, exc, tally, self._cooldown) from exc
                tally.close()
                return
        raise self._exhausted(run)

    def _retries(self, cand: Candidate) -> int:
        return (
            cand.route.max_retries
            if cand.route.max_retries is not None
            else self.max_retries
        )

    def _select(self, ctx: RoutingContext) -> Any:
        if self._static is not None or _routing.forced_model(ctx, {}) is not None:
            return None
        selected = self.models(ctx)
        if inspect.isawaitable(selected):
            if hasattr(selected, "close"):
                selected.close()
            msg = (
                "The model selector is async: call ainvoke/astream, or make it a "
                "plain function."
            )
            raise TypeError(msg)
        return selected

    async def _aselect(self, ctx: RoutingContext) -> Any:
        if self._static is not None or _routing.forced_model(ctx, {}) is not None:
            return None
        selected = self.models(ctx)
        if inspect.isawaitable(selected):
            selected = await selected
        return selected


@contextmanager
def _call_scope(
    input: LanguageModelInput, config: RunnableConfig | None
) -> Iterator[RunnableConfig]:
    """Make the call's config and input visible to planning, for its duration."""
    cfg = ensure_config(config)
    token = _routing.CURRENT_CALL.set(_routing.CallState(cfg, input))
    try:
        yield cfg
    finally:
        _routing.CURRENT_CALL.reset(token)


def _take_early_plan() -> _routing.Plan | None:
    """The plan ``_get_ls_params`` made for this call, once."""
    call = _routing.CURRENT_CALL.get()
    if call is None or call.plan is None:
        return None
    plan, call.plan = call.plan, None
    return plan
