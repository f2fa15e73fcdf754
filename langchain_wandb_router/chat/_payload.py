"""ChatWandb's request payload: the fast build and the W&B finishing touches.

BaseChatOpenAI builds a Chat Completions payload for OpenAI. ChatWandb either
lets it (then patches the result) or, when every message converts on the fast
path, builds the same dict itself with :func:`fast_payload`. Either way
:func:`finish_payload` turns it into W&B's request body: the model id checked
against the catalog, ``max_tokens`` under its W&B name, ``extra_body`` merged,
structured-output schemas in wire form and earlier reasoning sent back.

:func:`fast_payload` and :func:`invocation_params` reproduce how the parent
assembles a payload and its invocation params, so they sit behind the request
fast path's fence (``_fast_messages``): outside the releases it was proven
against, or switched off, the parent builds both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from langchain_wandb_router.catalog._models import (
    get_model_info,
    normalize_model_id,
    retired_error,
)
from langchain_wandb_router.chat import _fast_messages
from langchain_wandb_router.chat._structured import response_format_for
from langchain_wandb_router.chat._tokens import has_image_part
from langchain_wandb_router.errors import (
    WandbInvalidRequestError,
)

__all__ = ["DerivedParams", "fast_payload", "finish_payload", "invocation_params"]


@dataclass(slots=True)
class DerivedParams:
    """What ChatWandb derives from its fields, built once per configuration.

    Attributes:
        model_kwargs: A copy of the ``model_kwargs`` the rest was built from
            (they may be edited in place, which no assignment reports).
        default_params: ``_default_params``.
        invocation: BaseChatOpenAI's invocation params for no stop and no
            call kwargs, built on first use.
    """

    model_kwargs: dict[str, Any]
    default_params: dict[str, Any]
    invocation: dict[str, Any] | None = None


def invocation_params(
    derived: DerivedParams, stop: list[str] | None, kwargs: Mapping[str, Any]
) -> dict[str, Any] | None:
    """BaseChatOpenAI's invocation params for a call, from its cached base.

    Stop and kwargs go on top of ``derived.invocation`` as the parent would put
    them: its defaults win over ``stop``, kwargs over all.

    Args:
        derived: The model's derived params, ``invocation`` already built.
        stop: The call's stop sequences, if any.
        kwargs: The call's keyword arguments.

    Returns:
        The params, or ``None`` when the parent must build them: remote MCP
        tools are among the tools (they carry credentials, which only the
        parent knows how to redact), or the request fast path is off (see
        ``_fast_messages.MESSAGES_FASTPATH_ENABLED``).
    """
    if not _fast_messages.MESSAGES_FASTPATH_ENABLED:
        return None
    params = dict(derived.invocation or {})
    if stop is not None and "stop" not in derived.default_params:
        params["stop"] = stop
    params.update(kwargs)
    tools = params.get("tools")
    if tools and isinstance(tools, list):
        if any(_is_mcp_tool(tool) for tool in tools):
            return None
        params["tools"] = list(tools)  # a copy, as the parent gives
    return params


def fast_payload(
    default_params: Mapping[str, Any],
    messages: list[dict[str, Any]],
    stop: list[str] | None,
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """What BaseChatOpenAI builds for Chat Completions, messages already converted.

    The Responses API is never used by ChatWandb, so this is the parent's
    Chat Completions branch alone: default params, then the call's kwargs,
    then ``stop`` (when given), then the messages.

    Args:
        default_params: The model's ``_default_params`` (a copy: not changed).
        messages: The converted message dicts.
        stop: The call's stop sequences, if any.
        kwargs: The call's keyword arguments.

    Returns:
        The payload, equal to the parent's for the same input.
    """
    payload = {**default_params, **kwargs}
    if stop is not None:
        # Where the parent puts it: a key it already has keeps its place.
        payload["stop"] = stop
    payload["messages"] = messages
    return payload


def finish_payload(
    payload: dict[str, Any],
    messages: list[BaseMessage],
    kwargs: Mapping[str, Any],
    *,
    model: str,
    plain: bool,
) -> dict[str, Any]:
    """Turn BaseChatOpenAI's payload into W&B's request body.

    Args:
        payload: The parent's payload (or the fast path's equal of it);
            changed in place.
        messages: The input messages ``payload["messages"]`` was made of.
        kwargs: The call's keyword arguments.
        model: The model's configured id, used when the payload names none.
        plain: Whether every message has plain string content (no images).

    Returns:
        ``payload``, ready to encode.

    Raises:
        ValueError: There are no messages.
        WandbModelRetiredError: The catalog lists the model as retired.
        WandbInvalidRequestError: Images were sent to a model without vision.
    """
    if not payload["messages"]:
        msg = (
            "ChatWandb has no messages to send: the input is empty. Pass at "
            "least one message, e.g. llm.invoke('Hello') or "
            "llm.invoke([HumanMessage('Hello')])."
        )
        raise ValueError(msg)
    model = normalize_model_id(payload.get("model") or model)
    payload["model"] = model
    info = get_model_info(model)
    if info is not None and info.is_retired():
        raise retired_error(info)
    if (
        info is not None
        and not info.vision
        and not plain
        and has_image_part(m.get("content") for m in payload["messages"])
    ):
        raise WandbInvalidRequestError(
            f"'{model}' does not accept images. Use a vision model such as "
            "'wandb/Qwen/Qwen3.5-35B-A3B', 'wandb/moonshotai/Kimi-K2.5' or "
            "'wandb/google/gemma-4-31B-it'.",
            model=model,
        )
    # W&B takes max_tokens; langchain-openai may have renamed it.
    if "max_completion_tokens" in payload:
        payload["max_tokens"] = payload.pop("max_completion_tokens")
    # The openai SDK would merge extra_body into the body; we send it merged.
    extra = payload.pop("extra_body", None)
    if extra:
        payload.update(extra)
    if not payload.get("stream"):
        payload.pop("stream", None)
        payload.pop("stream_options", None)
    schema = payload.get("response_format")
    if isinstance(schema, type):
        payload["response_format"] = response_format_for(schema, kwargs.get("strict"))
    payload.pop("strict", None)
    if info is not None and info.reasoning != "none":
        _carry_reasoning_back(messages, payload["messages"])
    return payload


def _carry_reasoning_back(
    source: list[BaseMessage], messages: list[dict[str, Any]]
) -> None:
    """Send earlier reasoning back: Kimi-K2.5 and GLM-5 templates read it."""
    for original, converted in zip(source, messages, strict=False):
        if isinstance(original, AIMessage):
            reasoning = original.additional_kwargs.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                converted["reasoning_content"] = reasoning


def _is_mcp_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type") == "mcp"
