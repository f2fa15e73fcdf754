"""The router's public call entry points, each wrapped in the router's own run.

``invoke``/``ainvoke``/``stream``/``astream`` turn the input into messages,
add the router's own tags, metadata and callbacks to the call's config, and
open a *chain* run for the router when someone listens; every attempt inside
is then a child model run named after the model that ran it, so usage is
traced once, by the model that produced it. The routed work itself is
``RoutedCalls`` (``_calls``), which this extends. Mixed into WandbRouter,
which holds the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackManager, CallbackManager
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)

from langchain_wandb_router.router._calls import RoutedCalls

__all__ = ["ChainRuns"]


class ChainRuns(RoutedCalls):
    """The public call paths of WandbRouter (see the module docstring)."""

    if TYPE_CHECKING:
        tags: list[str] | None
        metadata: dict[str, Any] | None
        callbacks: Any
        verbose: bool

        def get_name(
            self, suffix: str | None = None, *, name: str | None = None
        ) -> str: ...
        def _convert_input(self, input: LanguageModelInput) -> PromptValue: ...

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
        messages, cfg, start = self._prepared(input, config)
        manager = get_callback_manager_for_config(cfg)
        if not manager.handlers:
            # Nobody listens: no run of our own; each attempt still has its.
            return self._route(messages, cfg, stop, kwargs)
        run = manager.on_chain_start(None, messages, **start)
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
        messages, cfg, start = self._prepared(input, config)
        manager = get_async_callback_manager_for_config(cfg)
        if not manager.handlers:
            return await self._aroute(messages, cfg, stop, kwargs)
        run = await manager.on_chain_start(None, messages, **start)
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
        messages, cfg, start = self._prepared(input, config)
        run = get_callback_manager_for_config(cfg).on_chain_start(
            None, messages, **start
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
        messages, cfg, start = self._prepared(input, config)
        run = await get_async_callback_manager_for_config(cfg).on_chain_start(
            None, messages, **start
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

    def _prepared(
        self, input: LanguageModelInput, config: RunnableConfig | None
    ) -> tuple[list[BaseMessage], RunnableConfig, dict[str, Any]]:
        """The call's messages, config (with the router's own) and run name.

        The third item holds the ``on_chain_start`` keywords of the router's
        own chain run.
        """
        messages = self._messages(input)
        cfg = self._with_own(config)
        start = {
            "name": cfg.get("run_name") or self.get_name(),
            "run_id": cfg.pop("run_id", None),
        }
        return messages, cfg, start

    def _messages(self, input: LanguageModelInput) -> list[BaseMessage]:
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


def _merged(chunks: list[AIMessageChunk] | None) -> AIMessageChunk | None:
    """The streamed answer as one message, for the run's end."""
    if not chunks:
        return None
    return add_ai_message_chunks(chunks[0], *chunks[1:])
