"""What ChatWandb does with each field it inherits from ``BaseChatOpenAI``.

Every inherited field is in exactly one of two tables. :data:`HONOURED`
fields reach W&B (in the payload, or through our transport) or are handled by
langchain-core. :data:`REFUSED` fields have no W&B meaning, or belong to the
openai SDK or the Responses API that ChatWandb never uses; setting one fails at
construction with a message naming the field and what to do instead, so no
setting is ever silently dropped. A test checks the two tables cover the
installed ``BaseChatOpenAI`` exactly, so a field added upstream is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = [
    "HONOURED",
    "REFUSED",
    "Refusal",
    "check_refused_fields",
    "check_stream_usage",
    "refused_in_use",
]

HONOURED = frozenset(
    {
        # langchain-core's own fields (BaseLanguageModel / BaseChatModel).
        "name",
        "cache",
        "verbose",
        "callbacks",
        "tags",
        "metadata",
        "custom_get_token_ids",
        "rate_limiter",
        "disable_streaming",
        "output_version",
        "profile",
        # Sent in the request body.
        "model_name",
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "reasoning_effort",
        "extra_body",
        "model_kwargs",
        "streaming",
        # Used by our transport.
        "openai_api_key",
        "openai_api_base",
        "request_timeout",
        "max_retries",
        "default_headers",
        "default_query",
        "http_client",
        "http_async_client",
        # Read by BaseChatOpenAI.with_structured_output (function calling).
        "disabled_params",
    }
)
"""Inherited fields that take effect."""

_RESPONSES_API = (
    "it is an OpenAI Responses API setting, and W&B serves Chat Completions only"
)
_SDK_CLIENT = (
    "it is an openai SDK client, which ChatWandb never uses; to control the "
    "transport pass http_client=httpx.Client(...) and "
    "http_async_client=httpx.AsyncClient(...)"
)


@dataclass(frozen=True)
class Refusal:
    """Why a field is refused, and which of its values are harmless.

    Attributes:
        reason: Why, and what to do instead.
        harmless: Values that ask for nothing (``None``, a ``False`` flag);
            they are accepted.
        only_if_given: Refuse only values the caller passed: the field's
            default comes from an environment variable ChatWandb does not read.
    """

    reason: str
    harmless: tuple[Any, ...] = (None,)
    only_if_given: bool = False


REFUSED: dict[str, Refusal] = {
    "openai_organization": Refusal(
        "W&B has no organizations; attribute usage to a team with "
        "project='team/project' (or WANDB_INFERENCE_PROJECT)"
    ),
    "openai_proxy": Refusal(
        "pass http_client=httpx.Client(proxy=...) and "
        "http_async_client=httpx.AsyncClient(proxy=...) instead"
    ),
    "include_response_headers": Refusal(
        "ChatWandb does not copy response headers into response_metadata; read "
        "them with an httpx hook, http_client=httpx.Client(event_hooks="
        "{'response': [...]})",
        harmless=(False,),
    ),
    "use_responses_api": Refusal(
        _RESPONSES_API + "; leave it unset", harmless=(None, False)
    ),
    "use_previous_response_id": Refusal(
        _RESPONSES_API + "; send the conversation's messages instead",
        harmless=(False,),
    ),
    "include": Refusal(_RESPONSES_API),
    "store": Refusal(_RESPONSES_API + "; W&B does not store responses"),
    "truncation": Refusal(
        _RESPONSES_API + "; trim the messages yourself "
        "(langchain_core.messages.trim_messages)"
    ),
    "context_management": Refusal(_RESPONSES_API),
    "reasoning": Refusal(
        _RESPONSES_API + "; use reasoning_effort='low'|'medium'|'high' or "
        "enable_thinking=True|False"
    ),
    "verbosity": Refusal(
        "it is an OpenAI setting W&B does not document; send it with "
        "extra_body={'verbosity': ...} if your model accepts it"
    ),
    "service_tier": Refusal("W&B has no service tiers"),
    "prompt_cache_options": Refusal(
        "it is an OpenAI setting; W&B caches prompt prefixes by itself "
        "(partition its cache with cache_salt='...')"
    ),
    "client": Refusal(_SDK_CLIENT),
    "async_client": Refusal(_SDK_CLIENT),
    "root_client": Refusal(_SDK_CLIENT),
    "root_async_client": Refusal(_SDK_CLIENT),
    "http_socket_options": Refusal(
        "it only shapes the openai SDK's transport; pass http_client=httpx.Client("
        "transport=httpx.HTTPTransport(socket_options=...)) and its async twin",
        harmless=(None, (), []),
    ),
    "stream_chunk_timeout": Refusal(
        "only the openai SDK path reads it; bound the silence between stream "
        "bytes with timeout=httpx.Timeout(600, read=<seconds>)",
        harmless=(None, 0),
        only_if_given=True,
    ),
    "stream_usage": Refusal(
        "usage is always requested when streaming (cost_usd, budgets and usage "
        "callbacks need it) and W&B sends it on every stream anyway; leave it "
        "unset, and ignore usage_metadata if you do not need it",
        harmless=(None, True),
    ),
    "tiktoken_model_name": Refusal(
        "W&B models use their own tokenizers and ChatWandb counts tokens without "
        "tiktoken; pass custom_get_token_ids= for exact counts"
    ),
}
"""Inherited fields ChatWandb refuses, with the reason the error gives."""


def refused_in_use(model: BaseModel) -> list[str]:
    """The refused fields ``model`` holds a meaningful value for."""
    given = model.model_fields_set
    fields = type(model).model_fields
    used = []
    for name, rule in REFUSED.items():
        value = getattr(model, name, None)
        if rule.only_if_given and (
            name not in given
            # A model rebuilt from another's attributes (configurable_fields,
            # with_config) passes the default on: that is not a choice.
            or value == fields[name].get_default(call_default_factory=True)
        ):
            continue
        if value not in rule.harmless:
            used.append(name)
    return used


def check_refused_fields(model: BaseModel) -> None:
    """Raise if ``model`` sets a field ChatWandb cannot honour.

    Raises:
        ValueError: Naming every such field (as the caller spells it) and what
            to do instead.
    """
    used = refused_in_use(model)
    if not used:
        return
    fields = type(model).model_fields
    lines = []
    for name in used:
        alias = fields[name].alias
        label = f"{alias}= ({name})" if alias else f"{name}="
        lines.append(_refusal(label, name))
    raise ValueError(" ".join(lines))


def check_stream_usage(value: Any) -> None:
    """Raise for a per-call ``stream_usage`` the field would refuse.

    ``llm.stream(..., stream_usage=False)`` (or ``.bind(stream_usage=False)``)
    asks what the field refuses; it fails the same way.

    Raises:
        ValueError: ``value`` asks for a stream without usage.
    """
    if value not in REFUSED["stream_usage"].harmless:
        raise ValueError(_refusal("stream_usage=", "stream_usage"))


def _refusal(label: str, name: str) -> str:
    return f"{label} is not supported by ChatWandb: {REFUSED[name].reason}."
