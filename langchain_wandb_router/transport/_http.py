"""HTTP transport for W&B Inference: requests, wire errors, sending once.

The openai SDK is deliberately not on this path, and by default neither is
httpx's Client: the pooled connections are httpcore pools driven directly (a
user's own ``http_client`` is an ``httpx.Client`` and works the same way); the
pools themselves live in :mod:`langchain_wandb_router.transport._pools`. Requests are
built from the payload dict LangChain already made, responses are parsed with
``json.loads`` and handed to the parent class's dict converters. Streams are
split into SSE events by :class:`~langchain_wandb_router.transport._sse.SSEDecoder`.
Each function sends once: retrying is the caller's decision, made by
:class:`~langchain_wandb_router.transport._retry.RetryPolicy`. Which status means which
error lives in :mod:`langchain_wandb_router.errors`; this module only reads the
wire (the body's message and code, ``Retry-After``, ``Location``).

A request carries its call's deadline (see
:mod:`~langchain_wandb_router.transport._deadline`), read once when the call starts.
Each blocking step runs with that deadline in force, so the default pools'
network backend clamps every connect, write and read to the time left (see
:mod:`~langchain_wandb_router.transport._pools`). Here every per-request timeout is
clamped to the time left too and the deadline is checked after every body
piece, which also bounds a user's own httpx client (there one stalled read may
last up to the time left when the request started).

The pool and decoder names are re-exported here, where callers have always
found them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpcore
import httpx

from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbConnectionError,
    WandbError,
    WandbTimeoutError,
    stream_interrupted,
    unencodable_text_error,
)
from langchain_wandb_router.transport import _deadline
from langchain_wandb_router.transport._pools import AsyncHTTP as AsyncHTTP
from langchain_wandb_router.transport._pools import SyncHTTP as SyncHTTP
from langchain_wandb_router.transport._pools import async_client as async_client
from langchain_wandb_router.transport._pools import sync_client as sync_client
from langchain_wandb_router.transport._sse import SSEDecoder as SSEDecoder
from langchain_wandb_router.transport._wire import (
    error_from_payload as error_from_payload,
)
from langchain_wandb_router.transport._wire import (
    error_from_status as error_from_status,
)
from langchain_wandb_router.transport._wire import (
    parse_retry_after as parse_retry_after,
)

logger = logging.getLogger("langchain_wandb_router")

_DEADLINE_PASSED = "the call's deadline passed"


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
        successor: The model that replaced ``model``, if the caller knows one;
            a 404 names it.
        deadline: When the whole call must be over (``time.monotonic()``
            seconds), or ``None``; no wait of this request goes past it.
    """

    url: str
    headers: Mapping[str, str]
    body: bytes
    model: str
    timeout: Any
    successor: str | None = None
    deadline: float | None = None


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Encode a payload compactly; non-ASCII stays UTF-8 (W&B accepts it).

    Raises:
        WandbInvalidRequestError: A string holds a lone surrogate, which UTF-8
            cannot encode; the error names the message and field.
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Its .object would be the whole body; the typed error says where.
        raise unencodable_text_error(payload) from None


# Failures to talk to W&B at all, from httpx (a user's client) or httpcore.
_NETWORK_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
_TIMEOUTS = (httpx.TimeoutException, httpcore.TimeoutException)


# Timers may fire this much before the instant they were set for (uvloop
# rounds to milliseconds), so a timeout this close to the deadline is its.
_DEADLINE_SLACK = 0.01


def _past_deadline(req: Request) -> bool:
    return req.deadline is not None and (
        time.monotonic() >= req.deadline - _DEADLINE_SLACK
    )


def _deadline_error(req: Request, cause: str) -> WandbTimeoutError:
    return WandbTimeoutError(
        f"The call's deadline passed before W&B finished answering '{req.model}' "
        f"({cause}). Raise deadline= (ChatWandb's, or the router's) to give the "
        "whole call more time.",
        model=req.model,
    )


def _check_deadline(req: Request) -> None:
    """Refuse to start an attempt once the call's deadline has passed."""
    if req.deadline is not None and time.monotonic() >= req.deadline:
        raise _deadline_error(req, "no time left to send the request")


