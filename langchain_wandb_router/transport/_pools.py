"""Pooled HTTP clients for W&B Inference, and which event loop owns them.

The default clients are bare httpcore pools (one per base URL, shared by the
whole process for sync calls, one set per event loop for async calls) on
httpcore's own network backends (sockets for sync calls, anyio for async ones,
so every asyncio loop works, uvloop included), with a single shared TLS
context; a base URL a proxy variable may apply to gets an httpx client instead,
so httpx applies the proxy settings.

Those backends are wrapped so that no connect, write or read waits past the
deadline of the call in progress (:mod:`langchain_wandb_router.transport._deadline`):
each one's timeout is clamped to the time left, read afresh per operation, so a
server that trickles bytes cannot stretch a call beyond its deadline.

An event loop owns its async pools: they are closed from inside that loop when
it shuts down, and hang off the loop object itself, so a loop that is never
closed takes them along when it is garbage collected (the one per-loop
registry, :class:`~langchain_wandb_router.transport._loops.LoopShelf`).
"""

from __future__ import annotations

import atexit
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable
from typing import Any, TypeAlias

import httpcore
import httpx

from langchain_wandb_router.transport._deadline import CALL_DEADLINE
from langchain_wandb_router.transport._loops import LoopShelf

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
# (httpx's Client layers - auth, redirects, cookies, event hooks - cost time on
# every call and we use none of them); a user's own httpx client works as well.
SyncHTTP: TypeAlias = "httpx.Client | httpcore.ConnectionPool"
AsyncHTTP: TypeAlias = "httpx.AsyncClient | httpcore.AsyncConnectionPool"

# httpcore's own socket option type (not exported by name).
SocketOption: TypeAlias = (
    tuple[int, int, int]
    | tuple[int, int, bytes | bytearray]
    | tuple[int, int, None, int]
)
SocketOptions: TypeAlias = "Iterable[SocketOption] | None"

# ------------------------------------------------------------ the call's deadline

DEADLINE_PASSED = "the call's deadline passed"


def clamp(
    timeout: float | None, error: type[httpcore.TimeoutException]
) -> float | None:
    """``timeout`` cut to the time left before the call's deadline, if any.

    Args:
        timeout: The operation's own timeout in seconds (``None``: none).
        error: The timeout to raise when no time is left at all (a zero
            timeout would turn a blocking socket non-blocking instead).

    Returns:
        The smaller of ``timeout`` and the time left.

    Raises:
        httpcore.TimeoutException: The deadline has already passed.
    """
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error(DEADLINE_PASSED)
    return left if timeout is None or left < timeout else timeout


# Sync writes go out in slices, each with the time left then: httpcore's socket
# backend gives every send() of one write the whole timeout, so a peer reading
# slowly could otherwise hold a large body's write for several timeouts.
_WRITE_SLICE = 64 * 1024


# These two classes and their async twins below are a deliberate pair:
# httpcore's sync and async backends are two interfaces (a blocking call vs an
# await per method), and sync and async I/O cannot share a body. What they do
# is written once, in clamp(); each method only clamps and delegates.
class _BoundedStream(httpcore.NetworkStream):
    """A connection of httpcore's sync backend whose waits end by the deadline."""

    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if CALL_DEADLINE.get() is None or len(buffer) <= _WRITE_SLICE:
            self._stream.write(buffer, clamp(timeout, httpcore.WriteTimeout))
            return
        view = memoryview(buffer)
        for start in range(0, len(buffer), _WRITE_SLICE):
            piece = bytes(view[start : start + _WRITE_SLICE])
            self._stream.write(piece, clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._stream.start_tls(ssl_context, server_hostname, wait)
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, its connections bounded by the call's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(
            host, port, wait, local_address, socket_options
        )
        return _BoundedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_unix_socket(path, wait, socket_options)
        return _BoundedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


