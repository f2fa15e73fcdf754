"""What W&B's error answers say: a body's message and code, ``Retry-After``.

Read off the wire by the send functions (``_http``) and the stream decoder
(``_sse``), and turned into typed errors through the one status -> error table
in :mod:`langchain_wandb_router.errors`. Every piece of server text quoted is
scrubbed of API keys first.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from langchain_wandb_router.errors import (
    WandbError,
    error_for_status,
    scrub,
    status_for_code,
)

__all__ = ["error_from_payload", "error_from_status", "parse_retry_after"]


def parse_retry_after(value: str | None) -> float | None:
    """Read ``Retry-After`` as seconds or an HTTP date; ``None`` if absent/bad."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail_of(data: Any) -> tuple[str | None, str | None]:
    """(message, string code) from a decoded error body, if it has them."""
    if not isinstance(data, dict):
        return None, None
    err = data.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        message = str(err["message"]) if err.get("message") else None
        return message, code if isinstance(code, str) else None
    if isinstance(err, str):
        return err, None
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list):
        # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
        if parts:
            return "; ".join(parts), None
    if data.get("message"):
        return str(data["message"]), None
    return None, None


def _error_fields(body: bytes) -> tuple[str, str | None]:
    """The human message and string code of W&B's JSON bodies or an HTML page.

    The message is scrubbed of API keys (a server may echo the one it was
    sent) before it is cut, so no part of a key survives the cut.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message, code = _detail_of(data)
    if message is not None:
        return scrub(message), code
    if text.lower().startswith(("<!doctype", "<html")) or "<html" in text[:200].lower():
        return "W&B answered with an HTML error page instead of JSON", code
    return scrub(text)[:300] or "no body", code


def error_from_status(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None,
    model: str,
    *,
    successor: str | None = None,
) -> WandbError:
    """Map a W&B error response to a typed error that says what to do."""
    headers = headers or {}
    detail, code = _error_fields(body)
    return error_for_status(
        status,
        detail,
        model=model,
        retry_after=parse_retry_after(headers.get("retry-after")),
        code=code,
        successor=successor,
        location=headers.get("location"),
    )


def error_from_payload(
    data: Mapping[str, Any], model: str, *, successor: str | None = None
) -> WandbError:
    """Type an error W&B sent inside a 200 body or an SSE event.

    The status line said 200, so the class comes from the error's ``code``:
    an int is an HTTP status, known strings map to one, anything else is a
    server fault (500, retryable).
    """
    err = data.get("error")
    raw_code = err.get("code") if isinstance(err, dict) else None
    message, code = _detail_of(data)
    return error_for_status(
        status_for_code(raw_code),
        scrub(message) if message else "error without a message",
        model=model,
        code=code,
        successor=successor,
    )