def _transport_error(exc: Exception, req: Request) -> WandbError:
    if isinstance(exc, _TIMEOUTS) and _past_deadline(req):
        return _deadline_error(req, type(exc).__name__)
    if isinstance(exc, _TIMEOUTS):
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
    choices = data.get("choices")
    if not (isinstance(choices, list) and choices and _choices_ok(choices)):
        if data.get("error"):
            raise error_from_payload(data, req.model, successor=req.successor)
        # A 200 without an answer is W&B's fault, not the request's: the error
        # carries no status so RetryPolicy treats it as a retryable API error.
        raise WandbAPIError(
            f"W&B answered '{req.model}' with status 200 but no usable choices "
            f"(choices: {_short(choices)}); treated as a server fault.",
            model=req.model,
        )
    return data


def _choices_ok(choices: list[Any]) -> bool:
    return all(
        isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        for choice in choices
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ----------------------------------------------------------------- wire: httpcore
# Our pooled default is a bare httpcore pool, so the request is built here:
# Host and Content-Length (httpx would add them), identity encoding (nothing to
# decompress), per-request timeouts as httpcore's extension. Redirects are
# never followed: httpcore has no such feature, and a 3xx is a typed error.

_urls: dict[str, tuple[httpcore.URL, bytes]] = {}
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_SKIPPED_HEADERS = frozenset({"host", "content-length", "accept-encoding"})


def _core_url(url: str) -> tuple[httpcore.URL, bytes]:
    """The parsed URL and its ``Host`` header value, parsed once per URL."""
    known = _urls.get(url)
    if known is None:
        parsed = httpcore.URL(url)
        host = parsed.host
        if parsed.port is not None and parsed.port != _DEFAULT_PORTS.get(parsed.scheme):
            host = b"%b:%d" % (host, parsed.port)
        known = _urls[url] = (parsed, host)
    return known


def _core_timeouts(req: Request) -> dict[str, float | None]:
    timeout = req.timeout
    if not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout)
    timeouts = {
        "connect": timeout.connect,
        "read": timeout.read,
        "write": timeout.write,
        "pool": timeout.pool,
    }
    if req.deadline is not None:
        left = max(req.deadline - time.monotonic(), 0.0)
        for phase, seconds in timeouts.items():
            if seconds is None or seconds > left:
                timeouts[phase] = left
    return timeouts


def _httpx_timeout(req: Request) -> Any:
    """The timeout for a user's httpx client: ``req.timeout``, clamped."""
    if req.deadline is None:
        return req.timeout
    return httpx.Timeout(**_core_timeouts(req))


def _core_request(req: Request) -> httpcore.Request:
    url, host = _core_url(req.url)
    headers = [(b"Host", host)]
    headers += [
        (k.encode("ascii"), v.encode("ascii"))
        for k, v in req.headers.items()
        if k.lower() not in _SKIPPED_HEADERS
    ]
    headers += [
        (b"Accept-Encoding", b"identity"),
        (b"Content-Length", b"%d" % len(req.body)),
    ]
    return httpcore.Request(
        b"POST",
        url,
        headers=headers,
        content=req.body,
        extensions={"timeout": _core_timeouts(req)},
    )


def _core_headers(resp: httpcore.Response, req: Request) -> dict[str, str]:
    """Lower-cased headers; refuses a body encoded despite ``identity``."""
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers
    }
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise WandbAPIError(
            f"W&B answered '{req.model}' with Content-Encoding '{encoding}' "
            "though none was accepted.",
            status_code=resp.status,
            model=req.model,
        )
    return headers


# ------------------------------------------------------------------ JSON requests


def post_json(client: SyncHTTP, req: Request) -> dict[str, Any]:
    """Send ``req`` once and return the decoded body, or raise a typed error."""
    headers: Mapping[str, str]
    _check_deadline(req)
    try:
        if isinstance(client, httpcore.ConnectionPool):
            with _deadline.bounded(req.deadline):
                resp = client.handle_request(_core_request(req))
                try:
                    content = resp.read()
                finally:
                    resp.close()
            status, headers = resp.status, _core_headers(resp, req)
        elif req.deadline is not None:
            # httpx reads a whole body under one read timeout per read: read it
            # piece by piece instead, so the deadline is checked in between.
            with _open_stream(client, req) as (status, headers, pieces):
                content = b"".join(pieces)
        else:
            reply = client.post(
                req.url, content=req.body, headers=req.headers, timeout=req.timeout
            )
            status, headers, content = reply.status_code, reply.headers, reply.content
    except _NETWORK_ERRORS as exc:
        raise _transport_error(exc, req) from None
    if status >= 300:
        raise error_from_status(
            status, content, headers, req.model, successor=req.successor
        )
    return _decode_json(content, req)


