"""The Lua scripts behind ``RedisState``, and the clients they run on.

Every decision is one script, so it is atomic on the server and uses the
server's clock (``TIME``) for expiry and windows: processes on machines with
skewed clocks agree. Every key has a TTL. The keys one script touches share
the hash tag :func:`~langchain_wandb_router.state._interface.route_key` puts in them, so
the scripts also run on Redis Cluster.

:class:`ScriptClients` opens the connections and registers every script on
each: one sync client, and one async client per event loop (closed with it).
Short socket timeouts and no client-side retries keep an outage quick to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis
import redis.asyncio
from redis.asyncio import BlockingConnectionPool as AsyncBlockingPool
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.asyncio.connection import UnixDomainSocketConnection as AsyncUnixConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import AsyncScript, Script
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import MaxConnectionsError
from redis.retry import Retry

from langchain_wandb_router.state._interface import (
    HEALTH_BUCKETS,
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
)
from langchain_wandb_router.state._urls import redact_url, url_secrets

__all__ = [
    "CLIENT_NAME",
    "CLUSTER_SCHEMES",
    "MAX_LOOP_CONNECTIONS",
    "MEMBER_TTL_SECONDS",
    "Known",
    "ScriptCall",
    "ScriptClients",
    "acquire_call",
    "cluster_url",
    "cooling_call",
    "hash_tag",
    "in_flight_call",
    "limit_call",
    "pool_exhausted",
    "redact_url",
    "release_call",
    "renew_call",
    "report_call",
    "reserve_call",
    "settle_call",
    "spent_call",
]

# How this package's connections show in Redis's CLIENT LIST.
CLIENT_NAME = "langchain-wandb-router"

# Lua scripts. Times are the server's, in milliseconds; -1 stands for "none".
# Most scripts start with this: ``now`` read from the server's clock.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: lease zset (token -> expiry), limit hash. ARGV: token, hard limit,
# lease ttl, initial limit. Returns {taken, cap}.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[2])
local learned = tonumber(redis.call('HGET', KEYS[2], 'lim') or ARGV[4])
if learned >= 0 and (cap < 0 or learned < cap) then cap = learned end
if cap >= 0 and held >= cap then return {0, cap} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
return {1, cap}
"""
)

# KEYS: lease zset, limit hash (lim, cut = last decrease, ok = successes).
# ARGV: token, outcome, decrease interval, forget after, initial limit,
# successes per limit step, origin (announced with the release).
_RELEASE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[1])
-- Tell waiting processes a slot is free (ARGV[7]: who released it). pcall:
-- a user whose ACL allows no channels still releases; waiters then poll.
redis.pcall('PUBLISH', KEYS[1] .. ':free', ARGV[7])
local rec = redis.call('HMGET', KEYS[2], 'lim', 'cut')
local lim = tonumber(rec[1] or ARGV[5])
if ARGV[2] == 'limited' then
  -- Refused while the others were in flight: hold the limit there.
  if not rec[2] or now - tonumber(rec[2]) >= tonumber(ARGV[3]) then
    local base = redis.call('ZCARD', KEYS[1])
    if lim >= 0 and lim < base then base = lim end
    redis.call('HSET', KEYS[2], 'lim', math.max(1, base), 'cut', now, 'ok', 0)
  end
elseif ARGV[2] == 'ok' and lim >= 0 then
  local oks = redis.call('HINCRBY', KEYS[2], 'ok', 1)
  if oks >= lim * tonumber(ARGV[6]) then
    redis.call('HSET', KEYS[2], 'lim', lim + 1, 'ok', 0)
  elseif not rec[1] then
    redis.call('HSET', KEYS[2], 'lim', lim)
  end
else
  return 0
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
"""
)

# KEYS: lease zset. ARGV: token, lease ttl. Returns 1, or 0 if it expired.
_RENEW = (
    _NOW
    + """
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp or tonumber(exp) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
return 1
"""
)

# KEYS: lease zset. Returns how many leases have not expired.
_IN_FLIGHT = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
"""
)

# KEYS: limit hash. Returns the learned limit, or nil if none was learned.
_LIMIT = "return redis.call('HGET', KEYS[1], 'lim')"

