"""Fast message conversion for ChatWandb's requests, equal to langchain-openai's.

:func:`messages_to_dicts` turns a conversation into Chat Completions message
dicts. It covers the shapes W&B conversations actually have and returns
``None`` for anything else, so the caller falls back to langchain-openai. The
output is the same as langchain-openai's private ``_convert_message_to_dict``
(proven by property tests), only cheaper: the parent formats content through a
generic block walker and, for assistant messages, scans string content
character by character looking for audio blocks; plain strings need none of
that.

Reproducing another library's private behaviour is fenced. This module holds
the fence the fast paths share: they run only on the releases the property
tests proved them equal against (:data:`LANGCHAIN_OPENAI_PROVEN`,
:data:`LANGCHAIN_CORE_PROVEN`), and only while :data:`FAST_PATHS_ENV` does not
switch them off; the decision is taken once, at import, and logged on one
DEBUG line. Outside the range ChatWandb uses langchain-openai's converters,
which need no proof. ChatWandb's ``disable_fast_paths=True`` switches them off
for one model.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
)

__all__ = [
    "FAST_PATHS_ENV",
    "LANGCHAIN_CORE_PROVEN",
    "LANGCHAIN_OPENAI_PROVEN",
    "MESSAGES_FASTPATH_ENABLED",
    "MESSAGES_FENCE",
    "MESSAGES_PROVEN",
    "Fence",
    "Release",
    "check_fence",
    "installed_version",
    "message_to_dict",
    "messages_fence",
    "messages_to_dicts",
    "parse_release",
]

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------- the fence

Release = tuple[int, ...]
"""A final release's numbers, e.g. ``(1, 7, 4)``."""

LANGCHAIN_OPENAI_PROVEN: tuple[Release, Release] = ((1, 4, 0), (1, 8, 1))
"""The langchain-openai releases the fast paths were proven equal against.

From pyproject's floor (``.ci/lowest`` runs the proofs there) to the newest
release ``make test`` ran them on. Raise the upper bound only after the proofs
in ``tests/unit_tests/test_fastpath.py`` pass on the new release: they force
the fast paths on whatever the fence says.
"""

LANGCHAIN_CORE_PROVEN: tuple[Release, Release] = ((1, 6, 0), (1, 8, 3))
"""The langchain-core releases the same proofs ran on (message classes, chunks)."""

MESSAGES_PROVEN: dict[str, tuple[Release, Release]] = {
    "langchain-openai": LANGCHAIN_OPENAI_PROVEN,
    "langchain-core": LANGCHAIN_CORE_PROVEN,
}
"""What the message fast path needs, package by package, inclusive."""

FAST_PATHS_ENV = "LANGCHAIN_WANDB_ROUTER_FAST_PATHS"
"""``0`` (or ``false``, ``no``, ``off``) switches every fast path off.

Read once, when the package's chat modules are imported: for the whole process.
"""

_OFF = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Fence:
    """Whether a fast path may run in this process, and why (its DEBUG line)."""

    enabled: bool
    reason: str


def parse_release(text: str) -> Release | None:
    """``"1.7.4"`` -> ``(1, 7, 4)``; ``None`` for anything but a final release.

    Pre-releases, dev, post and local versions give ``None``: no proof ran on
    them. Missing trailing parts count as 0 (``"1.8"`` is ``(1, 8, 0)``).
    """
    parts = text.strip().split(".")
    if not all(part.isascii() and part.isdecimal() for part in parts):
        return None
    numbers = [int(part) for part in parts]
    numbers += [0] * (3 - len(numbers))
    return tuple(numbers)


