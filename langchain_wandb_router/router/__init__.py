"""WandbRouter: a chat model that picks the W&B model per call.

``_model`` is the class and its public entry points; ``_calls`` the four thin
call paths; ``_driver`` the one call driver (side-effect-free steps, with sync
and async interpreters that give back what a call holds); ``_routing`` routes,
context and the capability filter; ``_runtime`` the models and state built
from the settings; ``_attempts``, ``_budget`` and ``_scope`` their helpers.
``middleware`` (needs the ``agents`` extra) loads only when imported.
"""

from langchain_wandb_router.router._model import Route, RoutingContext, WandbRouter

__all__ = ["Route", "RoutingContext", "WandbRouter"]
