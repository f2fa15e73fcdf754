"""Writing a WandbRouter down with LangChain's ``dumps`` and reading it back.

A router with static routes is a constructor record like any serializable
LangChain object: routes as model ids, dicts of a ``Route``'s settings, or the
serialized ChatWandb, and the key as a reference to ``WANDB_API_KEY``. What
cannot be written down faithfully makes the record "not implemented" with a
note saying what, so tracing (which serializes the model on every run) keeps
working and ``loads`` says why it cannot rebuild it. Mixed into WandbRouter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.load.serializable import (
    Serializable,
    SerializedConstructor,
    SerializedNotImplemented,
)

from langchain_wandb_router.chat._model import ChatWandb
from langchain_wandb_router.state._urls import url_secrets
from langchain_wandb_router.transport._config import API_KEY_ENV

if TYPE_CHECKING:
    from langchain_wandb_router.router._routing import Route

__all__ = ["Serialized"]


class Serialized(Serializable):
    """``dumps``/``loads`` support for WandbRouter (see the module docstring)."""

    if TYPE_CHECKING:
        _static: list[Route] | None
        state: Any
        fallback_statuses: frozenset[int]
        cache_salt: Any

        def _describe_models(self) -> Any: ...

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """A router with static routes can be written down with ``dumps``."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where ``loads`` finds the class (``langchain_wandb_router.router``)."""
        return ["langchain_wandb_router", "router"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The key is written as a reference to ``WANDB_API_KEY``, never itself."""
        return {"api_key": API_KEY_ENV}

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """The router's constructor arguments, for ``dumps``.

        Routes are written as model ids, dicts of a ``Route``'s settings, or
        the serialized ChatWandb; ``loads`` reads them back. What cannot be
        written down faithfully (a selector function, a route that is not a
        W&B model, a cache_salt function, a state object or a state URL with
        credentials) makes the record "not implemented", as for any LangChain
        object that cannot be serialized, with a note saying what: tracing
        still works, and
        ``loads`` raises ``NotImplementedError`` quoting the note.
        """
        problem = self._unserializable()
        if problem is not None:
            record = self.to_json_not_implemented()
            record["repr"] = (
                f"This WandbRouter cannot be serialized: {problem} cannot be "
                "written down. Only routers with static W&B routes (model ids, "
                "Route, ChatWandb) and a state URL without credentials can; build "
                "this one in code instead."
            )
            return record
        data = super().to_json()
        if data["type"] == "constructor":
            kwargs = data["kwargs"]
            kwargs["models"] = [r.as_spec() for r in self._static or ()]
            if "fallback_statuses" in kwargs:
                kwargs["fallback_statuses"] = sorted(self.fallback_statuses)
        return data

    def _unserializable(self) -> str | None:
        """What in this router cannot be serialized, if anything."""
        if self._static is None:
            return f"its model selector {self._describe_models()!r} (a function)"
        for route in self._static:
            if not isinstance(route.model, str | ChatWandb):
                return f"its route {route.label!r} (a {type(route.model).__name__})"
        if callable(self.cache_salt):
            return "its cache_salt function"
        if not isinstance(self.state, str | None):
            return f"its state object ({type(self.state).__name__})"
        if isinstance(self.state, str) and url_secrets(self.state):
            return "its state URL's credentials"
        return None
