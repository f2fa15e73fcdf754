"""Agent middleware (``langchain_wandb_router.middleware``, a documented path).

Needs the ``agents`` extra (``langchain``).
"""

from langchain_wandb_router.router.middleware import WandbRoutingMiddleware

__all__ = ["WandbRoutingMiddleware"]
