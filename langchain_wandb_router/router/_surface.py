"""WandbRouter as a LangChain model beyond its calls: tools, schemas, serialization.

Tools and response formats are bound to the router and sent to whichever
model serves the call, fallbacks included (every W&B route speaks Chat
Completions' ``tools`` and ``response_format``); token counts are offline
estimates. A router with static routes is a constructor record for
``dumps`` like any serializable LangChain object: routes as model ids, dicts
of a ``Route``'s settings, or the serialized ChatWandb, and the key as a
reference to ``WANDB_API_KEY``. What cannot be written down faithfully makes
the record "not implemented" with a note saying what, so tracing (which
serializes the model on every run) keeps working and ``loads`` says why it
cannot rebuild it. Mixed into WandbRouter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.load.serializable import (
    SerializedConstructor,
    SerializedNotImplemented,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_wandb_router.chat._model import ChatWandb
from langchain_wandb_router.chat._structured import (
    json_structured_output,
    normalize_tool_choice,
)
from langchain_wandb_router.chat._tokens import (
    estimate_message_tokens,
    estimate_text_tokens,
)
from langchain_wandb_router.state._urls import url_secrets
from langchain_wandb_router.transport._config import API_KEY_ENV

if TYPE_CHECKING:
    from langchain_wandb_router.router._routing import Route

__all__ = ["ModelSurface"]


class ModelSurface(BaseChatModel):
    """Tools, schemas, token counts and ``dumps`` of WandbRouter."""

    if TYPE_CHECKING:
        _static: list[Route] | None
        state: Any
        fallback_statuses: frozenset[int]
        cache_salt: Any

        def _describe_models(self) -> Any: ...

    # ------------------------------------------------------------ serialization

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

    # ------------------------------------------------------------ tools, schema

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; they go to whichever model serves the call, fallbacks too.

        ``strict=True`` asks for arguments that match each tool's schema
        exactly (``strict`` and ``additionalProperties: false`` are sent).
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = normalize_tool_choice(tool_choice)
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: str = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output through the router, whichever model serves.

        ``method`` is ``json_schema`` (default, as for ChatWandb),
        ``json_mode`` or ``function_calling``; ``include_raw=True`` keeps the
        raw message even when parsing fails.
        """
        if method == "function_calling":
            return super().with_structured_output(
                schema, include_raw=include_raw, **kwargs
            )
        return json_structured_output(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            **kwargs,
        )

    # ------------------------------------------------------------ token counts

    def get_num_tokens(self, text: str) -> int:
        """Estimate tokens offline (no ``transformers`` download)."""
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Any = None
    ) -> int:
        """The first route's own estimate (ours for W&B models)."""
        if self._static is not None and isinstance(
            self._static[0].model, BaseChatModel
        ):
            return self._static[0].model.get_num_tokens_from_messages(messages)
        return estimate_message_tokens(messages)