def installed_version(package: str) -> str | None:
    """The installed version of ``package`` (the fence's only version source)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def dotted(release: Release) -> str:
    """``(1, 7, 4)`` -> ``"1.7.4"``."""
    return ".".join(map(str, release))


def check_fence(
    label: str,
    proven: Mapping[str, tuple[Release, Release]],
    env: Mapping[str, str],
) -> Fence:
    """Decide whether a fast path runs: switch first, then every package's range.

    Args:
        label: What the fast path converts, for the reason.
        proven: Package name -> the lowest and highest proven release.
        env: The environment (``os.environ`` at import).

    Returns:
        The decision and its reason, ready to log.
    """
    fallback = f"ChatWandb {label}: langchain-openai's converters"
    switch = env.get(FAST_PATHS_ENV, "")
    if switch.strip().lower() in _OFF:
        return Fence(False, f"{fallback} (switched off: {FAST_PATHS_ENV}={switch})")
    found: list[str] = []
    for package, (low, high) in proven.items():
        text = installed_version(package)
        release = parse_release(text) if text is not None else None
        if release is None or not low <= release <= high:
            return Fence(
                False,
                f"{fallback} ({package} {text or 'not installed'} is outside "
                f"{dotted(low)} to {dotted(high)}, the releases the fast path "
                "was proven equal against)",
            )
        found.append(f"{package} {text}")
    return Fence(
        True,
        f"ChatWandb {label}: fast path ({', '.join(found)}: within the releases "
        "it was proven equal against)",
    )


def messages_fence(env: Mapping[str, str] | None = None) -> Fence:
    """The message fast path's fence for this installation and ``env``."""
    return check_fence(
        "request messages", MESSAGES_PROVEN, os.environ if env is None else env
    )


MESSAGES_FENCE: Fence = messages_fence()
"""The decision taken at import (see :data:`MESSAGES_FASTPATH_ENABLED`)."""

MESSAGES_FASTPATH_ENABLED: bool = MESSAGES_FENCE.enabled
"""Whether :func:`message_to_dict` and :func:`messages_to_dicts` are active.

Decided once, at import, by :data:`MESSAGES_FENCE`; off, they return ``None``
and every conversation goes through langchain-openai. Tests set it to force
either path.
"""

logger.debug("%s", MESSAGES_FENCE.reason)

# ------------------------------------------------------------------ converters


def _name_of(message: BaseMessage) -> Any:
    # The parent prefers the field and falls back to additional_kwargs; an empty
    # name counts as missing there, so `or` (not `is None`) is the faithful test.
    return message.name or message.additional_kwargs.get("name")


def _with_name(content: Any, message: BaseMessage) -> dict[str, Any]:
    result: dict[str, Any] = {"content": content}
    name = _name_of(message)
    if name is not None:
        result["name"] = name
    return result


def _human_to_dict(message: HumanMessage) -> dict[str, Any] | None:
    result = _with_name(message.content, message)
    result["role"] = "user"
    return result


def _system_to_dict(message: SystemMessage) -> dict[str, Any] | None:
    result = _with_name(message.content, message)
    # A SystemMessage converted from a "developer" dict remembers its role here.
    result["role"] = message.additional_kwargs.get("__openai_role__", "system")
    return result


def _tool_to_dict(message: ToolMessage) -> dict[str, Any] | None:
    # The parent keeps only these three keys for tool results (no name).
    return {
        "content": message.content,
        "role": "tool",
        "tool_call_id": message.tool_call_id,
    }


def _arguments_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)``, as the parent encodes arguments.

    ``json.dumps`` builds an encoder, and the encoder a C scanner, on every
    call: most of the cost for small arguments. The C scanner is built once
    here, with the very settings of that encoder. It keeps no circular-reference
    marks (they would need resetting after a failure), so a cyclic value ends
    in ``RecursionError`` instead of ``ValueError``; the caller then leaves the
    message to the parent, which raises its own error.
    """
    encoder = json.JSONEncoder(ensure_ascii=False)
    make_scanner = getattr(json.encoder, "c_make_encoder", None)
    if make_scanner is None:  # no C accelerator (e.g. PyPy)
        return encoder.encode
    scan = make_scanner(
        None,
        encoder.default,
        json.encoder.encode_basestring,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(scan(value, 0))

    return encode


_encode_arguments = _arguments_encoder()


def _openai_tool_calls(
    calls: list[ToolCall], invalid: list[InvalidToolCall]
) -> list[dict[str, Any]] | None:
    """The wire form of an assistant's tool calls, valid ones first."""
    converted: list[dict[str, Any]] = []
    append = converted.append
    for call in calls:
        try:
            arguments = _encode_arguments(call["args"])
        except (TypeError, ValueError, RecursionError):
            # Unserializable (or cyclic) args: let the parent raise its own error.
            return None
        append(
            {
                "type": "function",
                "id": call["id"],
                "function": {"name": call["name"], "arguments": arguments},
            }
        )
    for bad in invalid:
        append(
            {
                "type": "function",
                "id": bad["id"],
                "function": {"name": bad["name"], "arguments": bad["args"]},
            }
        )
    return converted


