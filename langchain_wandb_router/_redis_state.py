"""Router state shared through Redis (``state="redis://…"``).

Every decision is one Lua script, so it is atomic on the server and uses the
server's clock (``TIME``) for expiry and windows: processes on machines with
skewed clocks agree. Every key has a TTL. The keys one script touches share
the hash tag :func:`~langchain_wandb_router._state.route_key` puts in them, so
the scripts also run on Redis Cluster.

When Redis cannot be reached, ``on_error="open"`` logs one warning per outage
and answers from an in-process state until Redis is back (it is tried again
every ``retry_interval`` seconds); ``on_error="closed"`` raises
:class:`StateUnavailableError` from the calls that gate a request (recording
calls never raise). Short socket timeouts and no client-side retries keep
either answer within a couple of seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.exceptions import RedisError
from redis.retry import Retry

from langchain_wandb_router._state import (
    HEALTH_BUCKETS,
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    InProcessState,
    Lease,
    Outcome,
    Reservation,
    RouterState,
    SlotTimeoutError,
    StateUnavailableError,
    check_hard_limit,
    check_micro,
    check_outcome,
)

__all__ = ["CLIENT_NAME", "RedisState", "redact_url"]

logger = logging.getLogger("langchain_wandb_router")

OnError = Literal["open", "closed"]

T = TypeVar("T")

# How this package's connections show in Redis's CLIENT LIST.
CLIENT_NAME = "langchain-wandb-router"

# Polling for a free slot: start fast, back off to this, with jitter so
# processes waiting on the same key do not poll in lockstep.
_FIRST_POLL = 0.002
_MAX_POLL = 0.05

# An answer meaning "Redis is unavailable" (scripts never return it).
_DOWN: Any = object()

# Tasks that undo a cancelled acquire; kept so they are not garbage-collected.
_BACKGROUND: set[asyncio.Task[None]] = set()

# Lua scripts. Times are the server's, in milliseconds; -1 stands for "none".
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
# ARGV: token, outcome, decrease interval, forget after, initial limit.
_RELEASE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
redis.call('ZREM', KEYS[1], ARGV[1])
local rec = redis.call('HMGET', KEYS[2], 'lim', 'cut')
local lim = tonumber(rec[1] or ARGV[5])
if ARGV[2] == 'limited' then
  if not rec[2] or now - tonumber(rec[2]) >= tonumber(ARGV[3]) then
    local base = held
    if lim >= 0 and lim < base then base = lim end
    redis.call('HSET', KEYS[2], 'lim', math.max(1, math.floor(base / 2)),
               'cut', now, 'ok', 0)
  end
elseif ARGV[2] == 'ok' and lim >= 0 then
  local oks = redis.call('HINCRBY', KEYS[2], 'ok', 1)
  if oks >= lim then
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

_IN_FLIGHT = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
"""
)

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

_SPENT = "return tonumber(redis.call('GET', KEYS[1]) or '0')"

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


