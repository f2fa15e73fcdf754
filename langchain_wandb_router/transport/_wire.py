"""What W&B's error answers say, and text that cannot go on the wire.

A body's message and code and ``Retry-After`` are read off the wire by the
send functions (``_http``) and the stream decoder (``_sse``), and turned into
typed errors through the one status -> error table
(:func:`~langchain_wandb_router.errors.error_for_status`). Every
piece of server text quoted is scrubbed of API keys first. A request whose
text UTF-8 cannot encode is refused before sending
(:func:`unencodable_text_error`).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_wandb_router.errors import (
    WandbError,
    WandbInvalidRequestError,
    error_for_status,
    scrub,
    status_for_code,
)

__all__ = [
    "error_from_payload",
    "error_from_status",
    "parse_retry_after",
    "unencodable_text_error",
]


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
    advice: str | None = None,
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
        advice=advice,
    )


def error_from_payload(
    data: Mapping[str, Any],
    model: str,
    *,
    successor: str | None = None,
    advice: str | None = None,
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
        advice=advice,
    )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON-like value (keys too), with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            # The key goes into the message, so it must be printable itself.
            name = str(key).encode("utf-8", "backslashreplace").decode()
            here = f"{path}.{name}" if path else name
            if isinstance(key, str):
                yield f"{here} (the key)", key
            yield from _strings(item, here)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _where(path: str, payload: Mapping[str, Any]) -> str:
    """``messages[2].content`` said the way a user counts: message 3 (user)."""
    head, dot, rest = path.partition(".")
    digits = head[len("messages[") : -1]
    if not (head.startswith("messages[") and head.endswith("]") and digits.isdigit()):
        return f"the request's {path}"
    index = int(digits)
    message = payload["messages"][index]
    role = message.get("role", "?") if isinstance(message, Mapping) else "?"
    role = str(role).encode("utf-8", "backslashreplace").decode()
    field = rest if dot else "itself"
    return f"message {index + 1} of {len(payload['messages'])} ({role}), {field},"


def _first_unencodable(payload: Mapping[str, Any]) -> tuple[str, int, str] | None:
    """(where, index, code point) of the first string UTF-8 cannot encode."""
    for path, text in _strings(payload, ""):
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            return _where(path, payload), exc.start, f"U+{ord(text[exc.start]):04X}"
    return None


def unencodable_text_error(payload: Mapping[str, Any]) -> WandbInvalidRequestError:
    r"""The error for a body UTF-8 cannot encode, saying which text to fix.

    Python strings may hold lone surrogates (``"\ud800"``: half a UTF-16
    pair, or ``surrogateescape`` residue from decoding bytes); UTF-8 has no
    encoding for them, so the request cannot be sent. The message names the
    field and the position, never the text itself.

    Args:
        payload: The request body that failed to encode.

    Returns:
        A non-retryable :class:`WandbInvalidRequestError` without a status
        (nothing was sent), so neither retries nor a router's fallbacks
        repeat the request.
    """
    found = _first_unencodable(payload)
    where, index, char = found or ("a string of the request", -1, "a surrogate")
    at = f" at index {index}" if index >= 0 else ""
    model = payload.get("model")
    return WandbInvalidRequestError(
        f"Cannot send the request: {where} has a lone surrogate ({char}){at}, "
        "which is not valid Unicode and has no UTF-8 encoding. It usually comes "
        "from decoding bytes with errors='surrogateescape' or from cutting a "
        "UTF-16 pair in half; clean the text first, e.g. "
        "text.encode('utf-8', 'replace').decode('utf-8').",
        model=model if isinstance(model, str) else None,
    )
