"""The router's call paths, sync and async: the only room where they are twins.

``invoke``/``ainvoke``/``stream``/``astream`` turn the input into messages,
add the router's own tags, metadata and callbacks to the call's config, and
open a *chain* run for the router when someone listens; every attempt inside
is then a child model run named after the model that ran it, so usage is
traced once, by the model that produced it. Core's own hooks (``_generate``,
``_stream`` and their async forms) land on the same routed calls.

Each routed call (``_route``, ``_route_stream`` and their async forms) is a
thin interpreter: plan the call (:mod:`._calls`), let the driver decide
(:mod:`._driver`), and carry out its effects with blocking or awaiting I/O
(:mod:`._interpreters`). The twins differ only where sync and async I/O must
(``await``, ``async for``, ``aclosing``), which one body cannot express; every
decision they make is shared. Mixed into WandbRouter, which holds the settings.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import aclosing, closing
from typing import TYPE_CHECKING, Any, cast

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)

from langchain_wandb_router.chat._calls import CoreCall, CoreHooks
from langchain_wandb_router.errors import NoRouteAvailableError
from langchain_wandb_router.router import _routing
from langchain_wandb_router.router._attempts import StreamTally, interrupted
from langchain_wandb_router.router._calls import RoutedCalls, child_config
from langchain_wandb_router.router._effects import RouteRun
from langchain_wandb_router.router._interpreters import (
    Held,
    adrive,
    aundo,
    drive,
    undo,
    within,
)
from langchain_wandb_router.router._routing import Route, RoutingContext
from langchain_wandb_router.transport._deadline import bounded
from langchain_wandb_router.transport._retry import aclose, aopen_first, open_first

__all__ = ["ChainRuns"]


class ChainRuns(CoreHooks, RoutedCalls):
    """The public call paths of WandbRouter (see the module docstring)."""

    if TYPE_CHECKING:

        def _should_stream(self, *, async_api: bool, **kwargs: Any) -> bool: ...

    # The router's own run is a chain run; every attempt is a child model run
    # labelled with the model that ran it, so usage is traced once, by the
    # model that produced it.

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Route one call; see the class docstring."""
        messages, cfg, run_id = self._prepared(input, config)
        manager = get_callback_manager_for_config(cfg)
        if not manager.handlers:
            # Nobody listens: no run of our own; each attempt still has its.
            return self._route(messages, cfg, stop, kwargs)
        run = manager.on_chain_start(None, messages, **self._start(cfg, run_id))
        try:
            child = patch_config(cfg, callbacks=run.get_child())
            message = self._route(messages, child, stop, kwargs)
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(message)
        return message

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async :meth:`invoke`."""
        messages, cfg, run_id = self._prepared(input, config)
        manager = get_async_callback_manager_for_config(cfg)
        if not manager.handlers:
            return await self._aroute(messages, cfg, stop, kwargs)
        run = await manager.on_chain_start(None, messages, **self._start(cfg, run_id))
        try:
            child = patch_config(cfg, callbacks=run.get_child())
            message = await self._aroute(messages, child, stop, kwargs)
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(message)
        return message

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream one routed call; no fallback once a chunk was yielded."""
        if not self._should_stream(async_api=False, **{**kwargs, "stream": True}):
            # disable_streaming: one answer, yielded whole (as core does).
            yield cast(
                "AIMessageChunk", self.invoke(input, config, stop=stop, **kwargs)
            )
            return
        messages, cfg, run_id = self._prepared(input, config)
        run = get_callback_manager_for_config(cfg).on_chain_start(
            None, messages, **self._start(cfg, run_id)
        )
        # Chunks are merged once at the end, and only if someone listens.
        seen: list[AIMessageChunk] | None = [] if run.handlers else None
        try:
            child = patch_config(cfg, callbacks=run.get_child())
            # Closed with this generator (a caller that stops early), so the
            # routed call gives its slot and reservation back at once.
            with closing(self._route_stream(messages, child, stop, kwargs)) as chunks:
                for chunk in chunks:
                    if seen is not None:
                        seen.append(chunk)
                    yield chunk
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(_merged(seen))

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        if not self._should_stream(async_api=True, **{**kwargs, "stream": True}):
            answer = await self.ainvoke(input, config, stop=stop, **kwargs)
            yield cast("AIMessageChunk", answer)
            return
        messages, cfg, run_id = self._prepared(input, config)
        run = await get_async_callback_manager_for_config(cfg).on_chain_start(
            None, messages, **self._start(cfg, run_id)
        )
        seen: list[AIMessageChunk] | None = [] if run.handlers else None
        try:
            child = patch_config(cfg, callbacks=run.get_child())
            chunks = self._aroute_stream(messages, child, stop, kwargs)
            async with aclosing(chunks):
                async for chunk in chunks:
                    if seen is not None:
                        seen.append(chunk)
                    yield chunk
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(_merged(seen))

    # --------------------------------------------------------------- dry runs

    def plan(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stream: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The routes a call would try, in order, without sending anything.

        Takes what ``invoke`` takes (call arguments such as ``tools`` filter
        routes as they would). Reads health and live figures, takes no slot
        and reserves no budget. ``weighted`` and ``latency``'s exploration
        draw at random, so a call may order its routes differently.

        Returns:
            ``{"candidates": [{"model", "score", "reason"}, ...], "excluded":
            {model: reason}}``, candidates in the order they would be tried.
        """
        messages = self._messages(input)
        static, ctx = self._context(messages, ensure_config(config), kwargs)
        try:
            driver = self._driver(
                ctx, kwargs, static, self._select(ctx, static), stream
            )
        except NoRouteAvailableError as exc:
            return {"candidates": [], "excluded": dict(exc.reasons)}
        order = drive(
            driver.plan(), self._rt().state, self.retry_policy, _no_attempt, Held()
        )
        return {"candidates": order, "excluded": dict(driver.excluded)}

    async def aplan(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stream: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Async :meth:`plan` (a selector may be async here)."""
        messages = self._messages(input)
        static, ctx = self._context(messages, ensure_config(config), kwargs)
        try:
            selected = await self._aselect(ctx, static)
            driver = self._driver(ctx, kwargs, static, selected, stream)
        except NoRouteAvailableError as exc:
            return {"candidates": [], "excluded": dict(exc.reasons)}
        steps = driver.plan()
        sleep = self.retry_policy.asleep
        order = await adrive(steps, self._rt().state, sleep, _ano_attempt, Held())
        return {"candidates": order, "excluded": dict(driver.excluded)}

    # ------------------------------------------------ LangChain's own hooks
    # Core's legacy generate() and its streaming paths (stream_events) land
    # here (through CoreHooks), inside a model run core opened; attempts
    # become its children.

    def _answer(self, call: CoreCall) -> ChatResult:
        config = child_config(call.run_manager)
        message = self._route(call.messages, config, call.stop, call.kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _aanswer(self, call: CoreCall) -> ChatResult:
        config = child_config(call.run_manager)
        message = await self._aroute(call.messages, config, call.stop, call.kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, call: CoreCall) -> Iterator[ChatGenerationChunk]:
        config = child_config(call.run_manager)
        routed = self._route_stream(call.messages, config, call.stop, call.kwargs)
        with closing(routed) as chunks:
            for chunk in chunks:
                yield ChatGenerationChunk(message=chunk)

    async def _achunks(self, call: CoreCall) -> AsyncIterator[ChatGenerationChunk]:
        config = child_config(call.run_manager)
        routed = self._aroute_stream(call.messages, config, call.stop, call.kwargs)
        async with aclosing(routed) as chunks:
            async for chunk in chunks:
                yield ChatGenerationChunk(message=chunk)

    # ----------------------------------------------------- the routed calls

    def _select(self, ctx: RoutingContext, static: list[Route] | None) -> Any:
        if static is not None or _routing.forced_model(ctx, {}) is not None:
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

    async def _aselect(self, ctx: RoutingContext, static: list[Route] | None) -> Any:
        if static is not None or _routing.forced_model(ctx, {}) is not None:
            return None
        # A selector object may have an async way to choose (DecisionSelector's
        # acall asks its decision model without blocking the loop).
        choose = getattr(self.models, "acall", None)
        selected = choose(ctx) if callable(choose) else self.models(ctx)
        if inspect.isawaitable(selected):
            selected = await selected
        return selected

    def _route(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        static, ctx = self._context(messages, config, kwargs)
        prompt = _prompt(messages)
        driver = self._driver(ctx, kwargs, static, self._select(ctx, static))
        state, policy = self._rt().state, self.retry_policy

        def attempt(route: RouteRun) -> AIMessage:
            # A sync attempt cannot be interrupted from outside; ChatWandb
            # routes honour the deadline themselves, every read included.
            with bounded(driver.deadline):
                answer: AIMessage = route.model.invoke(
                    prompt, _named(config, route), stop=stop, **route.kwargs
                )
                return answer

        held = Held()
        try:
            done = drive(driver.run(), state, policy, attempt, held)
            message = self._served(done)
            cost = self._cost(done, message)
            end = driver.finish(done, "ok", cost, message.usage_metadata)
            drive(end, state, policy, attempt, held)
            return message
        finally:
            if held:
                undo(state, held)

    async def _aroute(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        static, ctx = self._context(messages, config, kwargs)
        prompt = _prompt(messages)
        selected = await self._aselect(ctx, static)
        driver = self._driver(ctx, kwargs, static, selected, hedging=True)
        state, policy = self._rt().state, self.retry_policy

        async def attempt(route: RouteRun) -> AIMessage:
            with bounded(driver.deadline):
                call = route.model.ainvoke(
                    prompt, _named(config, route), stop=stop, **route.kwargs
                )
                return await within(driver.deadline, call, route.cand.label)

        held = Held()
        try:
            done = await adrive(driver.run(), state, policy.asleep, attempt, held)
            message = self._served(done)
            cost = self._cost(done, message)
            end = driver.finish(done, "ok", cost, message.usage_metadata)
            await adrive(end, state, policy.asleep, attempt, held)
            return message
        finally:
            if held:
                await aundo(state, held)

    def _route_stream(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Generator[AIMessageChunk, None, None]:
        static, ctx = self._context(messages, config, kwargs)
        prompt = _prompt(messages)
        driver = self._driver(ctx, kwargs, static, self._select(ctx, static), True)
        state, policy = self._rt().state, self.retry_policy

        def attempt(route: RouteRun) -> Any:
            # The request starts here, under the deadline; ChatWandb carries
            # it on to every later read of the stream.
            with bounded(driver.deadline):
                return open_first(
                    route.model.stream(
                        prompt, _named(config, route), stop=stop, **route.kwargs
                    )
                )

        held = Held()
        try:
            done = drive(driver.run(), state, policy, attempt, held)
            if done.value is None:  # an empty stream: nothing to splice
                drive(driver.finish(done, "ok", 0), state, policy, attempt, held)
                return
            first, rest = done.value
            first.response_metadata["routing"] = done.record
            tally = StreamTally()
            held.sending = True
            try:
                yield tally.see(first)
                for chunk in rest:
                    yield tally.see(chunk)
            except BaseException as exc:
                rest.close()
                broke = self._broke(driver, done, held, tally, exc)
                if broke is None:
                    raise  # closed early, interrupted: undone in ``finally``
                drive(broke, state, policy, attempt, held)
                raise interrupted(done.route.cand.label, exc, tally) from exc
            ended = self._finished(driver, done, held, tally)
            drive(ended, state, policy, attempt, held)
        finally:
            if held:
                undo(state, held)

    async def _aroute_stream(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> AsyncGenerator[AIMessageChunk, None]:
        static, ctx = self._context(messages, config, kwargs)
        prompt = _prompt(messages)
        selected = await self._aselect(ctx, static)
        driver = self._driver(ctx, kwargs, static, selected, True, hedging=True)
        state, policy = self._rt().state, self.retry_policy

        async def attempt(route: RouteRun) -> Any:
            with bounded(driver.deadline):
                chunks = route.model.astream(
                    prompt, _named(config, route), stop=stop, **route.kwargs
                )
                opening = aopen_first(chunks)
                return await within(driver.deadline, opening, route.cand.label)

        held = Held()
        try:
            done = await adrive(driver.run(), state, policy.asleep, attempt, held)
            if done.value is None:
                end = driver.finish(done, "ok", 0)
                await adrive(end, state, policy.asleep, attempt, held)
                return
            first, rest = done.value
            first.response_metadata["routing"] = done.record
            tally = StreamTally()
            held.sending = True
            try:
                yield tally.see(first)
                async for chunk in rest:
                    yield tally.see(chunk)
            except BaseException as exc:
                await aclose(rest)
                broke = self._broke(driver, done, held, tally, exc)
                if broke is None:
                    raise
                await adrive(broke, state, policy.asleep, attempt, held)
                raise interrupted(done.route.cand.label, exc, tally) from exc
            ended = self._finished(driver, done, held, tally)
            await adrive(ended, state, policy.asleep, attempt, held)
        finally:
            if held:
                await aundo(state, held)


def _merged(chunks: list[AIMessageChunk] | None) -> AIMessageChunk | None:
    """The streamed answer as one message, for the run's end."""
    if not chunks:
        return None
    return add_ai_message_chunks(chunks[0], *chunks[1:])


def _prompt(messages: list[BaseMessage]) -> ChatPromptValue:
    """The messages as a prompt value, made once for every attempt of a call.

    A model's ``invoke`` takes a prompt value as it is; a list of messages
    it would check and wrap again on each attempt.
    """
    return ChatPromptValue.model_construct(messages=messages)


def _named(config: RunnableConfig, route: RouteRun) -> RunnableConfig:
    """An attempt's config: its run is named after the model it calls."""
    return {**config, "run_name": route.cand.label}


def _no_attempt(route: RouteRun) -> Any:
    raise AssertionError("a plan sends nothing")  # pragma: no cover


async def _ano_attempt(route: RouteRun) -> Any:
    raise AssertionError("a plan sends nothing")  # pragma: no cover
