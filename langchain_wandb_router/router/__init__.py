"""WandbRouter: a chat model that picks the W&B model per call.

``_model`` is the class (settings, validation, tools, copies, runtime);
``_runs`` its public entry points, each in the router's own chain run;
``_calls`` the routed call paths; ``_driver`` the one call driver's decisions
(side-effect-free steps yielding the effects of ``_effects``), carried out by
``_interpreters`` (sync and async, giving back what a call holds);
``_routing`` routes, context and the capability filter; ``_strategy`` which
route goes first (strategies) and hedging's settings; ``_runtime`` the models
and state built from the settings; ``_attempts``, ``_budget`` and ``_scope``
their helpers.
``middleware`` (needs the ``agents`` extra) loads only when imported.
"""

from langchain_wandb_router.router._model import Route, RoutingContext, WandbRouter
from langchain_wandb_router.router._strategy import Hedge

__all__ = ["Hedge", "Route", "RoutingContext", "WandbRouter"]
