"""W&B Inference for LangChain and LangGraph.

Public names are imported lazily so ``import langchain_wandb_router`` stays cheap
(no langchain-openai, httpx or pydantic model building until a name is used).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_wandb_router.catalog import (
        LiveModels,
        ModelInfo,
        Pricing,
        get_model_info,
        list_models,
        refresh_models,
        register_model,
    )
    from langchain_wandb_router.chat import (
        ChatWandb,
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
    from langchain_wandb_router.integrations._provider import (
        ProviderRegistrationError,
        register_provider,
    )
    from langchain_wandb_router.integrations._weave import (
        SupportsAddCost,
        register_weave_costs,
    )
    from langchain_wandb_router.integrations.cost import (
        WandbCostCallbackHandler,
        get_wandb_cost_callback,
    )
    from langchain_wandb_router.middleware import (
        WandbRoutingMiddleware,
    )
    from langchain_wandb_router.router import (
        Route,
        RoutingContext,
        WandbRouter,
    )
    from langchain_wandb_router.state import (
        BudgetSettings,
        ConcurrencySettings,
        HealthSettings,
        InProcessState,
        Lease,
        Reservation,
        RouterState,
        SlotTimeoutError,
        StateUnavailableError,
    )
    from langchain_wandb_router.state._redis import (
        RedisState,
    )
    from langchain_wandb_router.transport import (
        RetryPolicy,
    )

__version__ = "0.1.0"

# Where each public name lives; imported on first attribute access (RedisState
# needs redis-py, WandbRoutingMiddleware the agents extra).
_EXPORTS: dict[str, str] = {
    "ChatWandb": "chat",
    "Route": "router",
    "RoutingContext": "router",
    "WandbRouter": "router",
    "RetryPolicy": "transport",
    "BudgetSettings": "state",
    "ConcurrencySettings": "state",
    "HealthSettings": "state",
    "InProcessState": "state",
    "Lease": "state",
    "Reservation": "state",
    "RouterState": "state",
    "SlotTimeoutError": "state",
    "StateUnavailableError": "state",
    "RedisState": "state._redis",
    "LiveModels": "catalog",
    "ModelInfo": "catalog",
    "Pricing": "catalog",
    "get_model_info": "catalog",
    "list_models": "catalog",
    "refresh_models": "catalog",
    "register_model": "catalog",
    "WandbCostCallbackHandler": "integrations.cost",
    "get_wandb_cost_callback": "integrations.cost",
    "WandbRoutingMiddleware": "middleware",
    "BudgetExceededError": "errors",
    "NoRouteAvailableError": "errors",
    "StreamInterruptedError": "errors",
    "WandbAPIError": "errors",
    "WandbAuthenticationError": "errors",
    "WandbConcurrencyLimitError": "errors",
    "WandbConnectionError": "errors",
    "WandbContextOverflowError": "errors",
    "WandbError": "errors",
    "WandbInvalidRequestError": "errors",
    "WandbModelNotFoundError": "errors",
    "WandbModelRetiredError": "errors",
    "WandbPermissionError": "errors",
    "WandbQuotaError": "errors",
    "WandbRateLimitError": "errors",
    "WandbTimeoutError": "errors",
    "ProviderRegistrationError": "integrations._provider",
    "register_provider": "integrations._provider",
    "SupportsAddCost": "integrations._weave",
    "register_weave_costs": "integrations._weave",
}

__all__ = [
    "BudgetExceededError",
    "BudgetSettings",
    "ChatWandb",
    "ConcurrencySettings",
    "HealthSettings",
    "InProcessState",
    "Lease",
    "LiveModels",
    "ModelInfo",
    "NoRouteAvailableError",
    "Pricing",
    "ProviderRegistrationError",
    "RedisState",
    "Reservation",
    "RetryPolicy",
    "Route",
    "RouterState",
    "RoutingContext",
    "SlotTimeoutError",
    "StateUnavailableError",
    "StreamInterruptedError",
    "SupportsAddCost",
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
