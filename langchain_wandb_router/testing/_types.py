"""The emulator's data types: scripted faults, forced replies, recorded requests.

:class:`Fault` (``WandbEmulator.fault``/``chaos``), :class:`Forced`
(``respond_with``) and :class:`RecordedRequest` (``WandbEmulator.requests``)
are plain data, shared by the emulator (``_server``) and its HTTP handler
(``_handler``) without either importing the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "Forced", "RecordedRequest"]


@dataclass
class Fault:
    """One scripted misbehaviour, applied to the next matching request(s).

    Attributes:
        status: Answer with this HTTP status instead of a reply.
        body: The error body (dict → JSON, str/bytes as is); default W&B's.
        headers: Extra response headers, e.g. ``{"Retry-After": "1"}``.
        delay: Seconds to wait before the first byte (slow first byte, timeouts).
        drop_after: For streams, close the connection after this many events;
            for JSON, send half the body and close.
        malformed_after: For streams, send a non-JSON ``data:`` line after this
            many events.
        chunk_delay: For streams, seconds to wait before each event.
        truncate: Send a JSON body cut in half with a correct length.
        times: How many requests this fault applies to (``None``: all).
        model: Only requests for this bare model id (``"*"``: any).
    """

    status: int | None = None
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_after: int | None = None
    malformed_after: int | None = None
    chunk_delay: float = 0.0
    truncate: bool = False
    times: int | None = 1
    model: str = "*"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the emulator received."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    model: str | None
    client_port: int = 0
    """The client's source port: equal ports mean a reused connection."""


@dataclass
class Forced:
    """A reply forced by ``WandbEmulator.respond_with``: content, reasoning, tools."""

    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]] | None
    times: int | None
    model: str