async def apost_json(client: AsyncHTTP, req: Request) -> dict[str, Any]:
    """Async :func:`post_json`."""
    headers: Mapping[str, str]
    _check_deadline(req)
    try:
        if isinstance(client, httpcore.AsyncConnectionPool):
            with _deadline.bounded(req.deadline):
                resp = await client.handle_async_request(_core_request(req))
                try:
                    content = await resp.aread()
                finally:
                    await resp.aclose()
            status, headers = resp.status, _core_headers(resp, req)
        elif req.deadline is not None:
            # Piece by piece, as in post_json.
            async with _aopen_stream(client, req) as (status, headers, pieces):
                content = b"".join([piece async for piece in pieces])
        else:
            reply = await client.post(
                req.url, content=req.body, headers=req.headers, timeout=req.timeout
            )
            status, headers, content = reply.status_code, reply.headers, reply.content
    except _NETWORK_ERRORS as exc:
        raise _transport_error(exc, req) from None
    if status >= 300:
        raise error_from_status(
            status, content, headers, req.model, successor=req.successor
        )
    return _decode_json(content, req)


# ------------------------------------------------------------------ open streams

_Opened: TypeAlias = "tuple[int, Mapping[str, str], Iterator[bytes]]"
_AOpened: TypeAlias = "tuple[int, Mapping[str, str], AsyncIterator[bytes]]"


# The callers of these are generators, which run in their consumer's context:
# the deadline is put in force around each blocking step only, never across a
# yield, where it would leak into the consumer's own work.


@contextmanager
def _open_stream(client: SyncHTTP, req: Request) -> Iterator[_Opened]:
    """Status, headers and body pieces of a streamed response; closed on exit."""
    if isinstance(client, httpcore.ConnectionPool):
        with _deadline.bounded(req.deadline):
            resp = client.handle_request(_core_request(req))
        try:
            pieces = _pieces_until(resp.iter_stream(), req.deadline)
            yield resp.status, _core_headers(resp, req), pieces
        finally:
            resp.close()
    else:
        with client.stream(
            "POST",
            req.url,
            content=req.body,
            headers=req.headers,
            timeout=_httpx_timeout(req),
        ) as reply:
            pieces = _pieces_until(reply.iter_bytes(), req.deadline)
            yield reply.status_code, reply.headers, pieces


@asynccontextmanager
async def _aopen_stream(client: AsyncHTTP, req: Request) -> AsyncIterator[_AOpened]:
    """Async :func:`_open_stream`."""
    if isinstance(client, httpcore.AsyncConnectionPool):
        with _deadline.bounded(req.deadline):
            resp = await client.handle_async_request(_core_request(req))
        pieces = _apieces_until(resp.aiter_stream(), req.deadline)
        try:
            yield resp.status, _core_headers(resp, req), pieces
        finally:
            await _aclose(pieces)
            await resp.aclose()
    else:
        async with client.stream(
            "POST",
            req.url,
            content=req.body,
            headers=req.headers,
            timeout=_httpx_timeout(req),
        ) as reply:
            pieces = _apieces_until(reply.aiter_bytes(), req.deadline)
            try:
                yield reply.status_code, reply.headers, pieces
            finally:
                await _aclose(pieces)


def _pieces_until(pieces: Iterator[bytes], deadline: float | None) -> Iterator[bytes]:
    """``pieces``, each read with ``deadline`` in force, none after it."""
    if deadline is None:
        return pieces
    return _bounded_pieces(pieces, deadline)


