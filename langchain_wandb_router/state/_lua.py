"""The Lua scripts behind ``RedisState`` and how each is called.

Every decision is one script, so it is atomic on the server and uses the
server's clock (``TIME``) for expiry and windows: processes on machines with
skewed clocks agree. Every key has a TTL. The keys one script touches share
the hash tag :func:`~langchain_wandb_router.state._interface.route_key` puts in
them, so the scripts also run on Redis Cluster.

:data:`SCRIPTS` holds the sources by name; the ``*_call`` builders make the
:class:`ScriptCall` (name, KEYS, ARGV) of one run, keeping each script's
argument order in one place. Nothing here does I/O (``_clients`` runs them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from langchain_wandb_router.state._interface import (
    HEALTH_BUCKETS,
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
)
from langchain_wandb_router.state._lua_stats import STATS_SCRIPTS

__all__ = [
    "MEMBER_TTL_SECONDS",
    "SCRIPTS",
    "Known",
    "ScriptCall",
    "acquire_call",
    "cooling_call",
    "hash_tag",
    "in_flight_call",
    "limit_call",
    "new_token",
    "release_call",
    "renew_call",
    "reply_text",
    "report_call",
    "reserve_call",
    "settle_call",
    "spent_call",
]

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

# KEYS: lease zset. ARGV: lease ttl, then tokens. Returns, per token, 1 if
# renewed or 0 if it had expired (renewing a batch costs one call).
_RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local out, alive = {}, false
for i = 2, #ARGV do
  local exp = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not exp or tonumber(exp) <= now then
    redis.call('ZREM', KEYS[1], ARGV[i])
    out[i - 1] = 0
  else
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    out[i - 1] = 1
    alive = true
  end
end
if alive then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
end
return out
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

# The start of every budget script: purge, then the generation and members.
_BUDGET = _NOW + _PURGE + _GENERATION

# ARGV[7..10]: token, estimate, budget, reservation ttl.
# Returns {reserved, spent, outstanding, generation, restored, members}.
_RESERVE = (
    _BUDGET
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
    _BUDGET
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
    _BUDGET
    + """
local outstanding = tonumber(redis.call('HGET', KEYS[3], '=') or '0')
return {1, spent, outstanding, gen[1], restored, members}
"""
)

# The scripts by the name a ScriptCall gives.
SCRIPTS = {
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
    **STATS_SCRIPTS,
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
    ttl = _ms(settings.lease_ttl_seconds)
    args = [token, _opt(hard_limit), ttl, _opt(settings.initial_limit)]
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


def renew_call(
    key: str, tokens: Sequence[int | str], settings: ConcurrencySettings
) -> ScriptCall:
    """Push back the expiry of leases ``tokens`` of route ``key``, in one call."""
    args: list[Any] = [_ms(settings.lease_ttl_seconds), *tokens]
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


def new_token() -> str:
    """A fresh random id: of a lease, a reservation, a generation or a process."""
    return os.urandom(8).hex()


def reply_text(value: Any) -> str:
    """A Redis reply as text (bytes when the client does not decode replies)."""
    return value.decode() if isinstance(value, bytes) else str(value)
