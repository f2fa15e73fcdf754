"""HTTP transport for W&B Inference: requests, wire errors, sending once.

The openai SDK is deliberately not on this path, and by default neither is
httpx's Client: the pooled connections are httpcore pools driven directly (a
user's own ``http_client`` is an ``httpx.Client`` and works the same way); the
pools themselves live in :mod:`langchain_wandb_router.transport._pools`. Requests are
built from the payload dict LangChain already made, responses are parsed with
``json.loads`` and handed to the parent class's dict converters. Streams are
split into SSE events by :class:`~langchain_wandb_router.transport._sse.SSEDecoder`.
Each function sends once, written once as steps run by a blocking and an
awaiting interpreter (see "steps" below): retrying is the caller's decision, made by
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
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
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
)
from langchain_wandb_router.transport import _deadline
from langchain_wandb_router.transport._core import answer, core_request, httpx_request
from langchain_wandb_router.transport._pools import DEADLINE_PASSED, AsyncHTTP, SyncHTTP
from langchain_wandb_router.transport._retry import aclose
from langchain_wandb_router.transport._sse import SSEDecoder
from langchain_wandb_router.transport._wire import (
    error_from_payload,
    error_from_status,
    unencodable_text_error,
)

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
        advice: More for a 404 to say (a close catalog id, a base URL to
            check).
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
    advice: str | None = None


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
            raise error_from_payload(
                data, req.model, successor=req.successor, advice=req.advice
            )
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


# ------------------------------------------------------------------------ steps
# What sending a request means is written once, as steps: a generator yields
# OPEN (send the request; its answer: status and headers), READ (the next body
# piece, or None at the end), REST (the rest of the body, when no deadline
# needs checking between pieces), a _Feed (a stream's body: the interpreter
# reads it to its end, feeding each piece to the feed and handing its events
# out, with no step between pieces) or a _Handout (dicts to hand out: the
# JSON body); it handles the errors thrown in at its yields. _drive and
# _adrive are its blocking and awaiting interpreters, the only places that do
# I/O.


class _Step(str):
    """A step the interpreters do (OPEN or READ)."""


OPEN = _Step("OPEN")
READ = _Step("READ")
REST = _Step("REST")  # the rest of the body at once (only without a deadline)


class _Handout(list[dict[str, Any]]):
    """Dicts to hand out, after which the steps go on."""


class _Feed:
    """A step: a stream's body, each piece fed to an SSE decoder.

    The interpreter reads to the body's end, handing out each piece's events
    as it goes, and stops once the decoder has a failure (the events before
    the bad one still go out; the steps then raise it). After ``[DONE]`` it
    keeps reading: a response left unread closes its connection instead of
    returning it to the pool. No piece is read past the call's deadline.
    """

    __slots__ = ("decoder", "feed")

    def __init__(self, decoder: SSEDecoder, req: Request) -> None:
        self.decoder = decoder
        # Without a deadline the decoder is fed directly: nothing of ours
        # runs between pieces.
        self.feed: Callable[[bytes], list[dict[str, Any]]] = (
            decoder.feed
            if req.deadline is None
            else functools.partial(_feed_on_time, decoder, req)
        )


def _feed_on_time(
    decoder: SSEDecoder, req: Request, piece: bytes
) -> list[dict[str, Any]]:
    """``piece`` fed to ``decoder``, unless the call's deadline has passed."""
    _on_time(req)
    return decoder.feed(piece)


_Steps: TypeAlias = Generator["_Step | _Feed | _Handout", Any, None]


def _rest(req: Request) -> Generator[_Step, bytes | None, bytes]:
    """Steps: read the body to its end, no piece after the call's deadline."""
    if req.deadline is None:
        body = yield REST  # nothing to check between pieces: all in one step
        assert body is not None
        return body
    pieces = []
    while (piece := (yield READ)) is not None:
        if req.deadline is not None:
            _on_time(req)
        pieces.append(piece)
    return b"".join(pieces)


