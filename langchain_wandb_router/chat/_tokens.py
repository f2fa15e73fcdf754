"""Offline token estimates.

W&B serves open-weight models with their own tokenizers, so tiktoken's counts
would be wrong, and tiktoken fetches its tables from the internet on first use.
A characters-per-token estimate is enough for what we use it for: skipping
routes whose context window is clearly too small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from langchain_core.messages import BaseMessage

__all__ = [
    "IMAGE_PART_TYPES",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "has_image_input",
    "has_image_part",
    "is_image_part",
]

IMAGE_PART_TYPES = frozenset({"image_url", "image"})
"""Content-part types that carry an image: OpenAI's, and LangChain's standard one."""

_CHARS_PER_TOKEN = 4
_PER_MESSAGE_OVERHEAD = 4
# A fixed charge per image; W&B vision models use a few hundred tokens for one.
_IMAGE_TOKENS = 800


def estimate_text_tokens(text: str) -> int:
    """Roughly how many tokens ``text`` takes (about four characters each)."""
    return (len(text) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN


def estimate_message_tokens(messages: Sequence[BaseMessage]) -> int:
    """Roughly how many input tokens ``messages`` take, images included."""
    total = 0
    for message in messages:
        total += _PER_MESSAGE_OVERHEAD
        content = message.content
        if isinstance(content, str):
            total += estimate_text_tokens(content)
            continue
        for part in content:
            if isinstance(part, str):
                total += estimate_text_tokens(part)
            elif is_image_part(part):
                total += _IMAGE_TOKENS
            else:
                total += estimate_text_tokens(str(part.get("text", "")))
        tool_calls = getattr(message, "tool_calls", None)
        if tool_calls:
            total += estimate_text_tokens(str(tool_calls))
    return total


def is_image_part(part: object) -> bool:
    """Whether one part of a message's content is an image."""
    return isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES


def has_image_part(contents: Iterable[object]) -> bool:
    """Whether any message content in ``contents`` holds an image part.

    A content is text or a list of parts: LangChain messages' ``content`` and
    that of OpenAI-format message dicts alike.
    """
    for content in contents:
        if isinstance(content, list):
            for part in content:
                if is_image_part(part):
                    return True
    return False


def has_image_input(messages: Sequence[BaseMessage]) -> bool:
    """Whether any message carries an image part."""
    return has_image_part(message.content for message in messages)