# The async twin of the two classes above (see there why the pair exists).
class _AsyncBoundedStream(httpcore.AsyncNetworkStream):
    """Async :class:`_BoundedStream`, over httpcore's anyio backend."""

    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = clamp(timeout, httpcore.ReadTimeout)
        return await self._stream.read(max_bytes, wait)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # One timeout covers the whole write on anyio: no slicing needed.
        await self._stream.write(buffer, clamp(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        stream = await self._stream.start_tls(ssl_context, server_hostname, wait)
        return _AsyncBoundedStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncBoundedBackend(httpcore.AsyncNetworkBackend):
    """Async :class:`_BoundedBackend`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_tcp(
            host, port, wait, local_address, socket_options
        )
        return _AsyncBoundedStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        wait = clamp(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_unix_socket(path, wait, socket_options)
        return _AsyncBoundedStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


# Stateless, so one of each serves every pool (and every event loop).
_SYNC_BACKEND = _BoundedBackend(httpcore.SyncBackend())
_ASYNC_BACKEND = _AsyncBoundedBackend(httpcore.AnyIOBackend())

# ------------------------------------------------------------------ TLS and proxies

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every pool, built like httpx builds its own.

    Building one loads the CA bundle, which is slow, so it is shared: by all
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


# -------------------------------------------------------------- pool construction


def _new_pool(base_url: str, *, sync: bool) -> Any:
    """A sync pool, or an async one for the running event loop.

    Only :func:`sync_client` and :func:`async_client` call this.
    """
    if _proxied(base_url):
        # Every request passes its own timeout, so the client default is unused.
        client = httpx.Client if sync else httpx.AsyncClient
        return client(limits=_LIMITS, timeout=None)
    pool = httpcore.ConnectionPool if sync else httpcore.AsyncConnectionPool
    backend: Any = _SYNC_BACKEND if sync else _ASYNC_BACKEND
    return pool(
        ssl_context=_shared_ssl_context(),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_CONNECTIONS,
        keepalive_expiry=_KEEPALIVE_EXPIRY,
        network_backend=backend,
    )


def _is_closed(client: SyncHTTP | AsyncHTTP) -> bool:
    # An httpcore pool has no closed state: closing only drops its connections.
    return isinstance(client, httpx.Client | httpx.AsyncClient) and client.is_closed


# ------------------------------------------------------------------- sync clients

_sync_lock = threading.Lock()
_sync_clients: dict[str, SyncHTTP] = {}


def close_sync_clients() -> None:
    """Close every pooled sync client (run at interpreter exit)."""
    with _sync_lock:
        clients = list(_sync_clients.values())
        _sync_clients.clear()
    for client in clients:
        client.close()


# Sockets left to the garbage collector at exit are closed with a warning.
atexit.register(close_sync_clients)


def sync_client(base_url: str) -> SyncHTTP:
    """Return the process-wide pooled client for ``base_url``."""
    client = _sync_clients.get(base_url)
    if client is None or _is_closed(client):
        with _sync_lock:
            client = _sync_clients.get(base_url)
            if client is None or _is_closed(client):
                client = _new_pool(base_url, sync=True)
                _sync_clients[base_url] = client
    return client


# -------------------------------------------------- async clients, per event loop


async def _aclose(client: AsyncHTTP) -> None:
    await client.aclose()


# Each event loop's pools, by base URL: closed from inside that loop when it
# shuts down, held by the loop itself (see LoopShelf).
_async_clients: LoopShelf[str, AsyncHTTP] = LoopShelf(
    "_langchain_wandb_router_clients", _aclose
)


def async_client(base_url: str) -> AsyncHTTP:
    """Return the pooled async client for ``base_url`` on the running loop.

    Each event loop gets its own clients, closed when the loop is shut down
    (``asyncio.run`` does this), so repeated ``asyncio.run`` calls do not leave
    sockets behind.
    """
    client = _async_clients.get(base_url)
    if client is None or _is_closed(client):
        client = _async_clients.add(base_url, _new_pool(base_url, sync=False))
    return client