# KEYS: health hash (s = failure streak, u = cooling until, and per bucket i:
# e<i> = its epoch, f<i> failures, t<i> calls). ARGV: failed, failures,
# failure ratio, window, buckets, cooldown.
_REPORT = (
    _NOW
    + """
local rec = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do rec[raw[i]] = tonumber(raw[i + 1]) end
local failed = ARGV[1] == '1'
if not failed and rec.u and now >= rec.u then
  redis.call('DEL', KEYS[1])
  return 0
end
local window, buckets = tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch = math.floor(now / (window / buckets))
local i = epoch % buckets
local e, f, t = 'e' .. i, 'f' .. i, 't' .. i
if rec[e] ~= epoch then rec[e], rec[f], rec[t] = epoch, 0, 0 end
rec[t] = rec[t] + 1
local streak = 0
if failed then
  rec[f] = rec[f] + 1
  streak = (rec.s or 0) + 1
end
redis.call('HSET', KEYS[1], e, epoch, f, rec[f], t, rec[t], 's', streak)
if failed then
  local fails, total = 0, 0
  for j = 0, buckets - 1 do
    if (rec['e' .. j] or -1) > epoch - buckets then
      fails = fails + rec['f' .. j]
      total = total + rec['t' .. j]
    end
  end
  local n = tonumber(ARGV[2])
  if streak >= n or (fails >= n and fails >= tonumber(ARGV[3]) * total) then
    rec.u = now + tonumber(ARGV[6])
    redis.call('HSET', KEYS[1], 'u', rec.u)
  end
end
local keep = window
if rec.u and rec.u - now > keep then keep = rec.u - now end
redis.call('PEXPIRE', KEYS[1], math.floor(keep) + 1000)
return 0
"""
)

# KEYS: health hashes. Returns the milliseconds of cooldown left for each.
_COOLING = (
    _NOW
    + """
local out = {}
for i, key in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', key, 'u') or '0')
  out[i] = math.max(0, u - now)
end
return out
"""
)

# Budget KEYS: spent counter, reservations zset (token -> expiry), amounts
# hash (token -> micro, '=' -> their total), generation hash (id, base),
# members zset (process id -> expiry). Expired reservations stop counting.
_PURGE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #gone > 0 then
  local freed = 0
  for _, id in ipairs(gone) do
    freed = freed + tonumber(redis.call('HGET', KEYS[3], id) or '0')
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if freed > 0 then redis.call('HINCRBY', KEYS[3], '=', -freed) end
end
"""

# Every budget script starts here. ARGV[1..6]: the generation this process
# last saw ('' none), the largest spend it saw, an id for a new generation,
# this process's member id, member ttl, spent ttl. Sets ``spent``,
# ``gen`` (id) and ``restored`` (micro-dollars put back), and counts the
# processes that used the scope within the member ttl in ``members``.
_GENERATION = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local gen = redis.call('HMGET', KEYS[4], 'id', 'base')
local known = tonumber(ARGV[2])
local restored = 0
if not gen[1] then
  -- A new scope, or Redis lost the record (restart, eviction): start from
  -- the most this process saw rather than from zero.
  local base = math.max(spent, known)
  restored = base - spent
  spent = base
  redis.call('SET', KEYS[1], spent, 'PX', ARGV[6])
  redis.call('HSET', KEYS[4], 'id', ARGV[3], 'base', base)
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  gen = {ARGV[3], base}
elseif gen[1] ~= ARGV[1] and known > tonumber(gen[2]) then
  -- Rebuilt from less than this process saw before the loss: add the rest.
  restored = known - tonumber(gen[2])
  spent = redis.call('INCRBY', KEYS[1], restored)
  redis.call('HSET', KEYS[4], 'base', known)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[5]), ARGV[4])
redis.call('PEXPIRE', KEYS[5], ARGV[5])
local members = redis.call('ZCARD', KEYS[5])
"""

