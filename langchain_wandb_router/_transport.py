"""HTTP transport for W&B Inference: pooled httpx clients, SSE, errors.

The openai SDK is deliberately not on this path. Requests are built from the
payload dict LangChain already made, responses are parsed with ``json.loads``
and handed to the parent class's dict converters. Streams are split into SSE
``data:`` lines by hand on raw bytes, which is what keeps the per-chunk client
cost low. Each function sends once: retrying is the caller's decision, made
by :class:`~langchain_wandb_router._retry.RetryPolicy`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbAuthenticationError,
    WandbConnectionError,
    WandbContextOverflowError,
    WandbError,
    WandbInvalidRequestError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbRateLimitError,
    WandbTimeoutError,
)

logger = logging.getLogger("langchain_wandb_router")

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=64)


# --------------------------------------------------------------------------- pools

_sync_lock = threading.Lock()
_sync_clients: dict[str, httpx.Client] = {}
# Async clients are bound to the event loop that first used them, so the pool is
# keyed by loop as well; a WeakKeyDictionary lets a closed loop's clients go.
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def sync_client(base_url: str) -> httpx.Client:
    """Return the process-wide pooled client for ``base_url``."""
    client = _sync_clients.get(base_url)
    if client is None or client.is_closed:
        with _sync_lock:
            client = _sync_clients.get(base_url)
            if client is None or client.is_closed:
                # Every request passes its own timeout, so the client default is unused.
                client = httpx.Client(limits=_LIMITS, timeout=None)  # noqa: S113
                _sync_clients[base_url] = client
    return client


def async_client(base_url: str) -> httpx.AsyncClient:
    """Return the pooled async client for ``base_url`` on the running loop."""
    loop = asyncio.get_running_loop()
    per_loop = _async_clients.get(loop)
    if per_loop is None:
        per_loop = {}
        _async_clients[loop] = per_loop
    client = per_loop.get(base_url)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(limits=_LIMITS, timeout=None)  # noqa: S113
        per_loop[base_url] = client
    return client


# ------------------------------------------------------------------------ request


@dataclass(frozen=True)
class Request:
    """One chat-completions call, ready to send.

    Attributes:
        url: The full URL (``<base_url>/chat/completions``).
        headers: Auth and user headers; built once per model instance.
        body: The encoded JSON body.
        model: The bare model id (for error messages).
        timeout: Seconds, an ``httpx.Timeout``, or ``None`` for no limit.
    """

    url: str
    headers: Mapping[str, str]
    body: bytes
    model: str
    timeout: Any


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Encode a payload compactly; non-ASCII stays UTF-8 (W&B accepts it)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


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


# ------------------------------------------------------------------------- errors


def _error_text(body: bytes) -> str:
    """Pull the human message out of W&B's JSON bodies or an HTML page."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        detail = data.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []))
                    parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            if parts:
                return "; ".join(parts)
        if data.get("message"):
            return str(data["message"])
    if text.lower().startswith(("<!doctype", "<html")) or "<html" in text[:200].lower():
        return "W&B answered with an HTML error page instead of JSON"
    return text[:300] or "no body"


_OVERFLOW_HINTS = ("context length", "context window", "maximum context", "too long")


