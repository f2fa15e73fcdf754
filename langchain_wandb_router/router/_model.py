"""WandbRouter: a chat model that picks the W&B model per call."""

from __future__ import annotations

import copy
import difflib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self, cast

from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    ModelProfile,
)
from langchain_core.utils import secret_from_env
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from langchain_wandb_router.catalog._models import list_models, strip_prefix
from langchain_wandb_router.router import _routing
from langchain_wandb_router.router._budget import priced, to_usd
from langchain_wandb_router.router._routing import Route, RoutingContext, as_routes
from langchain_wandb_router.router._runs import ChainRuns
from langchain_wandb_router.router._runtime import (
    ROUTE_DEFAULTS,
    RouterRuntime,
    merge_settings,
)
from langchain_wandb_router.router._strategy import Hedge, Strategy
from langchain_wandb_router.router._surface import ModelSurface
from langchain_wandb_router.state._factory import check_state, state_from
from langchain_wandb_router.state._interface import HealthSettings, RouterState
from langchain_wandb_router.state._urls import redact_url
from langchain_wandb_router.transport._config import (
    API_KEY_ENV,
    check_api_key,
    check_headers,
    missing_key_error,
    resolve_base_url,
    resolve_project,
)
from langchain_wandb_router.transport._retry import DEFAULT_POLICY, RetryPolicy

__all__ = ["Route", "RoutingContext", "WandbRouter"]


