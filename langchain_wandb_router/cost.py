"""Cost callbacks (``langchain_wandb_router.cost``, a documented import path)."""

from langchain_wandb_router.integrations.cost import (
    WandbCostCallbackHandler,
    get_wandb_cost_callback,
)

__all__ = ["WandbCostCallbackHandler", "get_wandb_cost_callback"]
