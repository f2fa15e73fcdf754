"""Preparing a routed call of WandbRouter, planning it, and reading its results.

What the sync and async call paths (:mod:`._runs`) share, with no I/O of its
own: the call's messages and config (the router's own tags, metadata and
callbacks added), its routes and context, the :class:`~._driver.CallDriver`
with its candidate runs, strategy and budget, the closing steps of a
committed stream, the served answer with its routing record, and what the
call cost.
"""

from __future__ import annotations

import time
from collections.abc import (
    Generator,
    Mapping,
)
from functools import partial
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    BaseCallbackManager,
    BaseRunManager,
    CallbackManager,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from langchain_wandb_router.catalog._pricing import call_cost_usd
from langchain_wandb_router.chat._model import ChatWandb
from langchain_wandb_router.chat._tokens import estimate_message_tokens
from langchain_wandb_router.errors import (
    NoRouteAvailableError,
    StreamInterruptedError,
    WandbAPIError,
    WandbTimeoutError,
)
from langchain_wandb_router.router import _routing
from langchain_wandb_router.router._affinity import Conversation
from langchain_wandb_router.router._attempts import StreamTally
from langchain_wandb_router.router._budget import (
    estimate_micro,
    input_micro,
    priced,
    to_micro,
)
from langchain_wandb_router.router._driver import CallDriver, CallShape
from langchain_wandb_router.router._effects import (
    Committed,
    Effect,
    Failure,
    Outcome,
    RouteRun,
)
from langchain_wandb_router.router._interpreters import (
    Held,
)
from langchain_wandb_router.router._routing import Route, RoutingContext, as_routes
from langchain_wandb_router.state._interface import affinity_key, budget_key, route_key

if TYPE_CHECKING:
    from langchain_wandb_router.router._runtime import RouterRuntime
    from langchain_wandb_router.transport._retry import RetryPolicy

__all__ = ["RoutedCalls", "child_config"]