def _on_time(req: Request) -> None:
    if req.deadline is not None and time.monotonic() >= req.deadline:
        raise httpcore.ReadTimeout(DEADLINE_PASSED)


def _json_steps(req: Request) -> _Steps:
    """Steps: send ``req``, hand out its decoded JSON body or raise a typed error."""
    _check_deadline(req)
    try:
        status, headers = yield OPEN
        content = yield from _rest(req)
    except _NETWORK_ERRORS as exc:
        raise _transport_error(exc, req) from None
    if status >= 300:
        raise error_from_status(
            status,
            content,
            headers,
            req.model,
            successor=req.successor,
            advice=req.advice,
        )
    yield _Handout([_decode_json(content, req)])


def _event_steps(req: Request) -> _Steps:
    """Steps: send ``req``, hand out its SSE events (see :func:`stream_events`)."""
    _check_deadline(req)
    decoder: SSEDecoder | None = None
    try:
        status, headers = yield OPEN
        if status >= 300:
            body = yield from _rest(req)
            raise error_from_status(
                status,
                body,
                headers,
                req.model,
                successor=req.successor,
                advice=req.advice,
            )
        decoder = SSEDecoder(req.model, successor=req.successor, advice=req.advice)
        yield _Feed(decoder, req)
        if decoder.failure is not None:
            raise decoder.failure
        _check_end(decoder, req)
    except WandbError as exc:
        if decoder is not None and decoder.decoded:
            raise _interrupted(req, exc) from exc
        raise
    except _NETWORK_ERRORS as exc:
        if decoder is not None and decoder.decoded:
            raise _interrupted(req, exc) from exc
        raise _transport_error(exc, req) from None


def _bound(req: Request) -> AbstractContextManager[Any]:
    """The call's deadline in force around one blocking step.

    Never around a yield: a generator runs in its consumer's context, where
    the deadline would leak.
    """
    return _NO_BOUND if req.deadline is None else _deadline.bounded(req.deadline)


_NO_BOUND = nullcontext()


# The interpreters are a deliberate pair: sync and async I/O cannot share a
# body (one blocks on each step, the other awaits it), so everything but the
# I/O is shared: the steps above decide, _core builds the requests and reads
# the answer, and each twin is only the loop that does the I/O.
def _drive(client: SyncHTTP, req: Request, steps: _Steps) -> Iterator[dict[str, Any]]:
    """Carry out ``steps`` with blocking I/O; yield the dicts they hand out."""
    resp: httpcore.Response | httpx.Response | None = None
    pieces: Iterator[bytes] | None = None
    reply: Any = None
    error: Exception | None = None
    bound = _bound(req)
    try:
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration:
                return
            reply = error = None
            if isinstance(step, _Handout):
                yield from step
                continue
            if isinstance(step, _Feed):
                assert pieces is not None  # fed after OPEN
                feed, decoder = step.feed, step.decoder
                while True:  # no step between pieces: the stream's hot loop
                    try:
                        if bound is _NO_BOUND:
                            piece = next(pieces, None)
                        else:
                            with bound:
                                piece = next(pieces, None)
                        events = None if piece is None else feed(piece)
                    except Exception as exc:  # the steps' to handle
                        error = exc
                        break
                    if events is None:
                        break
                    yield from events
                    if decoder.failure is not None:
                        break
                continue
            try:
                if pieces is None:  # the step is OPEN
                    with bound:
                        resp, pieces = _open(client, req)
                    reply = answer(resp, req)
                elif step is REST:
                    reply = b"".join(pieces)
                elif bound is _NO_BOUND:  # READ, nothing to bound it by
                    reply = next(pieces, None)
                else:
                    with bound:
                        reply = next(pieces, None)
            except Exception as exc:  # the steps' to handle (or let through)
                error = exc
    finally:
        steps.close()
        if resp is not None:
            resp.close()


