"""HTTP transport for W&B Inference: pooled connections, SSE, wire errors.

The openai SDK is deliberately not on this path, and by default neither is
httpx's Client: the pooled connections are httpcore pools driven directly (a
user's own ``http_client`` is an ``httpx.Client`` and works the same way).
Requests are built from the payload dict LangChain already made, responses are
parsed with ``json.loads`` and handed to the parent class's dict converters.
Streams are split into SSE events by hand on raw bytes, which is what keeps the
per-chunk client cost low. Each function sends once: retrying is the caller's
decision, made by :class:`~langchain_wandb_router._retry.RetryPolicy`. Which
status means which error lives in :mod:`langchain_wandb_router.errors`; this
module only reads the wire (the body's message and code, ``Retry-After``,
``Location``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import ssl
import threading
import time
import urllib.request
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Iterator,
    Mapping,
)
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
    error_for_status,
    status_for_code,
)

logger = logging.getLogger("langchain_wandb_router")

# Keep-alive equals the connection cap: a burst that opened N connections finds
# all N idle afterwards instead of reconnecting above a smaller keep-alive pool.
# (httpcore 1.0 closes an idle connection whenever the pool holds more than the
# keep-alive limit in total, busy ones included, so a lower limit also cut
# connections in the middle of a burst.)
_MAX_CONNECTIONS = 200
_KEEPALIVE_EXPIRY = 5.0  # httpx's default
_LIMITS = httpx.Limits(
    max_connections=_MAX_CONNECTIONS,
    max_keepalive_connections=_MAX_CONNECTIONS,
    keepalive_expiry=_KEEPALIVE_EXPIRY,
)

# What the transport functions accept: our pooled default is an httpcore pool
# (httpx's Client layers - auth, redirects, cookies, event hooks - cost ~0.3 ms
# a call and we use none of them); a user's own httpx client works as well.
SyncHTTP: TypeAlias = "httpx.Client | httpcore.ConnectionPool"
AsyncHTTP: TypeAlias = "httpx.AsyncClient | httpcore.AsyncConnectionPool"


# --------------------------------------------------------------------------- pools

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every pool, built like httpx builds its own.

    Building one loads the CA bundle (milliseconds), so it is shared: by all
    base URLs and by every event loop's pools.
    """
    global _ssl_context
    if _ssl_context is None:
        with _ssl_lock:
            if _ssl_context is None:
                _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def _proxied(base_url: str) -> bool:
    """Whether a proxy variable (``HTTPS_PROXY``...) may apply to ``base_url``.

    httpx honours those variables; the bare httpcore pool does not, so such a
    URL keeps an httpx client and httpx decides (``NO_PROXY`` included).
    """
    proxies = urllib.request.getproxies()
    scheme = base_url.split(":", 1)[0].lower()
    return bool(proxies.get(scheme) or proxies.get("all"))


def _new_sync_pool(base_url: str) -> SyncHTTP:
    if _proxied(base_url):
        # Every request passes its own timeout, so the client default is unused.
        return httpx.Client(limits=_LIMITS, timeout=None)  # noqa: S113
    return httpcore.ConnectionPool(
        ssl_context=_shared_ssl_context(),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_CONNECTIONS,
        keepalive_expiry=_KEEPALIVE_EXPIRY,
    )


def _new_async_pool(base_url: str) -> AsyncHTTP:
    if _proxied(base_url):
        return httpx.AsyncClient(limits=_LIMITS, timeout=None)  # noqa: S113
    return httpcore.AsyncConnectionPool(
        ssl_context=_shared_ssl_context(),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_CONNECTIONS,
        keepalive_expiry=_KEEPALIVE_EXPIRY,
    )


def _is_closed(client: SyncHTTP | AsyncHTTP) -> bool:
    # An httpcore pool has no closed state: closing only drops its connections.
    return isinstance(client, httpx.Client | httpx.AsyncClient) and client.is_closed


_sync_lock = threading.Lock()
_sync_clients: dict[str, SyncHTTP] = {}