class RoutedCalls:
    """The routed call paths, mixed into WandbRouter (which holds the settings)."""

    if TYPE_CHECKING:
        models: Any
        base_url: str | None
        project: str | None
        deadline: float | None
        max_retries: int
        max_tokens: int | None
        retry_policy: RetryPolicy
        upgrade_retired: bool
        fallback_statuses: frozenset[int]
        max_in_flight: int | dict[str, int] | None
        budget_usd: float | None
        allow_unpriced: bool
        budget_scope: str | None
        strategy: str
        affinity: bool
        affinity_ttl: float
        cache_salt: Any
        tags: list[str] | None
        metadata: dict[str, Any] | None
        callbacks: Any
        verbose: bool

        def get_name(
            self, suffix: str | None = None, *, name: str | None = None
        ) -> str: ...
        def _convert_input(self, input: LanguageModelInput) -> PromptValue: ...

        def _rt(self) -> RouterRuntime: ...
        def _static_routes(self) -> list[Route] | None: ...

    # ------------------------------------------------ the call and its config

    def _prepared(
        self, input: LanguageModelInput, config: RunnableConfig | None
    ) -> tuple[list[BaseMessage], RunnableConfig, Any]:
        """The call's messages, config (with the router's own) and run id.

        The run id given in the config is the router's own run's, so it is
        taken out of what the attempts inherit.
        """
        messages = self._messages(input)
        cfg = self._with_own(config)
        return messages, cfg, cfg.pop("run_id", None)

    def _start(self, cfg: RunnableConfig, run_id: Any) -> dict[str, Any]:
        """The ``on_chain_start`` keywords of the router's own chain run."""
        return {"name": cfg.get("run_name") or self.get_name(), "run_id": run_id}

    def _messages(self, input: LanguageModelInput) -> list[BaseMessage]:
        # A string is one human message, as core makes it, without the
        # prompt value core builds on the way.
        if type(input) is str:
            return [HumanMessage(content=input)]
        messages = self._convert_input(input).to_messages()
        if not messages:
            msg = (
                "No messages to send: pass a string or a non-empty list of "
                "messages to the router."
            )
            raise ValueError(msg)
        return messages

    def _with_own(self, config: RunnableConfig | None) -> RunnableConfig:
        """The call's config plus the router's own callbacks, tags and metadata.

        They are inherited by the attempts, so a cost or usage handler set on
        the router sees the model runs that carry the usage. Tags and metadata
        ride in the config itself (as a bound config's would); only callbacks
        need a manager, and building one costs more than the rest of the
        router's own work on a call, so it is built only when there are some.
        """
        cfg = ensure_config(config)
        if self.tags:
            tags = cfg.get("tags") or []
            cfg["tags"] = [*tags, *(t for t in self.tags if t not in tags)]
        if self.metadata:
            # The router's own metadata wins, as a model's own does in core.
            cfg["metadata"] = {**(cfg.get("metadata") or {}), **self.metadata}
        if self.callbacks:
            manager = CallbackManager.configure(
                cfg.get("callbacks"),
                None,
                self.verbose,
                cfg.get("tags"),
                None,
                cfg.get("metadata"),
            )
            own = self.callbacks
            handlers = own.handlers if isinstance(own, BaseCallbackManager) else own
            for handler in handlers or ():
                manager.add_handler(handler, inherit=True)
            cfg["callbacks"] = manager
        return cfg

    # ---------------------------------------------------------------- planning

    def _driver(
        self,
        ctx: RoutingContext,
        kwargs: Mapping[str, Any],
        static: list[Route] | None,
        selected: Any,
        stream: bool = False,
        hedging: bool = False,
    ) -> CallDriver:
        forced = _routing.forced_model(ctx, kwargs)
        if forced is not None:
            routes, reason = as_routes(forced), "forced for this call"
        elif static is not None:
            routes, reason = static, "first choice"
        else:
            routes, reason = as_routes(selected), "chosen by selector"
        candidates, excluded = _routing.filter_routes(
            routes, ctx, upgrade_retired=self.upgrade_retired, reason=reason
        )
        if self.budget_usd is not None and not self.allow_unpriced:
            for cand in list(candidates):
                if not priced(cand.label):
                    candidates.remove(cand)
                    excluded[cand.label] = (
                        "no known price under budget_usd (register a price or "
                        "allow_unpriced=True)"
                    )
        if not candidates:
            detail = "; ".join(f"{k}: {v}" for k, v in excluded.items())
            msg = f"No W&B model can serve this request ({detail})."
            raise NoRouteAvailableError(msg, reasons=excluded)
        call = {k: v for k, v in kwargs.items() if k != "model"}
        runtime = self._rt()
        salt = self._cache_salt_for(ctx)
        runs = [self._route_run(runtime, cand, call, salt) for cand in candidates]
        max_tokens = call.get("max_tokens") or self.max_tokens
        budget = None
        if self.budget_usd is not None:
            estimate = max(
                estimate_micro(run.cand.label, ctx.estimated_input_tokens, max_tokens)
                for run in runs
            )
            budget = (self._budget_scope(), estimate, to_micro(self.budget_usd))
        talk = self._conversation(ctx) if self.affinity and len(runs) > 1 else None
        hedge = runtime.hedge if hedging else None
        return CallDriver(
            runs,
            excluded,
            self.retry_policy,
            frozenset(self.fallback_statuses),
            deadline=time.monotonic() + self.deadline if self.deadline else None,
            budget=budget,
            strategy=self.strategy,
            shape=CallShape(stream, ctx.estimated_input_tokens, max_tokens),
            rng=runtime.rng,
            conversation=talk,
            affinity_ttl=self.affinity_ttl,
            warm_tokens=_warm_tokens(ctx) if self.strategy == "cost" else 0,
            hedge=hedge,
            allowance=runtime.allowance if hedge else None,
            cost_of=partial(_abandoned_cost, ctx.estimated_input_tokens)
            if hedge
            else _nothing,
        )

    def _route_run(
        self,
        runtime: RouterRuntime,
        cand: _routing.Candidate,
        call: dict[str, Any],
        salt: str | None = None,
    ) -> RouteRun:
        model = runtime.model_for(cand.route)
        target: Runnable[Any, Any] = model
        kwargs = call
        if isinstance(model, ChatWandb):
            if salt is not None:
                kwargs = {**call, "cache_salt": salt}
        elif call.get("tools"):
            # A foreign model formats tools its own way: bind through its API.
            kwargs = dict(call)
            tools = kwargs.pop("tools")
            target = model.bind_tools(
                tools, tool_choice=kwargs.pop("tool_choice", None)
            )
        wandb = isinstance(cand.route.model, str)
        limit = self.max_in_flight
        if limit is not None and not isinstance(limit, int):
            limit = limit.get(cand.label)  # a cap per model
        retries = cand.route.max_retries
        return RouteRun(
            cand=cand,
            model=target,
            kwargs=kwargs,
            key=runtime.key_for(cand.route),
            slots=wandb,
            limit=limit,
            retries_left=retries if retries is not None else self.max_retries,
        )

    def _conversation(self, ctx: RoutingContext) -> Conversation:
        """The call's conversation; its key is made only if read."""
        return Conversation(ctx.messages, ctx.config, self._affinity_scope)

    def _affinity_scope(self, conversation: str) -> str:
        """The state key of ``conversation`` (its digest) for this account."""
        account = self._rt().account
        return affinity_key(self.base_url or "", self.project, conversation, account)

    def _cache_salt_for(self, ctx: RoutingContext) -> str | None:
        """This call's ``cache_salt`` (a string, or the selector-like function's)."""
        salt = self.cache_salt(ctx) if callable(self.cache_salt) else self.cache_salt
        if salt is not None and not (isinstance(salt, str) and salt):
            msg = (
                "cache_salt must give a non-empty string or None (e.g. a tenant "
                f"id); got {salt!r}."
            )
            raise ValueError(msg)
        return salt

    def _budget_scope(self) -> str:
        """The budget's state key: a named scope, else this account's project.

        Two API keys share a budget only when both routers name the same
        ``budget_scope``.
        """
        if self.budget_scope:
            return budget_key(self.budget_scope)
        account = self._rt().account
        return route_key(self.base_url or "", self.project, "$", account)

    def _context(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        kwargs: Mapping[str, Any],
    ) -> tuple[list[Route] | None, RoutingContext]:
        """The static routes (``None`` under a selector) and the call's context."""
        static = self._static_routes()
        ctx = _routing.build_context(
            messages, config, kwargs, for_selector=static is None
        )
        return static, ctx

    # ------------------------------------------------------------------ attempts

    def _broke(
        self,
        driver: CallDriver,
        done: Committed[Any],
        held: Held,
        tally: StreamTally,
        exc: BaseException,
    ) -> Generator[Effect, Any, None] | None:
        """The driver's closing steps for a committed stream that ``exc`` broke.

        ``None`` for a stream closed early or interrupted (not an
        ``Exception``): the call path's ``finally`` gives back what it holds,
        billing what the usage seen so far says, else the estimate.
        """
        if tally.usage is not None:
            held.bill = self._tally_cost(done, tally)
        if not isinstance(exc, Exception):
            return None
        return self._finished(driver, done, held, tally, _broken(exc))

    def _finished(
        self,
        driver: CallDriver,
        done: Committed[Any],
        held: Held,
        tally: StreamTally,
        outcome: Outcome = "ok",
    ) -> Generator[Effect, Any, None]:
        """The driver's closing steps for a committed stream that ended."""
        held.sending = False
        cost = self._tally_cost(done, tally)
        return driver.finish(done, outcome, cost, tally.usage)

    # ------------------------------------------------------------------ results

    def _served(self, done: Committed[Any]) -> AIMessage:
        """The served answer, labelled with its model and the routing record."""
        message: AIMessage = done.value
        meta = dict(message.response_metadata)
        meta.setdefault("model_name", done.route.cand.label)
        meta["routing"] = done.record
        return message.model_copy(update={"response_metadata": meta})

    # Costs are counted only against a budget: without one, nothing reads them.

    def _cost(self, done: Committed[Any], message: AIMessage) -> int:
        if done.reservation is None:
            return 0
        cost = message.response_metadata.get("cost_usd")
        if cost is None:
            cost = call_cost_usd(done.route.cand.label, message.usage_metadata)
        return to_micro(cost or 0.0)

    def _tally_cost(self, done: Committed[Any], tally: StreamTally) -> int:
        if done.reservation is None:
            return 0
        return to_micro(call_cost_usd(done.route.cand.label, tally.usage) or 0.0)


