"""Making the redis-py clients of a state from a URL or from a given client.

A URL (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
``rediss+cluster://``) or a redis-py client's connection settings become two
makers: one for the sync client, one for an event loop's async client. The
clients built here have short socket timeouts, no client-side retries (an
outage is quick to see) and this package's name in ``CLIENT LIST``. Nothing
here connects; :class:`~langchain_wandb_router.state._clients.ScriptClients`
calls the makers on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis
import redis.asyncio
from redis.asyncio import BlockingConnectionPool as AsyncBlockingPool
from redis.asyncio.cluster import (
    ClusterNode as AsyncClusterNode,
    RedisCluster as AsyncRedisCluster,
)
from redis.asyncio.connection import (
    Connection as AsyncConnection,
    SSLConnection as AsyncSSLConnection,
    UnixDomainSocketConnection as AsyncUnixConnection,
)
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.retry import Retry

from langchain_wandb_router.state._urls import redact_url, url_secrets

__all__ = [
    "CLIENT_NAME",
    "CLUSTER_SCHEMES",
    "MAX_LOOP_CONNECTIONS",
    "AsyncClient",
    "Connector",
    "SyncClient",
    "cluster_url",
    "connector",
]

# How this package's connections show in Redis's CLIENT LIST.
CLIENT_NAME = "langchain-wandb-router"

SyncClient = redis.Redis | RedisCluster
AsyncClient = redis.asyncio.Redis | AsyncRedisCluster

# Schemes of a Redis Cluster URL: the rest is a redis:// or rediss:// URL of
# any one node (the client finds the others).
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# An event loop's async client may open this many connections (per node on a
# Cluster); callers beyond it wait for one, which is backpressure, not an
# outage.
MAX_LOOP_CONNECTIONS = 64

# Connection settings copied from a given client to the clients derived from
# it (the same name in both redis-py flavours).
_COPIED = (
    "host",
    "port",
    "db",
    "path",
    "username",
    "password",
    "credential_provider",
    "protocol",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
    "ssl_min_version",
    "ssl_ciphers",
)


def cluster_url(url: str) -> str | None:
    """The node URL inside a ``redis+cluster://`` URL; ``None`` for other URLs."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower()) if sep else None
    return f"{plain}://{rest}" if plain else None


@dataclass(frozen=True)
class _Settings:
    """How to reach Redis, taken from a client: copied settings and flavour.

    Attributes:
        cluster: A Redis Cluster (``nodes`` are its startup nodes).
        nodes: ``(host, port)`` of the Cluster's startup nodes.
        ssl: TLS connections.
        unix: A Unix socket (``path`` is in ``kwargs``).
        kwargs: The copied connection settings.
    """

    cluster: bool
    nodes: tuple[tuple[str, int], ...]
    ssl: bool
    unix: bool
    kwargs: dict[str, Any]


def _settings_of(client: object) -> _Settings:
    """The connection settings of a redis-py client (no I/O)."""
    if isinstance(client, RedisCluster | AsyncRedisCluster):
        manager = client.nodes_manager
        kwargs = dict(manager.connection_kwargs)
        nodes = tuple((n.host, int(n.port)) for n in manager.startup_nodes.values())
        conn = kwargs.get("connection_class")
        ssl = bool(kwargs.get("ssl")) or (
            conn is not None and issubclass(conn, SSLConnection | AsyncSSLConnection)
        )
        return _Settings(True, nodes, ssl, False, _copied(kwargs))
    assert isinstance(client, redis.Redis | redis.asyncio.Redis)
    pool = client.connection_pool
    conn = pool.connection_class
    return _Settings(
        cluster=False,
        nodes=(),
        ssl=issubclass(conn, SSLConnection | AsyncSSLConnection),
        unix=issubclass(conn, UnixDomainSocketConnection | AsyncUnixConnection),
        kwargs=_copied(pool.connection_kwargs),
    )


def _copied(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _COPIED if kwargs.get(k) is not None}


class _Options(NamedTuple):
    """The state's own client options: timeouts, name, no retries."""

    timeout: float
    connect_timeout: float

    def sync(self) -> dict[str, Any]:
        return {
            "retry": Retry(NoBackoff(), 0),
            "client_name": CLIENT_NAME,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.connect_timeout,
        }

    def aio(self) -> dict[str, Any]:
        return {**self.sync(), "retry": AsyncRetry(NoBackoff(), 0)}


