"""W&B Inference for LangChain and LangGraph.

Public names are imported lazily so ``import langchain_wandb_router`` stays cheap
(no langchain-openai, httpx or pydantic model building until a name is used).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_wandb_router._provider import (
        ProviderRegistrationError,
        register_provider,
    )
    from langchain_wandb_router._retry import RetryPolicy
    from langchain_wandb_router._state import (
        InProcessState,
        RouterState,
        StateUnavailableError,
    )
    from langchain_wandb_router._weave import register_weave_costs
    from langchain_wandb_router.catalog import (
        ModelInfo,
        get_model_info,
        list_models,
        refresh_models,
        register_model,
    )
    from langchain_wandb_router.chat_model import ChatWandb
    from langchain_wandb_router.cost import (
        WandbCostCallbackHandler,
        get_wandb_cost_callback,
    )
    from langchain_wandb_router.errors import (
        BudgetExceededError,
        NoRouteAvailableError,
        StreamInterruptedError,
        WandbAPIError,
        WandbAuthenticationError,
        WandbConcurrencyLimitError,
        WandbConnectionError,
        WandbContextOverflowError,
        WandbError,
        WandbInvalidRequestError,
        WandbModelNotFoundError,
        WandbModelRetiredError,
        WandbPermissionError,
        WandbQuotaError,
        WandbRateLimitError,
        WandbTimeoutError,
    )
    from langchain_wandb_router.router import Route, RoutingContext, WandbRouter

__version__ = "0.1.0"

# Where each public name lives; imported on first attribute access.
_EXPORTS: dict[str, str] = {
    "ChatWandb": "chat_model",
    "WandbRouter": "router",
    "Route": "router",
    "RoutingContext": "router",
    "RetryPolicy": "_retry",
    "RouterState": "_state",
    "InProcessState": "_state",
    "StateUnavailableError": "_state",
    "ModelInfo": "catalog",
    "get_model_info": "catalog",
    "list_models": "catalog",
    "refresh_models": "catalog",
    "register_model": "catalog",
    "WandbCostCallbackHandler": "cost",
    "get_wandb_cost_callback": "cost",
    "WandbRoutingMiddleware": "middleware",
    "BudgetExceededError": "errors",
    "NoRouteAvailableError": "errors",
    "StreamInterruptedError": "errors",
    "WandbAPIError": "errors",
    "WandbAuthenticationError": "errors",
    "WandbConnectionError": "errors",
    "WandbContextOverflowError": "errors",
    "WandbError": "errors",
    "WandbInvalidRequestError": "errors",
    "WandbModelNotFoundError": "errors",
    "WandbModelRetiredError": "errors",
    "WandbPermissionError": "errors",
    "WandbQuotaError": "errors",
    "WandbConcurrencyLimitError": "errors",
    "WandbRateLimitError": "errors",
    "WandbTimeoutError": "errors",
    "ProviderRegistrationError": "_provider",
    "register_provider": "_provider",
    "register_weave_costs": "_weave",
}

__all__ = [
    "BudgetExceededError",
    "ChatWandb",
    "InProcessState",
    "ModelInfo",
    "NoRouteAvailableError",
    "ProviderRegistrationError",
    "RetryPolicy",
    "Route",
    "RouterState",
    "RoutingContext",
    "StateUnavailableError",
    "StreamInterruptedError",
    "WandbAPIError",
    "WandbAuthenticationError",
    "WandbConcurrencyLimitError",
    "WandbConnectionError",
    "WandbContextOverflowError",
    "WandbCostCallbackHandler",
    "WandbError",
    "WandbInvalidRequestError",
    "WandbModelNotFoundError",
    "WandbModelRetiredError",
    "WandbPermissionError",
    "WandbQuotaError",
    "WandbRateLimitError",
    "WandbRouter",
    "WandbRoutingMiddleware",
    "WandbTimeoutError",
    "__version__",
    "get_model_info",
    "get_wandb_cost_callback",
    "list_models",
    "refresh_models",
    "register_model",
    "register_provider",
    "register_weave_costs",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'langchain_wandb_router' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(f"langchain_wandb_router.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
