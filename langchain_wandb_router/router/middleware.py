"""WandbRoutingMiddleware: per-model-call routing for langchain's ``create_agent``.

Needs the ``agents`` extra (``pip install "langchain-wandb-router[agents]"``);
importing the package itself does not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

try:
    from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    msg = (
        "WandbRoutingMiddleware needs langchain and langgraph: "
        'pip install "langchain-wandb-router[agents]"'
    )
    raise ImportError(msg) from exc

from langchain_wandb_router.router._model import WandbRouter
from langchain_wandb_router.router._routing import RoutingContext
from langchain_wandb_router.router._scope import CURRENT_AGENT_STATE

__all__ = ["WandbRoutingMiddleware"]


class WandbRoutingMiddleware(AgentMiddleware):
    """Choose the W&B model for every model call of an agent.

    The selector sees the agent's state (``ctx.state``), its runtime context
    (``ctx.get(...)`` reads ``context=`` first) and the conversation, and the
    call gets the router's capability filter, retries and fallbacks. Tools the
    agent binds go to whichever model serves the call.

    Example:
        .. code-block:: python

            from dataclasses import dataclass
            from langchain.agents import create_agent
            from langchain_wandb_router import WandbRoutingMiddleware

            @dataclass
            class Ctx:
                task: str = "simple"

            def pick(ctx):
                if ctx.get("task") == "complex" or len(ctx.state["messages"]) > 6:
                    return "wandb/moonshotai/Kimi-K2.5"
                return "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"

            agent = create_agent(
                model="openai:unused",  # replaced on every call
                tools=[...],
                context_schema=Ctx,
                middleware=[WandbRoutingMiddleware(pick)],
            )
            agent.invoke({"messages": [...]}, context=Ctx(task="complex"))
    """

    def __init__(
        self,
        router_or_selector: WandbRouter
        | Callable[[RoutingContext], Any]
        | str
        | list[Any],
        **router_kwargs: Any,
    ) -> None:
        """Wrap a router, or build one from a selector/model list and router kwargs."""
        super().__init__()
        if isinstance(router_or_selector, WandbRouter):
            if router_kwargs:
                msg = "Pass router settings to WandbRouter(...) when giving a router."
                raise TypeError(msg)
            self.router = router_or_selector
        else:
            self.router = WandbRouter(models=router_or_selector, **router_kwargs)

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        """Route this model call through the router."""
        token = CURRENT_AGENT_STATE.set(request.state)
        try:
            return handler(request.override(model=self.router))
        finally:
            CURRENT_AGENT_STATE.reset(token)

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Async :meth:`wrap_model_call`."""
        token = CURRENT_AGENT_STATE.set(request.state)
        try:
            return await handler(request.override(model=self.router))
        finally:
            CURRENT_AGENT_STATE.reset(token)