def _bounded_pieces(pieces: Iterator[bytes], deadline: float) -> Iterator[bytes]:
    while True:
        with _deadline.bounded(deadline):
            piece = next(pieces, None)
        if piece is None:
            return
        if time.monotonic() >= deadline:
            raise httpcore.ReadTimeout(_DEADLINE_PASSED)
        yield piece


def _apieces_until(
    pieces: AsyncIterator[bytes], deadline: float | None
) -> AsyncIterator[bytes]:
    """Async :func:`_pieces_until`."""
    if deadline is None:
        return pieces
    return _abounded_pieces(pieces, deadline)


async def _abounded_pieces(
    pieces: AsyncIterator[bytes], deadline: float
) -> AsyncIterator[bytes]:
    try:
        while True:
            with _deadline.bounded(deadline):
                piece = await anext(pieces, None)
            if piece is None:
                return
            if time.monotonic() >= deadline:
                raise httpcore.ReadTimeout(_DEADLINE_PASSED)
            yield piece
    finally:
        await _aclose(pieces)


async def _aclose(pieces: AsyncIterator[bytes]) -> None:
    """Close a body's async generator in the task that read it.

    Left suspended, it would be closed later by a task the event loop starts
    when the generator is collected.
    """
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()


# ------------------------------------------------------------------------ streams


def _interrupted(req: Request, exc: BaseException) -> StreamInterruptedError:
    hint = ""
    if isinstance(exc, _TIMEOUTS) and _past_deadline(req):
        hint = "the call's deadline passed; raise deadline= to allow more"
    return stream_interrupted(exc, req.model, hint=hint)


def stream_events(client: SyncHTTP, req: Request) -> Iterator[dict[str, Any]]:
    """Send ``req`` once and yield its SSE events.

    A failure before the first event raises the typed error (the caller may
    retry); after it, :class:`StreamInterruptedError`, which is never retried.
    Events decoded before a bad one are yielded first.
    """
    _check_deadline(req)
    yielded = False
    try:
        with _open_stream(client, req) as (status, headers, pieces):
            if status >= 300:
                raise error_from_status(
                    status,
                    b"".join(pieces),
                    headers,
                    req.model,
                    successor=req.successor,
                )
            decoder = SSEDecoder(req.model, successor=req.successor)
            for piece in pieces:
                # After [DONE], keep reading to the end of the body: a response
                # left unread closes its connection instead of returning it to
                # the pool.
                if decoder.done:
                    continue
                for event in decoder.feed(piece):
                    yielded = True
                    yield event
                if decoder.failure is not None:
                    raise decoder.failure
            _check_end(decoder, yielded, req)
    except WandbError as exc:
        if yielded:
            raise _interrupted(req, exc) from exc
        raise
    except _NETWORK_ERRORS as exc:
        if yielded:
            raise _interrupted(req, exc) from exc
        raise _transport_error(exc, req) from None


async def astream_events(
    client: AsyncHTTP, req: Request
) -> AsyncIterator[dict[str, Any]]:
    """Async :func:`stream_events`."""
    _check_deadline(req)
    yielded = False
    try:
        async with _aopen_stream(client, req) as (status, headers, pieces):
            if status >= 300:
                body = b"".join([piece async for piece in pieces])
                raise error_from_status(
                    status, body, headers, req.model, successor=req.successor
                )
            decoder = SSEDecoder(req.model, successor=req.successor)
            async for piece in pieces:
                if decoder.done:
                    continue  # drain to the end; see stream_events
                for event in decoder.feed(piece):
                    yielded = True
                    yield event
                if decoder.failure is not None:
                    raise decoder.failure
            _check_end(decoder, yielded, req)
    except WandbError as exc:
        if yielded:
            raise _interrupted(req, exc) from exc
        raise
    except _NETWORK_ERRORS as exc:
        if yielded:
            raise _interrupted(req, exc) from exc
        raise _transport_error(exc, req) from None


def _check_end(decoder: SSEDecoder, yielded: bool, req: Request) -> None:
    """A body that ended early: nothing at all, or no [DONE] and no finish."""
    if not decoder.done and not yielded:
        raise WandbConnectionError(
            f"The stream from '{req.model}' ended before any data.", model=req.model
        )
    if not (decoder.done or decoder.finished):
        raise httpx.RemoteProtocolError("stream ended without [DONE]")