# ARGV[7..10]: token, estimate, budget, reservation ttl.
# Returns {reserved, spent, outstanding, generation, restored, members}.
_RESERVE = (
    _NOW
    + _PURGE
    + _GENERATION
    + """
local outstanding = tonumber(redis.call('HGET', KEYS[3], '=') or '0')
local estimate = tonumber(ARGV[8])
if spent + outstanding + estimate > tonumber(ARGV[9]) then
  return {0, spent, outstanding, gen[1], restored, members}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[10]), ARGV[7])
redis.call('HSET', KEYS[3], ARGV[7], estimate)
redis.call('HINCRBY', KEYS[3], '=', estimate)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], tonumber(last[2]) + 1000)
redis.call('PEXPIREAT', KEYS[3], tonumber(last[2]) + 1000)
return {1, spent, outstanding + estimate, gen[1], restored, members}
"""
)

# ARGV[7..8]: token ('' to only add spend), actual cost.
# Returns {1, spent, outstanding, generation, restored, members}.
_SETTLE = (
    _NOW
    + _PURGE
    + _GENERATION
    + """
if ARGV[7] ~= '' then
  local estimate = tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '-1')
  if estimate >= 0 then
    redis.call('HDEL', KEYS[3], ARGV[7])
    redis.call('ZREM', KEYS[2], ARGV[7])
    if estimate > 0 then redis.call('HINCRBY', KEYS[3], '=', -estimate) end
  end
end
spent = redis.call('INCRBY', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
local outstanding = tonumber(redis.call('HGET', KEYS[3], '=') or '0')
return {1, spent, outstanding, gen[1], restored, members}
"""
)

# Returns {1, spent, outstanding, generation, restored, members}.
_SPENT = (
    _NOW
    + _PURGE
    + _GENERATION
    + """
local outstanding = tonumber(redis.call('HGET', KEYS[3], '=') or '0')
return {1, spent, outstanding, gen[1], restored, members}
"""
)

# The scripts by the name a ScriptCall gives.
_SCRIPTS = {
    "acquire": _ACQUIRE,
    "release": _RELEASE,
    "renew": _RENEW,
    "in_flight": _IN_FLIGHT,
    "limit": _LIMIT,
    "report": _REPORT,
    "cooling": _COOLING,
    "reserve": _RESERVE,
    "settle": _SETTLE,
    "spent": _SPENT,
}


# How each script is called: its KEYS and ARGV in the order the comments above
# give, built here so that order is kept in one place. Times go as whole
# milliseconds, and an absent limit as -1.
def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _opt(limit: int | None) -> int:
    return -1 if limit is None else limit


def _lease_keys(key: str) -> list[str]:
    return [f"{key}:lease", f"{key}:limit"]


def _budget_keys(scope: str) -> list[str]:
    return [f"{scope}:{part}" for part in ("spent", "res", "amt", "gen", "live")]


# A process counts as a member of a budget scope this long after its last
# budget call there (the outage share divides by the members).
MEMBER_TTL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Known:
    """What one process knows of a budget scope, sent with each budget script.

    Attributes:
        generation: The generation id it last saw (``""``: none yet).
        spent: The largest spend it saw (restored from after a loss).
        new_generation: The id to give a generation this call starts.
        member: This process's id among the scope's members.
    """

    generation: str
    spent: int
    new_generation: str
    member: str


def _known_args(known: Known, settings: BudgetSettings) -> list[Any]:
    return [
        known.generation,
        known.spent,
        known.new_generation,
        known.member,
        _ms(MEMBER_TTL_SECONDS),
        _ms(settings.spent_ttl_seconds),
    ]


class ScriptCall(NamedTuple):
    """One run of a script: its name, KEYS and ARGV."""

    script: str
    keys: list[str]
    args: list[Any]


def report_call(key: str, failed: bool, settings: HealthSettings) -> ScriptCall:
    """Record one outcome in route ``key``'s health."""
    h = settings
    args = [int(failed), h.failures, h.failure_ratio, _ms(h.window_seconds)]
    args += [HEALTH_BUCKETS, _ms(h.cooldown_seconds)]
    return ScriptCall("report", [f"{key}:health"], args)


def cooling_call(keys: list[str]) -> ScriptCall:
    """Read the cooldown left of route ``keys`` (all in one Cluster slot)."""
    return ScriptCall("cooling", [f"{k}:health" for k in keys], [])


