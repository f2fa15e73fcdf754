"""The Lua scripts behind ``RedisState``, and the clients they run on.

Every decision is one script, so it is atomic on the server and uses the
server's clock (``TIME``) for expiry and windows: processes on machines with
skewed clocks agree. Every key has a TTL. The keys one script touches share
the hash tag :func:`~langchain_wandb_router._state.route_key` puts in them, so
the scripts also run on Redis Cluster.

:class:`ScriptClients` opens the connections and registers every script on
each: one sync client, and one async client per event loop (closed with it).
Short socket timeouts and no client-side retries keep an outage quick to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry

from langchain_wandb_router._state import (
    HEALTH_BUCKETS,
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
)

__all__ = [
    "CLIENT_NAME",
    "ScriptCall",
    "ScriptClients",
    "acquire_call",
    "cooling_call",
    "hash_tag",
    "in_flight_call",
    "limit_call",
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
# successes per limit step.
_RELEASE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[1])
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
# hash (token -> micro, '=' -> their total). Expired reservations stop counting.
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

# ARGV: token, estimate, budget, reservation ttl. Returns {reserved, spent}.
_RESERVE = (
    _NOW
    + _PURGE
    + """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local outstanding = tonumber(redis.call('HGET', KEYS[3], '=') or '0')
local estimate = tonumber(ARGV[2])
if spent + outstanding + estimate > tonumber(ARGV[3]) then return {0, spent} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], estimate)
redis.call('HINCRBY', KEYS[3], '=', estimate)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], tonumber(last[2]) + 1000)
redis.call('PEXPIREAT', KEYS[3], tonumber(last[2]) + 1000)
return {1, spent}
"""
)

# ARGV: token ('' to only add spend), actual cost, spent ttl. Returns spent.
_SETTLE = (
    _NOW
    + _PURGE
    + """
if ARGV[1] ~= '' then
  local estimate = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '-1')
  if estimate >= 0 then
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    if estimate > 0 then redis.call('HINCRBY', KEYS[3], '=', -estimate) end
  end
end
local spent = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return spent
"""
)

# KEYS: spent counter. Returns the micro-dollars settled (0 if none).
_SPENT = "return tonumber(redis.call('GET', KEYS[1]) or '0')"

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
    return [f"{scope}:spent", f"{scope}:res", f"{scope}:amt"]


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
    key: str, token: int | str, outcome: str, settings: ConcurrencySettings
) -> ScriptCall:
    """Give lease ``token`` of route ``key`` back, feeding ``outcome`` to AIMD."""
    c = settings
    args = [token, outcome, _ms(c.decrease_interval_seconds)]
    args += [_ms(c.forget_after_seconds), _opt(c.initial_limit), c.increase_after]
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
) -> ScriptCall:
    """Set ``estimate_micro`` aside under ``scope`` as reservation ``token``."""
    args = [token, estimate_micro, budget_micro]
    args.append(_ms(settings.reservation_ttl_seconds))
    return ScriptCall("reserve", _budget_keys(scope), args)


def settle_call(
    scope: str, token: int | str, actual_micro: int, settings: BudgetSettings
) -> ScriptCall:
    """Replace reservation ``token`` (``""``: none) by ``actual_micro`` spent."""
    args = [token, actual_micro, _ms(settings.spent_ttl_seconds)]
    return ScriptCall("settle", _budget_keys(scope), args)


def spent_call(scope: str) -> ScriptCall:
    """Read the micro-dollars settled under ``scope``."""
    return ScriptCall("spent", [f"{scope}:spent"], [])


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes (the whole key if untagged)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or the query) masked."""
    parts = urlsplit(url)
    if parts.password is None and "password" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [
            (k, "***" if k.lower() == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


@dataclass
class _LoopClient:
    """The async client of one event loop, and what closes it with the loop."""

    client: redis.asyncio.Redis
    scripts: dict[str, AsyncScript]
    closer: AsyncGenerator[None, None] | None = field(default=None, repr=False)


async def _close_client(client: redis.asyncio.Redis) -> None:
    # redis-py < 5.0.1 has close(); later versions call it aclose().
    closer = getattr(client, "aclose", None) or client.close
    with contextlib.suppress(Exception):  # already broken: nothing left to free
        await closer()


class ScriptClients:
    """Redis clients with every script registered, opened on first use.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (it may hold a
            password: it is never shown).
        timeout: Seconds to wait for a Redis answer.
        connect_timeout: Seconds to wait for a connection.

    Attributes:
        url: ``url`` with any password masked, to show.
    """

    def __init__(self, url: str, *, timeout: float, connect_timeout: float) -> None:
        self.url = redact_url(url)
        self._url = url
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Script] = {}
        self._aclients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}

    def scrub(self, text: str) -> str:
        """``text`` (say, an error message) with the URL's passwords masked."""
        for secret in _url_secrets(self._url):
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
            redis.RedisError: Redis could not be reached or failed the call.
        """
        scripts = await self._loop_scripts()
        return await scripts[call.script](keys=call.keys, args=call.args)

    def _sync_scripts(self) -> dict[str, Script]:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = redis.Redis.from_url(
                        self._url,
                        retry=Retry(NoBackoff(), 0),
                        client_name=CLIENT_NAME,
                        socket_timeout=self._timeout,
                        socket_connect_timeout=self._connect_timeout,
                    )
                    self._scripts = {
                        name: client.register_script(src)
                        for name, src in _SCRIPTS.items()
                    }
                    self._client = client
        return self._scripts

    async def _loop_scripts(self) -> dict[str, AsyncScript]:
        # A client's connections belong to the loop that opened them, so each
        # loop gets its own client, closed when that loop shuts down.
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(loop)
        if entry is not None:
            return entry.scripts
        client = redis.asyncio.Redis.from_url(
            self._url,
            retry=AsyncRetry(NoBackoff(), 0),
            client_name=CLIENT_NAME,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._connect_timeout,
        )
        entry = _LoopClient(
            client, {n: client.register_script(s) for n, s in _SCRIPTS.items()}
        )
        with self._lock:
            for old in [lp for lp in self._aclients if lp.is_closed()]:
                del self._aclients[old]  # that loop closed without shutting down
            self._aclients[loop] = entry
        entry.closer = self._close_with_loop(loop, entry)
        # Started here, the generator is one the loop closes on shutdown
        # (``shutdown_asyncgens``, as asyncio.run does): that closes the client.
        await entry.closer.asend(None)
        return entry.scripts

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, entry: _LoopClient
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._aclients.get(loop) is entry:
                    del self._aclients[loop]
            await _close_client(entry.client)

    def close(self) -> None:
        """Close the sync client (async clients close with their loops)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
            client.connection_pool.disconnect()

    async def aclose(self) -> None:
        """Close the running loop's client and the sync client."""
        entry = self._aclients.get(asyncio.get_running_loop())
        if entry is not None and entry.closer is not None:
            await entry.closer.aclose()
        self.close()
