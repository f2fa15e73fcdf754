"""What a router builds from its settings on first use: routes and state.

A router's fields are plain settings; the objects made from them (one ChatWandb
per W&B model, the health/slot/budget state) live here, are built lazily, and
are never copied with the router: a copy makes its own.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from langchain_wandb_router.chat._model import ChatWandb
from langchain_wandb_router.router._routing import Route
from langchain_wandb_router.router._strategy import Hedge, HedgeAllowance
from langchain_wandb_router.state._interface import (
    RouterState,
    account_fingerprint,
    route_key,
)
from langchain_wandb_router.transport._retry import DEFAULT_POLICY

__all__ = ["ROUTE_DEFAULTS", "RouterRuntime", "merge_settings"]

# Sampling and request arguments the router takes under ChatWandb's names and
# hands to every W&B route it builds (unset ones are left to ChatWandb).
ROUTE_DEFAULTS = (
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "reasoning_effort",
    "enable_thinking",
    "top_k",
    "repetition_penalty",
)

# Dict-valued arguments merged key by key: a route adding one body field keeps
# the router's others.
_MERGED = ("model_kwargs", "extra_body")


def merge_settings(
    params: Mapping[str, Any], settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``params`` overridden by ``settings``; ``model_kwargs``/``extra_body`` merged."""
    merged = {**params, **(settings or {})}
    for name in _MERGED:
        if isinstance(params.get(name), Mapping) and settings and name in settings:
            merged[name] = {**params[name], **(settings[name] or {})}
    return merged


# A template needs a model id; an unknown one passes every catalog check.
_TEMPLATE_MODEL = "wandb-router/template"


class RouterRuntime:
    """The chat models behind a router's routes, and its state.

    Args:
        params: ChatWandb arguments every W&B route shares (validated once,
            in the template).
        state: Where health, concurrency slots and spend are kept.
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        state: RouterState,
        hedge: Hedge | None = None,
    ) -> None:
        self.params = dict(params)
        self.state = state
        self.hedge = hedge
        """How async calls hedge (``None``: they do not)."""
        self.allowance = HedgeAllowance(hedge.max_extra) if hedge else None
        # The router owns the one retry loop, backpressure included: its
        # routes send once and hand every failure, a concurrency 429 too, back.
        self.params["max_retries"] = 0
        self.params["retry_policy"] = replace(DEFAULT_POLICY, backpressure=False)
        self.template = ChatWandb(model=_TEMPLATE_MODEL, **self.params)
        self._models: dict[Any, ChatWandb] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self.rng = random.Random()  # noqa: S311 - routing choices, not secrets
        """Randomness of the strategies (weights, exploration); a test seam."""
        key = self.params.get("api_key")
        secret = key.get_secret_value() if isinstance(key, SecretStr) else str(key)
        self.account = account_fingerprint(secret)
        """The account's fingerprint: state keys of two API keys never meet."""

    def key_for(self, route: Route) -> str:
        """The health and concurrency key of a route (computed once)."""
        key = self._keys.get(route.label)
        if key is None:
            if isinstance(route.model, str):
                key = route_key(
                    str(self.params.get("base_url") or ""),
                    self.params.get("project"),
                    route.label,
                    self.account,
                )
            else:
                key = f"route:{route.label}"
            self._keys[route.label] = key
        return key

    def model_for(self, route: Route) -> BaseChatModel:
        """The chat model behind ``route``; W&B ids share one ChatWandb each."""
        if not isinstance(route.model, str):
            return route.model  # a LangChain model, used as given
        key: Any = route.model
        if route.headers or route.model_settings:
            key = (route.model, route.headers, repr(route.model_settings))
        model = self._models.get(key)
        if model is None:
            with self._lock:
                model = self._models.get(key)
                if model is None:
                    model = self._build(route)
                    self._models[key] = model
        return model

    def _build(self, route: Route) -> ChatWandb:
        assert isinstance(route.model, str)  # foreign models are used as given
        if not route.headers and not route.model_settings:
            return self.template.model_copy(update={"model_name": route.model})
        # Per-route headers or settings change validated fields: rebuild.
        params = {**merge_settings(self.params, route.model_settings), "max_retries": 0}
        headers = {
            **(self.params.get("default_headers") or {}),
            **(route.headers or {}),
        }
        if headers:
            params["default_headers"] = headers
        return ChatWandb(model=route.model, **params)