def _ai_to_dict(message: AIMessage) -> dict[str, Any] | None:
    # The most frequent message of an agent's history: kept flat on purpose.
    extra = message.additional_kwargs
    if "audio" in extra:
        return None
    content = message.content
    result: dict[str, Any] = {"content": content}
    name = message.name or extra.get("name")  # as _name_of
    if name is not None:
        result["name"] = name
    result["role"] = "assistant"
    calls = message.tool_calls
    invalid = message.invalid_tool_calls
    if calls or invalid:
        converted = _openai_tool_calls(calls, invalid)
        if converted is None:
            return None
        result["tool_calls"] = converted
        # With tool calls, an empty content goes on the wire as null.
        result["content"] = content or None
    elif "tool_calls" in extra or "function_call" in extra:
        # Raw OpenAI tool/function calls carried without parsed tool calls.
        return None
    return result


# Each converter takes exactly the class it is registered for.
_Converter = Callable[[Any], dict[str, Any] | None]

# Exact classes only: subclasses, chunks, ChatMessage, FunctionMessage and
# anything else go to the parent.
_CONVERTERS: dict[type[BaseMessage], _Converter] = {
    HumanMessage: _human_to_dict,
    SystemMessage: _system_to_dict,
    AIMessage: _ai_to_dict,
    ToolMessage: _tool_to_dict,
}


def message_to_dict(message: BaseMessage) -> dict[str, Any] | None:
    """Convert one message with plain string content to its request dict.

    Args:
        message: A message from a conversation.

    Returns:
        The dict langchain-openai's ``_convert_message_to_dict`` would build (as
        used by ``BaseChatOpenAI._get_request_payload`` for Chat Completions),
        or ``None`` when the message has a shape this fast path does not cover:
        list content (text blocks, images, v1 blocks), a message class other
        than exactly ``HumanMessage``, ``SystemMessage``, ``AIMessage`` or
        ``ToolMessage``, an assistant message carrying ``audio`` or raw
        ``tool_calls``/``function_call`` in ``additional_kwargs`` without
        parsed tool calls, or tool-call arguments JSON cannot encode; also
        always ``None`` while :data:`MESSAGES_FASTPATH_ENABLED` is off.
    """
    if not MESSAGES_FASTPATH_ENABLED:
        return None
    converter = _CONVERTERS.get(type(message))
    if converter is None or not isinstance(message.content, str):
        return None
    return converter(message)


def messages_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]] | None:
    """Convert a whole conversation, or give up on it.

    Args:
        messages: The conversation, in order.

    Returns:
        The list of request dicts, equal to converting each message with
        langchain-openai, or ``None`` if any message needs the parent (see
        :func:`message_to_dict`) or the fast path is off (see
        :data:`MESSAGES_FASTPATH_ENABLED`); the caller then converts the whole
        list the usual way.
    """
    if not MESSAGES_FASTPATH_ENABLED:
        return None
    converted: list[dict[str, Any]] = []
    append = converted.append
    for message in messages:
        converter = _CONVERTERS.get(type(message))
        if converter is None or not isinstance(message.content, str):
            return None
        result = converter(message)
        if result is None:
            return None
        append(result)
    return converted