def error_from_status(
    status: int, body: bytes, headers: Mapping[str, str] | None, model: str
) -> WandbError:
    """Map a W&B error response to a typed error that says what to do."""
    if 300 <= status < 400:
        # Never followed: the Authorization header must reach the configured
        # base URL and nothing else.
        location = (headers or {}).get("location", "?")
        return WandbAPIError(
            f"W&B answered '{model}' with a redirect ({status}) to {location}; "
            "redirects are not followed so the API key stays with base_url. "
            "Check WANDB_INFERENCE_BASE_URL.",
            status_code=status,
            model=model,
        )
    detail = _error_text(body)
    retry_after = parse_retry_after((headers or {}).get("retry-after"))
    kw: dict[str, Any] = {
        "status_code": status,
        "model": model,
        "retry_after": retry_after,
    }
    if status == 401:
        return WandbAuthenticationError(
            f"W&B rejected the credentials (401: {detail}). Check WANDB_API_KEY, and "
            "that the team/project (project=, WANDB_INFERENCE_PROJECT) exists and "
            "is yours.",
            **kw,
        )
    if status == 402:
        return WandbQuotaError(
            f"W&B quota or spend cap reached (402: {detail}). Raise the limit in "
            "your W&B billing settings; retrying will not help.",
            **kw,
        )
    if status == 403:
        return WandbPermissionError(
            f"W&B refused the request (403: {detail}). W&B Inference may not be "
            "enabled for this organization or region.",
            **kw,
        )
    if status == 404:
        from langchain_wandb_router.catalog import get_model_info

        info = get_model_info(model) if not model.startswith("wandb-artifact") else None
        if info is not None and info.successor:
            hint = f" It was retired; use 'wandb/{info.successor}' instead."
        else:
            hint = " Run `wandb-router models --live` to see what W&B serves now."
        return WandbModelNotFoundError(
            f"W&B does not serve model '{model}' (404: {detail}).{hint}", **kw
        )
    if status in (400, 413, 422):
        if any(h in detail.lower() for h in _OVERFLOW_HINTS):
            return WandbContextOverflowError(
                f"The input is too long for '{model}' ({status}: {detail}). Shorten "
                "it, or route to a model with a larger context window.",
                **kw,
            )
        return WandbInvalidRequestError(
            f"W&B rejected the request for '{model}' ({status}: {detail}).", **kw
        )
    if status == 429:
        lowered = detail.lower()
        # 2025-era W&B answered these with 429 though waiting cannot help.
        if "quota" in lowered:
            return WandbQuotaError(
                f"W&B quota or spend cap reached ({status}: {detail}). Raise the limit "
                "in your W&B billing settings; retrying will not help.",
                **kw,
            )
        if "personal account" in lowered:
            return WandbPermissionError(
                f"W&B refused the request ({status}: {detail}). Send a team project: "
                "project='team/project' or WANDB_INFERENCE_PROJECT.",
                **kw,
            )
        return WandbRateLimitError(
            f"W&B rate or concurrency limit hit for '{model}' (429: {detail}).", **kw
        )
    return WandbAPIError(f"W&B server error for '{model}' ({status}: {detail}).", **kw)


def _transport_error(exc: httpx.HTTPError, req: Request) -> WandbError:
    if isinstance(exc, httpx.TimeoutException):
        return WandbTimeoutError(
            f"W&B did not answer in time for '{req.model}' ({type(exc).__name__}). "
            "Raise timeout=, or stream for long reasoning responses.",
            model=req.model,
        )
    return WandbConnectionError(
        f"Could not talk to W&B for '{req.model}': {type(exc).__name__}: {exc}",
        model=req.model,
    )


def _decode_json(content: bytes, req: Request) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except ValueError:
        raise WandbAPIError(
            f"W&B sent a response for '{req.model}' that is not valid JSON "
            f"(truncated or corrupted, {len(content)} bytes).",
            model=req.model,
        ) from None
    if not isinstance(data, dict):
        raise WandbAPIError(
            f"W&B sent an unexpected response for '{req.model}'.", model=req.model
        )
    if data.get("error") and not data.get("choices"):
        raise error_from_status(500, content, None, req.model)
    return data


# ------------------------------------------------------------------ JSON requests


def post_json(client: httpx.Client, req: Request) -> dict[str, Any]:
    """Send ``req`` once and return the decoded body, or raise a typed error."""
    try:
        resp = client.post(
            req.url, content=req.body, headers=req.headers, timeout=req.timeout
        )
    except httpx.HTTPError as exc:
        raise _transport_error(exc, req) from None
    if resp.status_code >= 300:
        raise error_from_status(resp.status_code, resp.content, resp.headers, req.model)
    return _decode_json(resp.content, req)


async def apost_json(client: httpx.AsyncClient, req: Request) -> dict[str, Any]:
    """Async :func:`post_json`."""
    try:
        resp = await client.post(
            req.url, content=req.body, headers=req.headers, timeout=req.timeout
        )
    except httpx.HTTPError as exc:
        raise _transport_error(exc, req) from None
    if resp.status_code >= 300:
        raise error_from_status(resp.status_code, resp.content, resp.headers, req.model)
    return _decode_json(resp.content, req)


# ------------------------------------------------------------------------- SSE