async def _adrive(
    client: AsyncHTTP, req: Request, steps: _Steps
) -> AsyncIterator[dict[str, Any]]:
    """Async :func:`_drive`: awaits each step."""
    resp: httpcore.Response | httpx.Response | None = None
    pieces: AsyncIterator[bytes] | None = None
    drained = False  # the body was read to its end: nothing left to close
    reply: Any = None
    error: Exception | None = None
    bound = _bound(req)
    try:
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration:
                return
            reply = error = None
            if isinstance(step, _Handout):
                for item in step:
                    yield item
                continue
            if isinstance(step, _Feed):
                assert pieces is not None  # fed after OPEN
                feed, decoder = step.feed, step.decoder
                while True:  # no step between pieces: the stream's hot loop
                    try:
                        if bound is _NO_BOUND:
                            piece = await pieces.__anext__()
                        else:
                            with bound:
                                piece = await pieces.__anext__()
                        events = feed(piece)
                    except StopAsyncIteration:  # the body's end
                        drained = True
                        break
                    except Exception as exc:
                        error = exc
                        break
                    for item in events:
                        yield item
                    if decoder.failure is not None:
                        break
                continue
            try:
                if pieces is None:  # the step is OPEN
                    with bound:
                        resp, pieces = await _aopen(client, req)
                    reply = answer(resp, req)
                elif step is REST:
                    reply = b"".join([piece async for piece in pieces])
                    drained = True
                elif bound is _NO_BOUND:  # READ, nothing to bound it by
                    reply = await pieces.__anext__()
                else:
                    with bound:
                        reply = await pieces.__anext__()
            except StopAsyncIteration:  # the body's end (anext(...) wraps each call)
                reply = None
                drained = True
            except Exception as exc:
                error = exc
    finally:
        steps.close()
        if pieces is not None and not drained:
            # Closed in the task that read it: left suspended, it would be
            # closed later by a task the loop starts when it is collected.
            await aclose(pieces)
        if resp is not None:
            await resp.aclose()


def _open(
    client: SyncHTTP, req: Request
) -> tuple[httpcore.Response | httpx.Response, Iterator[bytes]]:
    """Send ``req`` (blocking); the response and its body's pieces."""
    if isinstance(client, httpcore.ConnectionPool):
        resp = client.handle_request(core_request(req))
        return resp, resp.iter_stream()
    sent = client.send(httpx_request(client, req), stream=True)
    return sent, sent.iter_bytes()


async def _aopen(
    client: AsyncHTTP, req: Request
) -> tuple[httpcore.Response | httpx.Response, AsyncIterator[bytes]]:
    """Async :func:`_open`."""
    if isinstance(client, httpcore.AsyncConnectionPool):
        resp = await client.handle_async_request(core_request(req))
        return resp, resp.aiter_stream()
    sent = await client.send(httpx_request(client, req), stream=True)
    return sent, sent.aiter_bytes()


# ------------------------------------------------------------------------ sending


def post_json(client: SyncHTTP, req: Request) -> dict[str, Any]:
    """Send ``req`` once and return the decoded body, or raise a typed error."""
    (data,) = _drive(client, req, _json_steps(req))
    return data


async def apost_json(client: AsyncHTTP, req: Request) -> dict[str, Any]:
    """Async :func:`post_json`."""
    # Read to the end, so the response is closed before this returns.
    async for data in _adrive(client, req, _json_steps(req)):  # noqa: B007 - the answer
        pass
    return data


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
    return _drive(client, req, _event_steps(req))


def astream_events(client: AsyncHTTP, req: Request) -> AsyncIterator[dict[str, Any]]:
    """Async :func:`stream_events`."""
    return _adrive(client, req, _event_steps(req))


def _check_end(decoder: SSEDecoder, req: Request) -> None:
    """A body that ended early: nothing at all, or no [DONE] and no finish."""
    if not decoder.done and not decoder.decoded:
        raise WandbConnectionError(
            f"The stream from '{req.model}' ended before any data.", model=req.model
        )
    if not (decoder.done or decoder.finished):
        raise httpx.RemoteProtocolError("stream ended without [DONE]")