def acquire_call(
    key: str, token: str, hard_limit: int | None, settings: ConcurrencySettings
) -> ScriptCall:
    """Take a slot of route ``key`` as lease ``token``, if one is free."""
    args = [token, _opt(hard_limit), _ms(settings.lease_ttl_seconds)]
    args.append(_opt(settings.initial_limit))
    return ScriptCall("acquire", _lease_keys(key), args)


def release_call(
    key: str,
    token: int | str,
    outcome: str,
    settings: ConcurrencySettings,
    origin: str = "",
) -> ScriptCall:
    """Give lease ``token`` of route ``key`` back, feeding ``outcome`` to AIMD.

    The release is announced on the key's channel with ``origin`` (the
    releasing state's id), so other processes' waiters wake.
    """
    c = settings
    args = [token, outcome, _ms(c.decrease_interval_seconds)]
    args += [_ms(c.forget_after_seconds), _opt(c.initial_limit), c.increase_after]
    args.append(origin)
    return ScriptCall("release", _lease_keys(key), args)


def renew_call(key: str, token: int | str, settings: ConcurrencySettings) -> ScriptCall:
    """Push back the expiry of lease ``token`` of route ``key``."""
    args = [token, _ms(settings.lease_ttl_seconds)]
    return ScriptCall("renew", [f"{key}:lease"], args)


def limit_call(key: str) -> ScriptCall:
    """Read route ``key``'s learned limit."""
    return ScriptCall("limit", [f"{key}:limit"], [])


def in_flight_call(key: str) -> ScriptCall:
    """Count route ``key``'s unexpired leases."""
    return ScriptCall("in_flight", [f"{key}:lease"], [])


def reserve_call(
    scope: str,
    token: str,
    estimate_micro: int,
    budget_micro: int,
    settings: BudgetSettings,
    known: Known,
) -> ScriptCall:
    """Set ``estimate_micro`` aside under ``scope`` as reservation ``token``."""
    args = [*_known_args(known, settings), token, estimate_micro, budget_micro]
    args.append(_ms(settings.reservation_ttl_seconds))
    return ScriptCall("reserve", _budget_keys(scope), args)


def settle_call(
    scope: str,
    token: int | str,
    actual_micro: int,
    settings: BudgetSettings,
    known: Known,
) -> ScriptCall:
    """Replace reservation ``token`` (``""``: none) by ``actual_micro`` spent."""
    args = [*_known_args(known, settings), token, actual_micro]
    return ScriptCall("settle", _budget_keys(scope), args)


def spent_call(scope: str, settings: BudgetSettings, known: Known) -> ScriptCall:
    """Read the micro-dollars settled (and still reserved) under ``scope``."""
    return ScriptCall("spent", _budget_keys(scope), _known_args(known, settings))


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes (the whole key if untagged)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


# ---------------------------------------------------------------- clients

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