class _SSEDecoder:
    """Turns raw byte pieces into decoded ``data:`` JSON events."""

    __slots__ = ("_buf", "done", "finished", "model")

    def __init__(self, model: str) -> None:
        self._buf = b""
        self.done = False
        # A finish_reason or the usage chunk arrived: the answer is complete
        # even if a proxy swallows the closing [DONE].
        self.finished = False
        self.model = model

    def feed(self, piece: bytes) -> list[dict[str, Any]]:
        buf = self._buf + piece if self._buf else piece
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[dict[str, Any]] = []
        for line in lines:
            if not line.startswith(b"data:"):
                # Comments (":"), "event:"/"id:" fields and blank separators.
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                break
            if not data:
                continue
            try:
                # str, not bytes: json.loads would sniff the encoding per line.
                event = json.loads(data.decode())
            except ValueError:
                raise WandbAPIError(
                    f"W&B sent a malformed stream line for '{self.model}': "
                    f"{data[:80].decode('utf-8', 'replace')!r}",
                    model=self.model,
                ) from None
            if not isinstance(event, dict):
                continue
            choices = event.get("choices")
            if choices:
                if choices[0].get("finish_reason"):
                    self.finished = True
            elif event.get("error"):
                status = 500
                err = event["error"]
                if isinstance(err, dict) and isinstance(err.get("code"), int):
                    status = err["code"]
                raise error_from_status(status, data, None, self.model)
            elif event.get("usage"):
                self.finished = True
            events.append(event)
        return events


def _interrupted(
    req: Request, exc: BaseException, partial: str
) -> StreamInterruptedError:
    return StreamInterruptedError(
        f"The stream from '{req.model}' broke after output had been yielded "
        f"({type(exc).__name__}). Not retried, so the partial answer is not spliced "
        "with another attempt's output.",
        model=req.model,
        partial_text=partial,
    )


def stream_events(client: httpx.Client, req: Request) -> Iterator[dict[str, Any]]:
    """Send ``req`` once and yield its SSE events.

    A failure before the first event raises the typed error (the caller may
    retry); after it, :class:`StreamInterruptedError`, which is never retried.
    """
    yielded = False
    try:
        with client.stream(
            "POST", req.url, content=req.body, headers=req.headers, timeout=req.timeout
        ) as resp:
            if resp.status_code >= 300:
                resp.read()
                raise error_from_status(
                    resp.status_code, resp.content, resp.headers, req.model
                )
            decoder = _SSEDecoder(req.model)
            for piece in resp.iter_bytes():
                # After [DONE], keep reading to the end of the body: a response
                # left unread closes its connection instead of returning it to
                # the pool.
                if decoder.done:
                    continue
                for event in decoder.feed(piece):
                    yielded = True
                    yield event
            _check_end(decoder, yielded, req)
    except httpx.HTTPError as exc:
        if yielded:
            raise _interrupted(req, exc, "") from exc
        raise _transport_error(exc, req) from None


async def astream_events(
    client: httpx.AsyncClient, req: Request
) -> AsyncIterator[dict[str, Any]]:
    """Async :func:`stream_events`."""
    yielded = False
    try:
        async with client.stream(
            "POST", req.url, content=req.body, headers=req.headers, timeout=req.timeout
        ) as resp:
            if resp.status_code >= 300:
                await resp.aread()
                raise error_from_status(
                    resp.status_code, resp.content, resp.headers, req.model
                )
            decoder = _SSEDecoder(req.model)
            async for piece in resp.aiter_bytes():
                if decoder.done:
                    continue  # drain to the end; see stream_events
                for event in decoder.feed(piece):
                    yielded = True
                    yield event
            _check_end(decoder, yielded, req)
    except httpx.HTTPError as exc:
        if yielded:
            raise _interrupted(req, exc, "") from exc
        raise _transport_error(exc, req) from None


def _check_end(decoder: _SSEDecoder, yielded: bool, req: Request) -> None:
    """A body that ended early: nothing at all, or no [DONE] and no finish."""
    if not decoder.done and not yielded:
        raise WandbConnectionError(
            f"The stream from '{req.model}' ended before any data.", model=req.model
        )
    if not (decoder.done or decoder.finished):
        raise httpx.RemoteProtocolError("stream ended without [DONE]")