class WandbRouter(ChainRuns, ModelSurface, BaseChatModel):
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

    Retries and fallbacks: one driver, here. Routes are called through their
    public ``invoke``/``stream`` (each attempt is its own traced run, named
    after its model). 5xx, timeouts and connection errors are retried
    ``max_retries`` times per route, but never while another route can serve
    now; a 404 or a status in ``fallback_statuses`` moves on; 400/401/402/403
    surface at once. W&B's concurrency 429 is backpressure: the call waits for
    a slot (``max_in_flight``, and a limit learned from the 429s). Models that
    keep failing cool down and are tried last, never dropped.

    Streaming: falls back freely before the first chunk; after it, a failure
    raises ``StreamInterruptedError`` — answers are never spliced.

    The served model is the truth: ``response_metadata["model_name"]`` and
    ``response_metadata["routing"]`` (chosen model, reason, attempts).

    Force a model for one call:
        .. code-block:: python

            forced = {"configurable": {"wandb_model": "wandb/openai/gpt-oss-120b"}}
            router.invoke("hi", config=forced)
    """

    # Pydantic quotes the constructor's input (the start and end of it) in
    # validation errors; that input may hold the key.
    model_config = ConfigDict(hide_input_in_errors=True, populate_by_name=True)

    models: Any
    """A model id, a list of routes, or ``(RoutingContext) -> str | list``."""

    candidates: list[str] | None = None
    """For a selector: the models it may pick (gives the router a profile)."""

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
    """Seconds per attempt (connect, read); see ``deadline`` for the whole call."""

    deadline: float | None = Field(default=None, gt=0)
    """Seconds for the whole call, retries, waits and fallbacks included."""

    max_retries: int = Field(default=2, ge=0)
    """Router retries per route for retryable errors (2 → up to 3 requests)."""

    retry_policy: RetryPolicy = Field(default=DEFAULT_POLICY, exclude=True)
    """Backoff, ``Retry-After`` handling and the sleep functions (a test seam)."""

    # Defaults for the W&B routes the router builds, under the names a
    # ChatOpenAI (or ChatWandb) user writes; ``model_settings`` (the router's,
    # then each route's) overrides them.
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Output cap per route; ``max_completion_tokens`` is accepted as well."""
    stop: list[str] | None = None
    reasoning_effort: str | None = None
    enable_thinking: bool | None = None
    top_k: int | None = None
    """W&B extra: sample from the ``top_k`` likeliest tokens."""
    repetition_penalty: float | None = None
    """W&B extra: penalise repeated tokens (1.0 is none)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Body parameters for every W&B route (merged with a route's own)."""
    extra_body: dict[str, Any] | None = None
    """Extra body fields for every W&B route (merged with a route's own)."""
    streaming: bool = False
    model_settings: dict[str, Any] = Field(default_factory=dict)
    """More ChatWandb arguments for every route (e.g. ``logprobs``)."""

    strategy: Strategy = "ordered"
    """Which candidate goes first: ``"ordered"`` (the given order),
    ``"weighted"`` (``Route(weight=...)``), ``"least_busy"`` (fewest in flight
    for the route's limit), ``"latency"`` (lowest recent time to first token for
    streams, latency for invokes; a small share of calls explores the others)
    or ``"cost"`` (lowest expected cost of this call). The others stay
    fallbacks in that order; see :meth:`plan`."""

    hedge: bool | Hedge = False
    """Hedged requests (``True`` for ``Hedge()``): async calls whose first
    attempt is slow start a second one on the next route with a free slot;
    the first to answer wins. Sync calls are never hedged."""

    affinity: bool = True
    """Keep a conversation on the route that served its previous turn (while
    it is healthy and has room), so W&B's prompt cache stays warm. The
    conversation is LangGraph's ``thread_id``, else ``session_id``, else a
    hash of the system prompt and first user message; a fleet on Redis state
    shares the table. Strategies choose only a conversation's first route."""

    affinity_ttl: float = Field(default=600.0, gt=0)
    """Seconds a conversation keeps its route after its last turn."""

    cache_salt: str | Callable[[RoutingContext], str | None] | None = None
    """W&B's ``cache_salt`` for the W&B routes: a string, or a function of the
    call's context (e.g. the tenant's id), so tenants never share cached
    prompts."""

    upgrade_retired: bool = False
    """Replace a retired route by its successor instead of skipping it."""

    fallback_statuses: frozenset[int] = frozenset()
    """Non-retryable statuses that should still fall back (e.g. ``{400, 402}``)."""

    cooldown_failures: int = Field(default=3, ge=0)
    """Server-side failures in the health window that cool a model down."""
    cooldown_seconds: float = Field(default=30.0, ge=0)

    max_in_flight: int | dict[str, int] | None = None
    """Hard cap of concurrent requests per model (an int, or model id → int)."""

    state: Any = None
    """Where health, slots and spend live: in-process (default); a
    ``"redis://host:port/db"`` URL (``"redis+cluster://host:port"`` for Redis
    Cluster) or a redis-py client to share them across processes; or a
    ``RouterState`` object. Checked at construction."""

    state_on_error: Literal["open", "closed"] = "open"
    """With a Redis ``state``, what to do when Redis cannot be reached:
    ``"open"`` serves on in-process state and warns once per outage;
    ``"closed"`` raises ``StateUnavailableError``. Never a hang."""

    budget_usd: float | None = Field(default=None, ge=0)
    """Refuse calls once this much has been spent through the router."""

    allow_unpriced: bool = False
    """Under a budget, allow models without a known price (not counted)."""

    budget_scope: str | None = None
    """Name of the budget to share (default: one per base URL and project)."""

    _static: list[Route] | None = PrivateAttr(default=None)
    _runtime: RouterRuntime | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _known_arguments(cls, data: Any) -> Any:
        """Refuse misspelt arguments instead of ignoring them."""
        if isinstance(data, Mapping):
            known = set(cls.model_fields) | {
                f.alias for f in cls.model_fields.values() if f.alias
            }
            for name in data:
                if name not in known:
                    close = difflib.get_close_matches(str(name), known, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else "."
                    msg = f"WandbRouter got an unexpected argument {name!r}{hint}"
                    raise TypeError(msg)
        return data

    @model_validator(mode="after")
    def _validate_router(self) -> Self:
        if not callable(self.models) or isinstance(self.models, BaseChatModel):
            self._static = as_routes(self.models)
        needs_key = self._static is None or any(
            isinstance(r.model, str) for r in self._static
        )
        if needs_key:
            if self.api_key is None or not self.api_key.get_secret_value():
                raise missing_key_error()
            # Now, not at the first call: a key the Authorization header cannot
            # carry fails every route alike, so no fallback could help.
            source = "api_key" if "api_key" in self.model_fields_set else API_KEY_ENV
            check_api_key(self.api_key.get_secret_value(), source)
        self.base_url = resolve_base_url(self.base_url)
        self.project = resolve_project(self.project)
        self.default_headers = check_headers(self.default_headers) or None
        for route in self._static or ():
            # Merged over default_headers when the route's model is built.
            check_headers(route.headers, f"Route({route.label!r}).headers")
        # A state= that cannot work fails here, not at the first call.
        check_state(self.state)
        if self.budget_usd is not None and not self.allow_unpriced:
            unpriced = [r.label for r in self._static or () if not priced(r.label)]
            if unpriced:
                msg = (
                    f"budget_usd is set but these routes have no known price: "
                    f"{', '.join(unpriced)}. Register prices with "
                    "register_model(...), or pass allow_unpriced=True to let them "
                    "run uncounted."
                )
                raise ValueError(msg)
        return self

    # ------------------------------------------------------------------ identity

    def __repr_args__(self) -> Any:
        """Pydantic's repr (and str) fields, with a state URL's password masked."""
        for name, value in super().__repr_args__():
            if name == "state" and isinstance(value, str):
                value = redact_url(value)
            yield name, value

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

    def stats(self) -> dict[str, dict[str, Any]]:
        """Live figures per route, keyed by model id.

        Each holds ``requests``, ``errors``, ``limited`` (W&B's concurrency
        429s), ``in_flight``, ``limit``, ``ttft_p50``/``ttft_p95`` (streams),
        ``latency_p50``/``latency_p95`` (invokes), recent figures,
        ``tokens_per_second``, ``hedges``, ``hedges_won`` and
        ``cached_share``. With a Redis ``state`` they are the fleet's. A
        selector's routes are ``candidates`` if given, else every catalog model
        that has figures.
        """
        runtime = self._rt()
        routes = self._static
        if routes is None:
            ids = self.candidates or [m.id for m in list_models(include_retired=False)]
            routes = as_routes(ids)
        keys = {route.label: runtime.key_for(route) for route in routes}
        figures = runtime.state.stats(keys.values())
        out = {label: figures[key].as_dict() for label, key in keys.items()}
        if self._static is None and not self.candidates:
            out = {
                label: f for label, f in out.items() if f["requests"] or f["in_flight"]
            }
        return out

    @property
    def spent_usd(self) -> float:
        """What calls through this router have cost so far (known prices only)."""
        return to_usd(self._rt().state.spent(self._budget_scope()))

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What every route can promise: the intersection of their profiles.

        A selector's routes are ``candidates`` if given, else every model of
        the catalog that is not retired.
        """
        # Core resolves the profile before this class's validator has run.
        if not callable(self.models) or isinstance(self.models, BaseChatModel):
            return _routing.common_profile(as_routes(self.models))
        ids = self.candidates or [m.id for m in list_models(include_retired=False)]
        return _routing.common_profile(as_routes(ids))

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(ls_provider="wandb", ls_model_type="chat")
        forced = kwargs.get("model")
        if forced:
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

    # ------------------------------------------------------------------ copies
    # Runtime state (routes built, health, slots, spend) belongs to one router:
    # a copy starts fresh unless it was given a shared ``state`` on purpose.

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """Copy with ``update`` applied; the copy gets its own runtime state."""
        copied = super().model_copy(update=update, deep=False)
        if deep:
            for name in ("model_settings", "default_headers", "stop", "candidates"):
                setattr(copied, name, copy.deepcopy(getattr(copied, name)))
        if update and "models" in update:
            copied._static = (
                None if callable(copied.models) else as_routes(copied.models)
            )
        copied._runtime = None
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self.model_copy(deep=True)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_runtime"] = None
        state["__pydantic_private__"] = private
        return state

    # ------------------------------------------------------------------ runtime

    def _private(self) -> dict[str, Any]:
        """The private attributes, for hot paths.

        ``self._runtime`` goes through a failed attribute lookup and then
        pydantic's ``__getattr__``; the dict itself is a plain slot.
        """
        return cast("dict[str, Any]", self.__pydantic_private__)

    def _static_routes(self) -> list[Route] | None:
        """The routes of a static ``models`` (``None`` for a selector)."""
        return cast("list[Route] | None", self._private()["_static"])

    def _rt(self) -> RouterRuntime:
        private = self._private()
        runtime: RouterRuntime | None = private["_runtime"]
        if runtime is None:
            with _BUILD_LOCK:
                runtime = private["_runtime"]
                if runtime is None:
                    hedge = Hedge() if self.hedge is True else self.hedge or None
                    runtime = RouterRuntime(
                        self._route_params(), self._make_state(), hedge
                    )
                    private["_runtime"] = runtime
        return runtime

    def _route_params(self) -> dict[str, Any]:
        """ChatWandb arguments every W&B route shares."""
        params: dict[str, Any] = {
            "api_key": self.api_key or "unused",  # no key: only foreign routes
            "base_url": self.base_url,
            "project": self.project,
            "default_headers": self.default_headers,
            "timeout": self.timeout,
            "stop": self.stop,
            "streaming": self.streaming or None,
            "output_version": self.output_version,
            "cache": self.cache,
            "rate_limiter": self.rate_limiter,
            "model_kwargs": self.model_kwargs or None,
            "extra_body": self.extra_body,
        }
        for name in ROUTE_DEFAULTS:
            params[name] = getattr(self, name)
        params = {k: v for k, v in params.items() if v is not None}
        return merge_settings(params, self.model_settings)

    def _make_state(self) -> RouterState:
        health = HealthSettings(
            failures=self.cooldown_failures, cooldown_seconds=self.cooldown_seconds
        )
        if self.state is None or isinstance(self.state, RouterState):
            return state_from(self.state, health=health)
        # A Redis URL or client: the router's settings make the shared state.
        return state_from(self.state, health=health, on_error=self.state_on_error)


_BUILD_LOCK = threading.Lock()