def pool_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` says the client has no free connection (not an outage)."""
    if isinstance(exc, MaxConnectionsError):
        return True
    # BlockingConnectionPool's error once its wait for a connection ran out.
    return isinstance(exc, redis.ConnectionError) and isinstance(
        exc.__cause__, asyncio.TimeoutError | TimeoutError
    )


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


class _LoopClient:
    """The async client of one event loop, and what closes it with the loop.

    The loop itself holds this (see :func:`_loop_clients`), so a loop that is
    dropped without being closed takes its client and sockets with it.
    """

    __slots__ = ("__weakref__", "client", "closer", "live", "ready", "scripts", "setup")

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.scripts = {n: client.register_script(s) for n, s in _SCRIPTS.items()}
        self.closer: AsyncGenerator[None, None] | None = None
        self.live = True
        # A Cluster client learns the slots on first use; many first calls at
        # once each start that and close each other's connections, so the
        # first one does it alone.
        self.ready = not isinstance(client, AsyncRedisCluster)
        self.setup = asyncio.Lock()

    async def scripts_ready(self) -> dict[str, AsyncScript]:
        """The scripts, once the client knows its servers."""
        if not self.ready:
            async with self.setup:
                if not self.ready:
                    assert isinstance(self.client, AsyncRedisCluster)
                    await self.client.initialize()
                    self.ready = True
        return self.scripts


# The attribute under which an event loop holds its clients, one per
# ScriptClients (weakly keyed: a dropped state lets its entries go).
_LOOP_ATTR = "_langchain_wandb_router_redis"


def _loop_clients(
    loop: asyncio.AbstractEventLoop,
) -> weakref.WeakKeyDictionary[ScriptClients, _LoopClient]:
    # A client's sockets point at their loop, so a registry of ours holding
    # clients by loop would keep every loop alive. The loop holds them
    # instead: the two are garbage together.
    found = getattr(loop, _LOOP_ATTR, None)
    if found is None:
        found = weakref.WeakKeyDictionary()
        setattr(loop, _LOOP_ATTR, found)
    return cast("weakref.WeakKeyDictionary[ScriptClients, _LoopClient]", found)


async def _close_client(client: AsyncClient) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing left to free
        await client.aclose()


async def _close_with_loop(
    owner: weakref.ref[ScriptClients], entry: _LoopClient
) -> AsyncGenerator[None, None]:
    """Parked on its loop until ``shutdown_asyncgens`` closes it and the client."""
    try:
        yield
    finally:
        clients = owner()
        if clients is not None:
            clients.forget(entry)
        if entry.live:
            entry.live = False
            await _close_client(entry.client)


class ScriptClients:
    """Redis clients with every script registered, opened on first use.

    One sync client serves every thread; each event loop gets its own async
    client (asyncio connections belong to one loop), held by that loop and
    closed when it shuts down.

    Args:
        spec: A ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``
            or ``rediss+cluster://`` URL (it may hold a password: it is never
            shown), or a redis-py client: ``redis.Redis`` or
            ``redis.cluster.RedisCluster`` (used as is for sync calls; async
            clients are built from its connection settings), or
            ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            (its connection settings build one client per event loop and the
            sync client; the object itself is not used).
        timeout: Seconds to wait for a Redis answer (clients built here).
        connect_timeout: Seconds to wait for a connection (clients built here).

    Attributes:
        url: What to show for ``spec``: the URL with any password masked, or
            the client's type and address.
        cluster: Whether the state lives on a Redis Cluster.
    """

    def __init__(
        self, spec: str | object, *, timeout: float, connect_timeout: float
    ) -> None:
        options = _Options(timeout, connect_timeout)
        self._secrets: list[str] = []
        self._given: SyncClient | None = None
        if isinstance(spec, str):
            self.url = redact_url(spec)
            self.cluster = cluster_url(spec) is not None
            self._secrets = url_secrets(spec)
            self._new_sync, self._new_async = _url_clients(spec, options)
        else:
            settings = _settings_of(spec)
            self.url = _describe(spec, settings)
            self.cluster = settings.cluster
            password = settings.kwargs.get("password")
            self._secrets = [password] if isinstance(password, str) else []
            if isinstance(spec, redis.Redis | RedisCluster):
                self._given = spec
            self._new_sync = functools.partial(_sync_from, settings, options)
            self._new_async = functools.partial(_async_from, settings, options)
        self._lock = threading.Lock()
        self._client: SyncClient | None = None
        self._scripts: dict[str, Script] = {}
        # Loops this object made a client on (weakly): a loop closed without
        # shutting down never ran its closer; its client is let go.
        self._loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    def scrub(self, text: str) -> str:
        """``text`` (say, an error message) with the URL's passwords masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def run(self, call: ScriptCall) -> Any:
        """Make ``call`` on the sync client; the script's answer.

        Raises:
            redis.RedisError: Redis could not be reached or failed the call.
        """
        return self._sync_scripts()[call.script](keys=call.keys, args=call.args)

    async def arun(self, call: ScriptCall) -> Any:
        """Make ``call`` on the running event loop's client; the script's answer.

        Raises:
            redis.RedisError: Redis could not be reached or failed the call
                (:func:`pool_exhausted` tells a busy client apart).
        """
        scripts = await self._loop_entry().scripts_ready()
        return await scripts[call.script](keys=call.keys, args=call.args)

    async def apubsub(self) -> Any | None:
        """A pub/sub object on the running loop's client (``None``: none)."""
        entry = self._loop_entry()
        await entry.scripts_ready()
        make = getattr(entry.client, "pubsub", None)
        return None if make is None else make()

    def eviction_policies(self) -> list[str] | None:
        """Each server's ``maxmemory-policy``; ``None`` if ``CONFIG`` is refused.

        Raises:
            redis.ConnectionError: Redis could not be reached.
        """
        self._sync_scripts()
        client = self._client
        assert client is not None
        try:
            if isinstance(client, RedisCluster):
                found = client.config_get(
                    "maxmemory-policy", target_nodes=RedisCluster.PRIMARIES
                )
                return _policies(list(found.values()))
            return _policies([client.config_get("maxmemory-policy")])
        except (redis.ResponseError, redis.exceptions.RedisClusterException):
            return None  # managed services and proxies may refuse CONFIG

    async def aeviction_policies(self) -> list[str] | None:
        """Async :meth:`eviction_policies`, on the running loop's client."""
        entry = self._loop_entry()
        await entry.scripts_ready()
        client = entry.client
        try:
            if isinstance(client, AsyncRedisCluster):
                found = await client.config_get(
                    "maxmemory-policy", target_nodes=AsyncRedisCluster.PRIMARIES
                )
                return _policies(list(found.values()))
            return _policies([await client.config_get("maxmemory-policy")])
        except (redis.ResponseError, redis.exceptions.RedisClusterException):
            return None

    def _sync_scripts(self) -> dict[str, Script]:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = self._given or self._new_sync()
                    self._scripts = {
                        name: client.register_script(src)
                        for name, src in _SCRIPTS.items()
                    }
                    self._client = client
        return self._scripts

    def _loop_entry(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        held = _loop_clients(loop)
        entry = held.get(self)
        if entry is not None and entry.live:
            return entry
        entry = _LoopClient(self._new_async())
        with self._lock:
            for other in list(self._loops):
                if other.is_closed():
                    _abandon(_loop_clients(other).pop(self, None))
            self._loops.add(loop)
        held[self] = entry
        entry.closer = _close_with_loop(weakref.ref(self), entry)
        # Started here, the generator is one the loop closes on shutdown
        # (``shutdown_asyncgens``, as asyncio.run does): that closes the
        # client from inside its own, still running loop. One step parks it at
        # its yield without awaiting anything.
        _step(entry.closer.asend(None))
        return entry

    def forget(self, entry: _LoopClient) -> None:
        """Drop ``entry`` from the running loop (its closer is finishing)."""
        with contextlib.suppress(RuntimeError):
            held = _loop_clients(asyncio.get_running_loop())
            if held.get(self) is entry:
                del held[self]

    def close(self) -> None:
        """Close the sync client (async clients close with their loops).

        A client passed in is the caller's: it is left open.
        """
        with self._lock:
            client, self._client = self._client, None
        if client is not None and client is not self._given:
            client.close()
            if isinstance(client, redis.Redis):
                client.connection_pool.disconnect()

    async def aclose(self) -> None:
        """Close the running loop's client and the sync client."""
        entry = _loop_clients(asyncio.get_running_loop()).get(self)
        if entry is not None and entry.closer is not None:
            await entry.closer.aclose()
        self.close()


def _abandon(entry: _LoopClient | None) -> None:
    """Finish a closed loop's closer without running anything on that loop."""
    if entry is not None and entry.closer is not None:
        entry.live = False
        _step(entry.closer.aclose())


def _step(coro: Any) -> None:
    """Run ``coro`` to its first suspension, which must be its end or a yield."""
    with contextlib.suppress(StopIteration, StopAsyncIteration):
        coro.send(None)


def _policies(replies: list[Any]) -> list[str]:
    out = []
    for reply in replies:
        value = reply.get("maxmemory-policy") or reply.get(b"maxmemory-policy") or ""
        out.append(value.decode() if isinstance(value, bytes) else str(value))
    return out


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
