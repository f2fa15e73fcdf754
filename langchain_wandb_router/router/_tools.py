"""Tools, structured output and token counts through WandbRouter.

Tools and response formats are bound to the router and sent to whichever
model serves the call, fallbacks included (every W&B route speaks Chat
Completions' ``tools`` and ``response_format``). Mixed into WandbRouter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_wandb_router.chat._structured import (
    json_structured_output,
    normalize_tool_choice,
)
from langchain_wandb_router.chat._tokens import (
    estimate_message_tokens,
    estimate_text_tokens,
)

if TYPE_CHECKING:
    from langchain_wandb_router.router._routing import Route

__all__ = ["ToolsAndSchemas"]


class ToolsAndSchemas(BaseChatModel):
    """``bind_tools``, ``with_structured_output`` and token counts of the router."""

    if TYPE_CHECKING:
        _static: list[Route] | None

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