def _secrets_of(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _opt(limit: int | None) -> int:
    return -1 if limit is None else limit


def _token() -> str:
    return os.urandom(8).hex()


def _lease_keys(key: str) -> list[str]:
    return [f"{key}:lease", f"{key}:limit"]


def _budget_keys(scope: str) -> list[str]:
    return [f"{scope}:spent", f"{scope}:res", f"{scope}:amt"]


def _hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes (the whole key if untagged)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


@dataclass
class _Pending:
    """A recording write that failed; replayed once Redis answers again.

    Attributes:
        script: Which script to run.
        keys: Its keys.
        args: Its arguments.
        scope: For a settlement: the budget it adds to.
        spend: For a settlement: the micro-dollars it adds.
        counted_locally: The spend is already in the fallback state's total.
    """

    script: str
    keys: list[str]
    args: list[Any]
    scope: str | None = None
    spend: int = 0
    counted_locally: bool = False


@dataclass(slots=True)
class _Op(Generic[T]):
    """One script call and how to answer with its result, or without Redis."""

    script: str
    keys: list[str]
    args: list[Any]
    done: Callable[[Any], T]
    down: Callable[[], T]


def _ignore(_: Any) -> None:
    return None


def _down() -> Any:
    return _DOWN


def _jitter() -> float:
    return random.uniform(0.5, 1.0)  # noqa: S311 - spreading polls, not crypto


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


class RedisState(RouterState):
    """Router state in Redis, shared by every process that uses the same URL.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (with database,
            user and password as redis-py reads them).
        health: When models cool down.
        concurrency: Lease lifetime and adaptive limit behaviour.
        budget: Lifetimes of budget records.
        on_error: ``"open"``: fall back to in-process state during an outage
            (one warning); ``"closed"``: raise :class:`StateUnavailableError`.
        timeout: Seconds to wait for a Redis answer.
        connect_timeout: Seconds to wait for a connection.
        retry_interval: Seconds between attempts to reach Redis in an outage.
        clock: Monotonic seconds for deadlines and the retry interval (a seam).
    """

    def __init__(
        self,
        url: str,
        *,
        health: HealthSettings | None = None,
        concurrency: ConcurrencySettings | None = None,
        budget: BudgetSettings | None = None,
        on_error: OnError = "open",
        timeout: float = 1.0,
        connect_timeout: float = 1.0,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_error not in ("open", "closed"):
            raise ValueError(f"on_error must be 'open' or 'closed', got {on_error!r}")
        self.health = health or HealthSettings()
        self.concurrency = concurrency or ConcurrencySettings()
        self.budget = budget or BudgetSettings()
        self.on_error = on_error
        self.url = redact_url(url)
        self._url = url
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Script] = {}
        self._aclients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._down = False
        self._down_until = 0.0
        self._last_error = ""
        self._fallback: InProcessState | None = None
        self._pending: list[_Pending] = []
        self._known_spent: dict[str, int] = defaultdict(int)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisState:
        """A state for ``url``; ``options`` are the constructor's keywords."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisState({self.url!r}, on_error={self.on_error!r})"

    # Clients -------------------------------------------------------------------
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

    async def _async_scripts(self) -> dict[str, AsyncScript]:
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

    # Availability --------------------------------------------------------------
    def _resting(self) -> bool:
        """Whether an outage was seen so recently that Redis is not tried."""
        return self._down_until > 0 and self._clock() < self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        for secret in _secrets_of(self._url):
            text = text.replace(secret, "***")
        with self._lock:
            first = not self._down
            self._down = True
            self._down_until = self._clock() + self._retry_interval
            self._last_error = text
        if first:
            then = (
                "answering from per-process state until it is back"
                if self.on_error == "open"
                else "calls that need it fail with StateUnavailableError"
            )
            logger.warning(
                "Shared router state at %s is unavailable (%s); %s (trying "
                "again every %.0fs).",
                self.url,
                text,
                then,
                self._retry_interval,
            )

    def _mark_up(self) -> list[_Pending]:
        """Note Redis answered; return the writes to replay."""
        with self._lock:
            recovered = self._down
            self._down = False
            self._down_until = 0.0
            # The next outage starts from a clean slate, not this one's.
            self._fallback = None
            pending, self._pending = self._pending, []
        if recovered:
            logger.info("Shared router state at %s is reachable again.", self.url)
        return pending

    def _requeue(self, items: list[_Pending]) -> None:
        with self._lock:
            self._pending[:0] = items

    def _unavailable(self) -> StateUnavailableError:
        return StateUnavailableError(
            f"Shared router state at {self.url} is unavailable "
            f"({self._last_error or 'recent outage'}). Check that Redis is "
            "running and reachable from here, or create the router with "
            "on_error='open' to fall back to per-process state during outages."
        )

    def _local(self) -> InProcessState:
        """The state to answer from during an outage, or raise if closed."""
        if self.on_error == "closed":
            raise self._unavailable()
        with self._lock:
            if self._fallback is None:
                self._fallback = InProcessState(
                    health=self.health,
                    concurrency=self.concurrency,
                    budget=self.budget,
                    clock=self._clock,
                )
            return self._fallback

    def _queue(self, item: _Pending) -> None:
        with self._lock:
            # Bounded: in a very long outage the oldest writes are let go
            # (their leases and reservations expire by TTL anyway).
            if len(self._pending) >= 10_000:
                del self._pending[0]
            self._pending.append(item)

    def _exec(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; :data:`_DOWN` if Redis is unavailable."""
        if self._resting():
            return _DOWN
        try:
            result = self._sync_scripts()[script](keys=keys, args=args)
        except RedisError as exc:
            self._mark_down(exc)
            return _DOWN
        if self._down or self._pending:
            self._replay(self._mark_up())
        return result

    def _replay(self, items: list[_Pending]) -> None:
        scripts = self._sync_scripts()
        for i, item in enumerate(items):
            try:
                scripts[item.script](keys=item.keys, args=item.args)
            except RedisError as exc:
                self._requeue(items[i:])
                self._mark_down(exc)
                return

    async def _aexec(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Async :meth:`_exec`."""
        if self._resting():
            return _DOWN
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            result = await (await self._async_scripts())[script](keys=keys, args=args)
        except RedisError as exc:
            self._mark_down(exc)
            return _DOWN
        if task is not None and task.cancelling() > cancels:
            # Cancelled while the answer arrived, and the cancellation was
            # swallowed on the way (Python 3.11's asyncio.wait_for, used by
            # redis-py, does that): honour it, or the caller never stops.
            raise asyncio.CancelledError
        if self._down or self._pending:
            await self._areplay(self._mark_up())
        return result

    async def _areplay(self, items: list[_Pending]) -> None:
        scripts = await self._async_scripts()
        for i, item in enumerate(items):
            try:
                await scripts[item.script](keys=item.keys, args=item.args)
            except RedisError as exc:
                self._requeue(items[i:])
                self._mark_down(exc)
                return

    def _run(self, op: _Op[T]) -> T:
        got = self._exec(op.script, op.keys, op.args)
        return op.down() if got is _DOWN else op.done(got)

    async def _arun(self, op: _Op[T]) -> T:
        got = await self._aexec(op.script, op.keys, op.args)
        return op.down() if got is _DOWN else op.done(got)

    # Each operation once, as a script call plus what to do with its answer or
    # without one; the sync and async methods only differ in how they run it.
    def _report_op(self, key: str, failed: bool) -> _Op[None]:
        h = self.health
        args = [int(failed), h.failures, h.failure_ratio, _ms(h.window_seconds)]
        args += [HEALTH_BUCKETS, _ms(h.cooldown_seconds)]

        def down() -> None:
            if self.on_error == "open":  # closed: dropped, like any record
                self._local().report(key, failed)

        return _Op("report", [f"{key}:health"], args, _ignore, down)

    def _cooling_ops(self, keys: list[str], out: dict[str, float]) -> list[_Op[Any]]:
        groups: dict[str, list[str]] = {}  # one script call per Cluster slot
        for key in keys:
            groups.setdefault(_hash_tag(key), []).append(key)

        def op(group: list[str]) -> _Op[Any]:
            def done(left: list[int]) -> None:
                out.update(
                    (k, ms / 1000) for k, ms in zip(group, left, strict=True) if ms
                )

            return _Op("cooling", [f"{k}:health" for k in group], [], done, _down)

        return [op(group) for group in groups.values()]

    def _try_op(self, key: str, hard_limit: int | None) -> _Op[Lease | int | None]:
        """A lease, or the cap that is full (``None`` if the fallback said no)."""
        c = self.concurrency
        token = _token()
        args = [token, _opt(hard_limit), _ms(c.lease_ttl_seconds)]
        return _Op(
            "acquire",
            _lease_keys(key),
            [*args, _opt(c.initial_limit)],
            lambda got: Lease(key, token, self) if got[0] else int(got[1]),
            lambda: self._local().try_acquire(key, hard_limit),
        )

    def _release_op(self, lease: Lease, outcome: Outcome) -> _Op[None]:
        c = self.concurrency
        keys = _lease_keys(lease.key)
        args = [lease.token, outcome, _ms(c.decrease_interval_seconds)]
        args += [_ms(c.forget_after_seconds), _opt(c.initial_limit)]
        return _Op(
            "release",
            keys,
            args,
            _ignore,
            lambda: self._queue(_Pending("release", keys, args)),
        )

    def _renew_op(self, lease: Lease) -> _Op[bool]:
        args = [lease.token, _ms(self.concurrency.lease_ttl_seconds)]
        # Unknown while Redis is away: keep the stream going.
        return _Op("renew", [f"{lease.key}:lease"], args, bool, lambda: True)

    def _limit_op(self, key: str) -> _Op[int | None]:
        initial = self.concurrency.initial_limit
        return _Op(
            "limit",
            [f"{key}:limit"],
            [],
            lambda got: initial if got is None else int(got),
            lambda: self._local().limit(key),
        )

    def _in_flight_op(self, key: str) -> _Op[int]:
        return _Op(
            "in_flight",
            [f"{key}:lease"],
            [],
            int,
            lambda: self._local().in_flight(key),
        )

    def _queued_spend(self, scope: str, *, remote_only: bool) -> int:
        with self._lock:
            return sum(
                p.spend
                for p in self._pending
                if p.scope == scope and not (remote_only and p.counted_locally)
            )

    def _reserve_op(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> _Op[Reservation | None]:
        check_micro(estimate_micro, budget_micro)
        token = _token()
        args = [token, estimate_micro, budget_micro]
        args.append(_ms(self.budget.reservation_ttl_seconds))

        def done(got: list[int]) -> Reservation | None:
            self._known_spent[scope] = int(got[1])
            return Reservation(scope, token, estimate_micro, self) if got[0] else None

        def down() -> Reservation | None:
            # What Redis last said was spent, plus what could not be told to
            # it, still counts against the budget during an outage.
            used = self._known_spent[scope]
            used += self._queued_spend(scope, remote_only=True)
            remaining = max(0, budget_micro - used)
            return self._local().reserve(scope, estimate_micro, remaining)

        return _Op("reserve", _budget_keys(scope), args, done, down)

    def _settle_op(self, reservation: Reservation, actual_micro: int) -> _Op[None]:
        check_micro(actual_micro)
        remote = reservation.owner is self
        scope = reservation.scope
        token = reservation.token if remote else ""  # "" adds spend only
        item = _Pending(
            "settle",
            _budget_keys(scope),
            [token, actual_micro, _ms(self.budget.spent_ttl_seconds)],
            scope=scope,
            spend=actual_micro,
            counted_locally=not remote,
        )

        def done(spent: int) -> None:
            self._known_spent[scope] = int(spent)

        return _Op(item.script, item.keys, item.args, done, lambda: self._queue(item))

    def _spent_op(self, scope: str) -> _Op[int]:
        def done(spent: int) -> int:
            self._known_spent[scope] = int(spent)
            return int(spent)

        def down() -> int:
            self._local()  # raises when closed
            queued = self._queued_spend(scope, remote_only=False)
            return self._known_spent[scope] + queued

        return _Op("spent", [f"{scope}:spent"], [], done, down)

    # Health ------------------------------------------------------------------------
    def report(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.report`."""
        if self.health.failures > 0:
            self._run(self._report_op(key, failed))

    async def areport(self, key: str, failed: bool) -> None:
        """See :meth:`RouterState.areport`."""
        if self.health.failures > 0:
            await self._arun(self._report_op(key, failed))

    def cooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.cooling`."""
        keys = list(keys)
        out: dict[str, float] = {}
        for op in self._cooling_ops(keys, out):
            if self._run(op) is _DOWN:
                return self._local().cooling(keys)
        return out

    async def acooling(self, keys: Iterable[str]) -> dict[str, float]:
        """See :meth:`RouterState.acooling`."""
        keys = list(keys)
        out: dict[str, float] = {}
        for op in self._cooling_ops(keys, out):
            if await self._arun(op) is _DOWN:
                return self._local().cooling(keys)
        return out

    # Concurrency ------------------------------------------------------------------
    async def _atry(self, key: str, hard_limit: int | None) -> Lease | int | None:
        op = self._try_op(key, hard_limit)
        try:
            return await self._arun(op)
        except asyncio.CancelledError:
            # The script may have taken the slot before the cancellation
            # reached us: give it back, whatever happens to this task.
            lease = Lease(key, op.args[0], self)  # args[0]: the lease's token
            undo = asyncio.ensure_future(self._arun(self._release_op(lease, "other")))
            _BACKGROUND.add(undo)
            undo.add_done_callback(_BACKGROUND.discard)
            # Wait for it (a round trip) so the slot is back when the caller
            # sees the cancellation; cancelled again, it still finishes.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(undo)
            raise

    def try_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.try_acquire`."""
        check_hard_limit(hard_limit)
        got = self._run(self._try_op(key, hard_limit))
        return got if isinstance(got, Lease) else None

    async def atry_acquire(self, key: str, hard_limit: int | None) -> Lease | None:
        """See :meth:`RouterState.atry_acquire`."""
        check_hard_limit(hard_limit)
        got = await self._atry(key, hard_limit)
        return got if isinstance(got, Lease) else None

    def acquire(self, key: str, hard_limit: int | None, deadline: float) -> Lease:
        """See :meth:`RouterState.acquire` (polls Redis while waiting)."""
        check_hard_limit(hard_limit)
        poll = _FIRST_POLL
        while True:
            got = self._run(self._try_op(key, hard_limit))
            if isinstance(got, Lease):
                return got
            now = self._clock()
            if now >= deadline:
                raise SlotTimeoutError(key, hard_limit if got is None else got)
            time.sleep(min(deadline - now, poll * _jitter()))
            poll = min(poll * 2, _MAX_POLL)

    async def aacquire(
        self, key: str, hard_limit: int | None, deadline: float
    ) -> Lease:
        """See :meth:`RouterState.aacquire` (polls Redis while waiting)."""
        check_hard_limit(hard_limit)
        poll = _FIRST_POLL
        while True:
            got = await self._atry(key, hard_limit)
            if isinstance(got, Lease):
                return got
            now = self._clock()
            if now >= deadline:
                raise SlotTimeoutError(key, hard_limit if got is None else got)
            await asyncio.sleep(min(deadline - now, poll * _jitter()))
            poll = min(poll * 2, _MAX_POLL)

    def release(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.release`; an unsent release is replayed later."""
        if lease.owner is not self:
            lease.owner.release(lease, outcome)
        else:
            check_outcome(outcome)
            self._run(self._release_op(lease, outcome))

    async def arelease(self, lease: Lease, outcome: Outcome) -> None:
        """See :meth:`RouterState.arelease`."""
        if lease.owner is not self:
            await lease.owner.arelease(lease, outcome)
        else:
            check_outcome(outcome)
            await self._arun(self._release_op(lease, outcome))

    def renew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.renew`; True while Redis cannot be asked."""
        if lease.owner is not self:
            return lease.owner.renew(lease)
        return self._run(self._renew_op(lease))

    async def arenew(self, lease: Lease) -> bool:
        """See :meth:`RouterState.arenew`."""
        if lease.owner is not self:
            return await lease.owner.arenew(lease)
        return await self._arun(self._renew_op(lease))

    def limit(self, key: str) -> int | None:
        """See :meth:`RouterState.limit`."""
        return self._run(self._limit_op(key))

    async def alimit(self, key: str) -> int | None:
        """See :meth:`RouterState.alimit`."""
        return await self._arun(self._limit_op(key))

    def in_flight(self, key: str) -> int:
        """See :meth:`RouterState.in_flight`."""
        return self._run(self._in_flight_op(key))

    async def ain_flight(self, key: str) -> int:
        """See :meth:`RouterState.ain_flight`."""
        return await self._arun(self._in_flight_op(key))

    # Budget ------------------------------------------------------------------------
    def reserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.reserve`."""
        return self._run(self._reserve_op(scope, estimate_micro, budget_micro))

    async def areserve(
        self, scope: str, estimate_micro: int, budget_micro: int
    ) -> Reservation | None:
        """See :meth:`RouterState.areserve`."""
        return await self._arun(self._reserve_op(scope, estimate_micro, budget_micro))

    def settle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.settle`; an unsent settlement is replayed later."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:  # issued during an outage
            reservation.owner.settle(reservation, actual_micro)
        self._run(op)

    async def asettle(self, reservation: Reservation, actual_micro: int) -> None:
        """See :meth:`RouterState.asettle`."""
        op = self._settle_op(reservation, actual_micro)
        if reservation.owner is not self:
            await reservation.owner.asettle(reservation, actual_micro)
        await self._arun(op)

    def spent(self, scope: str) -> int:
        """See :meth:`RouterState.spent`."""
        return self._run(self._spent_op(scope))

    async def aspent(self, scope: str) -> int:
        """See :meth:`RouterState.aspent`."""
        return await self._arun(self._spent_op(scope))