def _broken(exc: BaseException) -> Outcome:
    """How a committed stream's failure counts: server-side faults hurt health."""
    if isinstance(exc, StreamInterruptedError | WandbAPIError | WandbTimeoutError):
        return "failed"
    return "other"


def _abandoned_cost(input_tokens: int, label: str, value: Any) -> int:
    """What an abandoned hedged attempt costs: its usage, else its input.

    A cancelled request may still be billed for the prompt W&B had read, so
    without usage its input is counted at the route's price.
    """
    usage = getattr(value, "usage_metadata", None)
    if usage:
        return to_micro(call_cost_usd(label, usage) or 0.0)
    if isinstance(value, Failure):
        return 0
    return input_micro(label, input_tokens)


def child_config(run_manager: BaseRunManager | None) -> RunnableConfig:
    """Config for attempts made inside one of core's own model runs."""
    if run_manager is None:
        return RunnableConfig()
    # Model run managers have no get_child(); this is what it would build.
    child = CallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    child.set_handlers(run_manager.inheritable_handlers)
    child.add_tags(run_manager.inheritable_tags)
    child.add_metadata(run_manager.inheritable_metadata)
    return RunnableConfig(callbacks=child)


def _warm_tokens(ctx: RoutingContext) -> int:
    """The prompt a warm route has cached: everything before the last message."""
    return estimate_message_tokens(ctx.messages[:-1]) if len(ctx.messages) > 1 else 0


def _nothing(label: str, value: Any) -> int:
    """The cost of an abandoned attempt when nothing is hedged (none are)."""
    return 0