def _sync_from(settings: _Settings, options: _Options) -> SyncClient:
    kw = settings.kwargs
    if settings.cluster:
        client_kw = {k: v for k, v in kw.items() if k not in ("host", "port")}
        # redis-py leaves ClusterNode untyped.
        nodes = [
            ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in settings.nodes
        ]
        return RedisCluster(
            startup_nodes=nodes, ssl=settings.ssl, **client_kw, **options.sync()
        )
    conn: type[Any] = Connection
    if settings.unix:
        conn = UnixDomainSocketConnection
    elif settings.ssl:
        conn = SSLConnection
    pool = redis.ConnectionPool(connection_class=conn, **kw, **options.sync())
    return redis.Redis.from_pool(pool)


def _async_from(settings: _Settings, options: _Options) -> AsyncClient:
    kw = settings.kwargs
    if settings.cluster:
        client_kw = {k: v for k, v in kw.items() if k not in ("host", "port")}
        nodes = [AsyncClusterNode(host, port) for host, port in settings.nodes]
        return AsyncRedisCluster(
            startup_nodes=nodes,
            ssl=settings.ssl,
            max_connections=MAX_LOOP_CONNECTIONS,
            **client_kw,
            **options.aio(),
        )
    conn: type[Any] = AsyncConnection
    if settings.unix:
        conn = AsyncUnixConnection
    elif settings.ssl:
        conn = AsyncSSLConnection
    pool = AsyncBlockingPool(
        connection_class=conn,
        max_connections=MAX_LOOP_CONNECTIONS,
        timeout=options.timeout,
        **kw,
        **options.aio(),
    )
    return redis.asyncio.Redis.from_pool(pool)


def _url_clients(
    url: str, options: _Options
) -> tuple[Callable[[], SyncClient], Callable[[], AsyncClient]]:
    scheme, _, rest = url.partition("://")
    url = f"{scheme.lower()}://{rest}"  # redis-py reads lower-case schemes only
    node_url = cluster_url(url)
    if node_url is not None:
        return (
            lambda: RedisCluster.from_url(node_url, **options.sync()),
            lambda: AsyncRedisCluster.from_url(
                node_url, max_connections=MAX_LOOP_CONNECTIONS, **options.aio()
            ),
        )

    def aio() -> AsyncClient:
        pool = AsyncBlockingPool.from_url(
            url,
            max_connections=MAX_LOOP_CONNECTIONS,
            timeout=options.timeout,
            **options.aio(),
        )
        return redis.asyncio.Redis.from_pool(pool)

    return lambda: redis.Redis.from_url(url, **options.sync()), aio


def _describe(client: object, settings: _Settings) -> str:
    kind = type(client).__name__
    kw = settings.kwargs
    if settings.unix:
        where = str(kw.get("path"))
    elif settings.cluster:
        where = ",".join(f"{h}:{p}" for h, p in settings.nodes)
    else:
        where = f"{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}"
    return f"{kind}({where})"


class Connector(NamedTuple):
    """How a state reaches Redis, before any connection is made.

    Attributes:
        url: What to show for the spec: the URL with any password masked, or
            the client's type and address.
        cluster: Whether the state lives on a Redis Cluster.
        secrets: Passwords to mask in anything shown.
        given: A sync client passed in (the caller's: used as is, never closed).
        new_sync: Makes the sync client (when none was given).
        new_async: Makes one event loop's async client.
    """

    url: str
    cluster: bool
    secrets: list[str]
    given: SyncClient | None
    new_sync: Callable[[], SyncClient]
    new_async: Callable[[], AsyncClient]


def connector(
    spec: str | object, *, timeout: float, connect_timeout: float
) -> Connector:
    """The :class:`Connector` of a URL or a redis-py client (no I/O)."""
    options = _Options(timeout, connect_timeout)
    if isinstance(spec, str):
        new_sync, new_async = _url_clients(spec, options)
        return Connector(
            redact_url(spec),
            cluster_url(spec) is not None,
            url_secrets(spec),
            None,
            new_sync,
            new_async,
        )
    settings = _settings_of(spec)
    password = settings.kwargs.get("password")
    return Connector(
        _describe(spec, settings),
        settings.cluster,
        [password] if isinstance(password, str) else [],
        spec if isinstance(spec, redis.Redis | RedisCluster) else None,
        functools.partial(_sync_from, settings, options),
        functools.partial(_async_from, settings, options),
    )
