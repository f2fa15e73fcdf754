"""Pooled HTTP clients for W&B Inference, and which event loop owns them.

The default clients are bare httpcore pools (one per base URL, shared by the
whole process for sync calls, one set per event loop for async calls, those on
the asyncio network backend of :mod:`langchain_wandb_router._aio_net`) with a
single shared TLS context; a base URL a proxy variable may apply to gets an
httpx client instead, so httpx applies the proxy settings. An event loop's
async pools are closed from inside that loop when it shuts down.
"""

from __future__ import annotations

import asyncio
import atexit
import ssl
import threading
import urllib.request
import weakref
from collections.abc import AsyncGenerator
from typing import Any, TypeAlias

import httpcore
import httpx

from langchain_wandb_router._aio_net import AsyncioBackend

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

# ------------------------------------------------------------------ TLS and proxies

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


# -------------------------------------------------------------- pool construction


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


# Stateless, so one instance serves every loop's pools.
_ASYNCIO_BACKEND = AsyncioBackend()


def _new_async_pool(base_url: str) -> AsyncHTTP:
    """A pool for the running asyncio loop (only :func:`async_client` calls this).

    Its connections are asyncio transports driven directly: httpcore's default
    backend would go through anyio, whose cancel scope and extra loop turn per
    read and write cost ~20% of an ``ainvoke``'s CPU. :func:`async_client` has
    found a running asyncio loop (uvloop included) before calling this, so the
    backend always has one; under trio, nothing here is reached.
    """
    if _proxied(base_url):
        return httpx.AsyncClient(limits=_LIMITS, timeout=None)  # noqa: S113
    return httpcore.AsyncConnectionPool(
        ssl_context=_shared_ssl_context(),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_CONNECTIONS,
        keepalive_expiry=_KEEPALIVE_EXPIRY,
        network_backend=_ASYNCIO_BACKEND,
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
                client = _new_sync_pool(base_url)
                _sync_clients[base_url] = client
    return client


# -------------------------------------------------- async clients, per event loop


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