def sync_client(base_url: str) -> SyncHTTP:
    """Return the process-wide pooled client for ``base_url``."""
    client = _sync_clients.get(base_url)
    if client is None or _is_closed(client):
        with _sync_lock:
            client = _sync_clients.get(base_url)
            if client is None or _is_closed(client):
                client = _new_sync_pool(base_url)
                _sync_clients[base_url] = client
    return client


class _LoopClients:
    """The async clients of one event loop, closed when that loop shuts down.

    An async pool holds sockets registered with the loop that opened them, so
    it may only be used and closed from that loop. ``asyncio.run``
    (like any loop runner) calls ``loop.shutdown_asyncgens()`` before closing
    the loop, which closes every async generator first iterated in it. The
    :func:`_close_on_shutdown` generator is started on the loop and parked at
    its ``yield``; that shutdown runs its ``finally``, which closes the clients
    from inside their own loop while it still runs. No task is left pending
    and nothing runs per request.
    """

    __slots__ = ("__weakref__", "clients", "closer", "live", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.clients: dict[str, AsyncHTTP] = {}
        self.loop = weakref.ref(loop)
        self.live = True
        self.closer = _close_on_shutdown(self)
        # asend() runs the running loop's "first iteration" hook, which
        # registers the generator with that loop; one step parks it at its
        # yield without awaiting anything.
        _step(self.closer.asend(None))

    def abandon(self) -> None:
        """Finish the closer without closing clients (their loop is gone).

        Left suspended, the generator's finalizer would ask the closed loop to
        close it and fail. The clients are dropped with this object; their
        sockets close when the garbage collector reclaims the transports, as
        nothing may run on a closed loop.
        """
        self.live = False
        _step(self.closer.aclose())


def _step(coro: Any) -> None:
    """Run ``coro`` to its first suspension, which must be its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    msg = "the pool closer awaited where it must not"  # pragma: no cover
    raise RuntimeError(msg)  # pragma: no cover


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _close_on_shutdown(pool: _LoopClients) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        # Only ever close the clients from their own, still running loop.
        own = pool.live and _running_loop() is pool.loop()
        pool.live = False
        if own:
            clients = list(pool.clients.values())
            pool.clients.clear()
            for client in clients:
                await client.aclose()


_async_lock = threading.Lock()
# Loop -> its clients. Weak keys: a collected loop takes its entry along; a
# closed loop still referenced (its clients' sockets point at it) is purged
# when the next new loop makes its first call.
_async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


def async_client(base_url: str) -> AsyncHTTP:
    """Return the pooled async client for ``base_url`` on the running loop.

    Each event loop gets its own clients, closed when the loop is shut down
    (``asyncio.run`` does this), so repeated ``asyncio.run`` calls do not leave
    sockets behind.
    """
    loop = asyncio.get_running_loop()
    pool = _async_pools.get(loop)
    if pool is None or not pool.live:
        pool = _new_loop_pool(loop)
    client = pool.clients.get(base_url)
    if client is None or _is_closed(client):
        client = _new_async_pool(base_url)
        pool.clients[base_url] = client
    return client


def _new_loop_pool(loop: asyncio.AbstractEventLoop) -> _LoopClients:
    with _async_lock:
        # Loops closed without shutdown_asyncgens() (a bare loop.close()) never
        # ran their closer; let their clients go now.
        for other, stale in list(_async_pools.items()):
            if other.is_closed():
                stale.abandon()
                del _async_pools[other]
        pool = _LoopClients(loop)
        _async_pools[loop] = pool
    return pool


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
    """

    url: str
    headers: Mapping[str, str]
    body: bytes
    model: str
    timeout: Any
    successor: str | None = None


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
    """The human message and string code of W&B's JSON bodies or an HTML page."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message, code = _detail_of(data)
    if message is not None:
        return message, code
    if text.lower().startswith(("<!doctype", "<html")) or "<html" in text[:200].lower():
        return "W&B answered with an HTML error page instead of JSON", code
    return text[:300] or "no body", code


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
        message or "error without a message",
        model=model,
        code=code,
        successor=successor,
    )


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


def _transport_error(exc: Exception, req: Request) -> WandbError:
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


def _core_timeouts(timeout: Any) -> dict[str, float | None]:
    if not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout)
    return {
        "connect": timeout.connect,
        "read": timeout.read,
        "write": timeout.write,
        "pool": timeout.pool,
    }


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
        extensions={"timeout": _core_timeouts(req.timeout)},
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
    try:
        if isinstance(client, httpcore.ConnectionPool):
            resp = client.handle_request(_core_request(req))
            try:
                content = resp.read()
            finally:
                resp.close()
            status, headers = resp.status, _core_headers(resp, req)
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
    try:
        if isinstance(client, httpcore.AsyncConnectionPool):
            resp = await client.handle_async_request(_core_request(req))
            try:
                content = await resp.aread()
            finally:
                await resp.aclose()
            status, headers = resp.status, _core_headers(resp, req)
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


@contextmanager
def _open_stream(client: SyncHTTP, req: Request) -> Iterator[_Opened]:
    """Status, headers and body pieces of a streamed response; closed on exit."""
    if isinstance(client, httpcore.ConnectionPool):
        resp = client.handle_request(_core_request(req))
        try:
            yield resp.status, _core_headers(resp, req), resp.iter_stream()
        finally:
            resp.close()
    else:
        with client.stream(
            "POST", req.url, content=req.body, headers=req.headers, timeout=req.timeout
        ) as reply:
            yield reply.status_code, reply.headers, reply.iter_bytes()


@asynccontextmanager
async def _aopen_stream(client: AsyncHTTP, req: Request) -> AsyncIterator[_AOpened]:
    """Async :func:`_open_stream`."""
    if isinstance(client, httpcore.AsyncConnectionPool):
        resp = await client.handle_async_request(_core_request(req))
        try:
            yield resp.status, _core_headers(resp, req), resp.aiter_stream()
        finally:
            await resp.aclose()
    else:
        async with client.stream(
            "POST", req.url, content=req.body, headers=req.headers, timeout=req.timeout
        ) as reply:
            yield reply.status_code, reply.headers, reply.aiter_bytes()


# ------------------------------------------------------------------------- SSE

_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    r"""Turns raw byte pieces into decoded JSON events, per the SSE spec.

    Lines end in CRLF, LF or a lone CR (a CR ending one piece and an LF
    starting the next are one line ending). ``data:`` loses one leading space;
    several ``data:`` lines of one event are joined with ``"\n"``; the event
    is dispatched at the blank line; comments and other fields are ignored.
    An event left without its blank line when the body ends is dropped.

    The common W&B piece, ``data: {...}\n\n`` with LF endings and nothing
    carried over, takes a fast path: one ``split`` and one ``json.loads``.

    A bad event stops decoding: :meth:`feed` returns the events decoded before
    it and sets :attr:`failure`, so the caller can hand those on first.

    Attributes:
        done: ``[DONE]`` arrived; later pieces need not be fed.
        finished: A ``finish_reason`` or the usage chunk arrived, so the answer
            is complete even if a proxy swallows the closing ``[DONE]``.
        failure: The typed error for a malformed or error event, once seen.
    """

    __slots__ = (
        "_clean",
        "_cr",
        "_data",
        "_started",
        "_tail",
        "done",
        "failure",
        "finished",
        "model",
        "successor",
    )

    def __init__(self, model: str, *, successor: str | None = None) -> None:
        self._tail = b""
        self._cr = False
        self._started = False
        # True when nothing is carried over: no partial line, no trailing CR,
        # byte-order mark already checked. Only then is the fast path exact.
        self._clean = False
        self._data: bytes | None = None
        self.done = False
        self.finished = False
        self.failure: WandbError | None = None
        self.model = model
        self.successor = successor

    def feed(self, piece: bytes) -> list[dict[str, Any]]:
        """Decode ``piece``; return the complete events it finished."""
        if self.failure is not None:
            raise self.failure
        if self._clean and piece[-2:] == b"\n\n" and piece[:6] == b"data: ":
            # The common W&B piece: exactly one single-line event, nothing
            # pending. (Ints: ``in`` with an int is a plain memchr.)
            text = piece[6:-2]
            if self._data is None and 10 not in text and 13 not in text:
                event = self._decode(text)
                return [] if event is None else [event]
        if self._clean and b"\r" not in piece:
            lines = piece.split(b"\n")
            tail = lines.pop()
            if tail:
                self._tail = tail
                self._clean = False
        else:
            lines = self._split(piece)
        events: list[dict[str, Any]] = []
        data = self._data
        for line in lines:
            if line:
                if line[:6] == b"data: ":
                    value = line[6:]
                elif line[:5] == b"data:":
                    value = line[5:]
                elif line == b"data":
                    value = b""
                else:
                    continue  # a comment (":...") or another field
                data = value if data is None else data + b"\n" + value
                continue
            if data is None:
                continue  # a blank line with no data before it
            event = self._decode(data)
            data = None
            if event is not None:
                events.append(event)
            elif self.done or self.failure is not None:
                break
        self._data = data
        return events

    def _decode(self, text: bytes) -> dict[str, Any] | None:
        """One dispatched event's data: the event, or ``None`` (skip/end/fail)."""
        if text[:1] != b"{":
            stripped = text.strip()
            if stripped == b"[DONE]":
                self.done = True
                return None
            if not stripped:
                return None
        try:
            # str, not bytes: json.loads would sniff the encoding per event.
            event = json.loads(text.decode())
        except ValueError:
            self.failure = self._malformed(text)
            return None
        if not isinstance(event, dict):
            return None
        choices = event.get("choices")
        if choices:
            try:
                if choices[0].get("finish_reason"):
                    self.finished = True
            except (LookupError, TypeError, AttributeError):
                # Not a list of objects (try costs nothing when nothing fails).
                self.failure = self._malformed(text)
                return None
        elif event.get("error"):
            self.failure = error_from_payload(
                event, self.model, successor=self.successor
            )
            return None
        elif event.get("usage"):
            self.finished = True
        return event

    def _split(self, piece: bytes) -> list[bytes]:
        """Split into complete lines, carrying state across pieces (slow path)."""
        buf = self._tail + piece if self._tail else piece
        if self._cr:
            if not buf:
                return []
            self._cr = False
            if buf[:1] == b"\n":
                buf = buf[1:]  # the LF half of a CRLF split across pieces
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._tail = buf  # maybe a byte-order mark cut short
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[len(_BOM) :]
        if b"\r" in buf:
            self._cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        self._clean = not self._tail and not self._cr
        return lines

    def _malformed(self, text: bytes) -> WandbAPIError:
        return WandbAPIError(
            f"W&B sent a malformed stream line for '{self.model}': "
            f"{text[:80].decode('utf-8', 'replace')!r}",
            model=self.model,
        )


def _interrupted(req: Request, exc: BaseException) -> StreamInterruptedError:
    # Our own errors' messages are safe to repeat; httpx's may name the URL.
    cause = (
        f"{type(exc).__name__}: {exc}"
        if isinstance(exc, WandbError)
        else (type(exc).__name__)
    )
    return StreamInterruptedError(
        f"The stream from '{req.model}' broke after output had been yielded "
        f"({cause}). Not retried, so the partial answer is not spliced with "
        "another attempt's output.",
        model=req.model,
    )


def stream_events(client: SyncHTTP, req: Request) -> Iterator[dict[str, Any]]:
    """Send ``req`` once and yield its SSE events.

    A failure before the first event raises the typed error (the caller may
    retry); after it, :class:`StreamInterruptedError`, which is never retried.
    Events decoded before a bad one are yielded first.
    """
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
