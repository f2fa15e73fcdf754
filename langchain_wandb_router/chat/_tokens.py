"""Offline token estimates.

W&B serves open-weight models with their own tokenizers, so tiktoken's counts
would be wrong, and tiktoken fetches its tables from the internet on first use.
A characters-per-token estimate is enough for what we use it for: skipping
routes whose context window is clearly too small.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

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
            elif part.get("type") in ("image_url", "image"):
                total += _IMAGE_TOKENS
            else:
                total += estimate_text_tokens(str(part.get("text", "")))
        tool_calls = getattr(message, "tool_calls", None)
        if tool_calls:
            total += estimate_text_tokens(str(tool_calls))
    return total


def has_image_input(messages: Sequence[BaseMessage]) -> bool:
    """Whether any message carries an image part."""
    for message in messages:
        if isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, dict) and part.get("type") in (
                    "image_url",
                    "image",
                ):
                    return True
    return False
