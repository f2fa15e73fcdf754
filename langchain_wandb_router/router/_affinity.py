"""Which conversation a call belongs to, for keeping it on a warm prompt cache.

W&B caches prompt prefixes per backend, so a conversation whose turns stay on
one route reads its history from the cache. The conversation's key is
LangGraph's ``configurable.thread_id``, else ``configurable.session_id`` or
``metadata.session_id``, else a hash of the system prompt and the first user
message (what every later turn of the same conversation starts with).

The key is always hashed: the state (Redis, shared by a fleet) never holds a
thread id or a prompt, only a one-way digest of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

__all__ = ["Conversation", "continues", "conversation_key"]

_SEPARATOR = "\x1f"


class Conversation:
    """One call's conversation as affinity reads it, each part made once.

    Both parts are read only by some calls (a strategy's first turn never
    looks its route up; a turn served by the first route of the given order
    writes nothing), and hashing a long prompt is not free, so neither is made
    before it is asked for.

    Args:
        messages: The call's messages.
        config: The call's config (thread and session ids).
        scoped: Makes the conversation's digest a state key (base URL,
            project and account in it).
    """

    __slots__ = ("_config", "_continues", "_key", "_keyed", "_messages", "_scoped")

    def __init__(
        self,
        messages: Sequence[BaseMessage],
        config: RunnableConfig | None,
        scoped: Callable[[str], str],
    ) -> None:
        self._messages = messages
        self._config = config
        self._scoped = scoped
        self._key: str | None = None
        self._keyed = False
        self._continues: bool | None = None

    def key(self) -> str | None:
        """The conversation's state key (``None``: nothing identifies it)."""
        if not self._keyed:
            digest = conversation_key(self._messages, self._config)
            self._key = None if digest is None else self._scoped(digest)
            self._keyed = True
        return self._key

    def continues(self) -> bool:
        """Whether its route is looked up (see :func:`continues`)."""
        if self._continues is None:
            self._continues = continues(self._messages, self._config)
        return self._continues


def continues(messages: Sequence[BaseMessage], config: RunnableConfig | None) -> bool:
    """Whether a call may have a route to go back to: a later turn, or an id.

    Without a thread or session id, conversations are told apart by how they
    open; many open alike ("Hello"), so a first turn is placed by the
    strategy, not by whoever said the same before. Its route is remembered
    all the same, for its second turn.
    """
    config = config or {}
    configurable: Mapping[str, Any] = config.get("configurable") or {}
    metadata: Mapping[str, Any] = config.get("metadata") or {}
    if configurable.get("thread_id") or configurable.get("session_id"):
        return True
    return bool(metadata.get("session_id")) or any(m.type == "ai" for m in messages)


def conversation_key(
    messages: Sequence[BaseMessage], config: RunnableConfig | None
) -> str | None:
    """A one-way key for the conversation ``messages`` belong to.

    Returns ``None`` when nothing identifies a conversation (no thread or
    session id, and no user message to anchor a hash on).
    """
    config = config or {}
    configurable: Mapping[str, Any] = config.get("configurable") or {}
    metadata: Mapping[str, Any] = config.get("metadata") or {}
    for source, value in (
        ("thread", configurable.get("thread_id")),
        ("session", configurable.get("session_id")),
        ("session", metadata.get("session_id")),
    ):
        if value is not None and value != "":
            return _digest(source, str(value))
    anchor = _anchor(messages)
    return None if anchor is None else _digest("prefix", anchor)


def _anchor(messages: Sequence[BaseMessage]) -> str | None:
    """The system prompt and the first user message, as one string."""
    system = ""
    for message in messages:
        if message.type == "system" and not system:
            system = message.text
        elif message.type == "human":
            return system + _SEPARATOR + message.text
    return None


def _digest(source: str, text: str) -> str:
    # surrogatepass: a lone surrogate is the request's problem to report
    # (before sending), not a reason for the key to fail first.
    raw = f"langchain-wandb-router|conversation|{source}|{text}".encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.sha256(raw).hexdigest()[:24]
