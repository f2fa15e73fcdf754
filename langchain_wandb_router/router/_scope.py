"""Call-scope state: what a routed call can see that is not in its arguments.

LangChain hands a chat model its messages, config and kwargs; the agent state
of ``create_agent`` is not among them, so WandbRoutingMiddleware sets it here
for the duration of one model call and the router's selector reads it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["CURRENT_AGENT_STATE"]

CURRENT_AGENT_STATE: ContextVar[Any] = ContextVar(
    "wandb_router_agent_state", default=None
)
