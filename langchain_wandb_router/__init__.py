"""W&B Inference for LangChain and LangGraph.

Public names are imported lazily so ``import langchain_wandb_router`` stays cheap
(no langchain-openai, httpx or pydantic model building until a name is used).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_wandb_router.catalog import (
        LiveModels as LiveModels,
        ModelInfo as ModelInfo,
        Pricing as Pricing,
        get_model_info as get_model_info,
        list_models as list_models,
        refresh_models as refresh_models,
        register_model as register_model,
    )
    from langchain_wandb_router.chat import (
        ChatWandb as ChatWandb,
    )
    from langchain_wandb_router.errors import (
        BudgetExceededError as BudgetExceededError,
        DecisionInputError as DecisionInputError,
        NoRouteAvailableError as NoRouteAvailableError,
        StreamInterruptedError as StreamInterruptedError,
        WandbAPIError as WandbAPIError,
        WandbAuthenticationError as WandbAuthenticationError,
        WandbConcurrencyLimitError as WandbConcurrencyLimitError,
        WandbConnectionError as WandbConnectionError,
        WandbContextOverflowError as WandbContextOverflowError,
        WandbError as WandbError,
        WandbInvalidRequestError as WandbInvalidRequestError,
        WandbModelNotFoundError as WandbModelNotFoundError,
        WandbModelRetiredError as WandbModelRetiredError,
        WandbPermissionError as WandbPermissionError,
        WandbQuotaError as WandbQuotaError,
        WandbRateLimitError as WandbRateLimitError,
        WandbTimeoutError as WandbTimeoutError,
    )
    from langchain_wandb_router.integrations._decision_selector import (
        DecisionSelector as DecisionSelector,
    )
    from langchain_wandb_router.integrations._decisions import (
        WandbDecisions as WandbDecisions,
    )
    from langchain_wandb_router.integrations._provider import (
        ProviderRegistrationError as ProviderRegistrationError,
        register_provider as register_provider,
    )
    from langchain_wandb_router.integrations._weave import (
        SupportsAddCost as SupportsAddCost,
        register_weave_costs as register_weave_costs,
    )
    from langchain_wandb_router.integrations.cost import (
        WandbCostCallbackHandler as WandbCostCallbackHandler,
        get_wandb_cost_callback as get_wandb_cost_callback,
    )
    from langchain_wandb_router.middleware import (
        WandbRoutingMiddleware as WandbRoutingMiddleware,
    )
    from langchain_wandb_router.router import (
        Hedge as Hedge,
        Route as Route,
        RoutingContext as RoutingContext,
        WandbRouter as WandbRouter,
    )
    from langchain_wandb_router.state import (
        BudgetSettings as BudgetSettings,
        ConcurrencySettings as ConcurrencySettings,
        HealthSettings as HealthSettings,
        InProcessState as InProcessState,
        Lease as Lease,
        Observation as Observation,
        Reservation as Reservation,
        RouterState as RouterState,
        RouteStats as RouteStats,
        SlotTimeoutError as SlotTimeoutError,
        StateUnavailableError as StateUnavailableError,
    )
    from langchain_wandb_router.state._redis import (
        RedisState as RedisState,
    )
    from langchain_wandb_router.transport import (
        RetryPolicy as RetryPolicy,
    )

__version__ = "0.1.0"

# Where each public name lives; imported on first attribute access (RedisState
# needs redis-py, WandbRoutingMiddleware the agents extra). This table is the
# public surface: ``__all__`` is made from it, and type checkers see the same
# names through the explicit re-exports above.
_EXPORTS: dict[str, str] = {
    "ChatWandb": "chat",
    "Hedge": "router",
    "Route": "router",
    "RoutingContext": "router",
    "WandbRouter": "router",
    "RetryPolicy": "transport",
    "BudgetSettings": "state",
    "ConcurrencySettings": "state",
    "HealthSettings": "state",
    "InProcessState": "state",
    "Lease": "state",
    "Observation": "state",
    "RouteStats": "state",
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
    "DecisionInputError": "errors",
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
    "WandbDecisions": "integrations._decisions",
    "DecisionSelector": "integrations._decision_selector",
}

__all__ = sorted([*_EXPORTS, "__version__"])


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
