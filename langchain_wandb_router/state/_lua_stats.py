"""The Lua scripts of routes' live statistics and conversations' routes in Redis.

One route's figures live under its key: ``<key>:stats`` (a hash of counters
and recent figures), ``<key>:ttft``, ``<key>:lat`` and ``<key>:tps`` (lists of
the last :data:`~._stats.WINDOW` samples, newest first). Every one expires
:data:`STATS_TTL_SECONDS` after the route was last used, so memory is bounded
and a fleet's figures fade with its traffic. The recent figures follow
:func:`~._stats.ewma`, so both states agree (the contract tests check it).
"""

from __future__ import annotations

from typing import Any

from langchain_wandb_router.state._stats import (
    EWMA_WEIGHT,
    WINDOW,
    Observation,
)

__all__ = [
    "STATS_SCRIPTS",
    "STATS_TTL_SECONDS",
    "observe_args",
    "observe_keys",
    "stats_keys",
]

STATS_TTL_SECONDS = 3600
"""How long a route's figures outlive its last call."""

# KEYS: stats hash, ttft list, latency list, speed list. ARGV: outcome,
# seconds, first (-1: none), output, input and cached tokens, hedge (0/1),
# won (0/1), speed (-1: none), window, weight, ttl (ms).
_OBSERVE = """
local h = KEYS[1]
local function add(field, n) if n ~= 0 then redis.call('HINCRBY', h, field, n) end end
local function recent(field, x)
  local old = tonumber(redis.call('HGET', h, field))
  if old then x = old + tonumber(ARGV[11]) * (x - old) end
  redis.call('HSET', h, field, string.format('%.17g', x))
end
local ttl = tonumber(ARGV[12])
local outcome = ARGV[1]
add('requests', 1)
if outcome == 'failed' then add('errors', 1) end
if outcome == 'limited' then add('limited', 1) end
if ARGV[7] == '1' then
  add('hedges', 1)
  if ARGV[8] == '1' then add('hedges_won', 1) end
end
if outcome == 'ok' then
  add('input_tokens', tonumber(ARGV[5]))
  add('cached_tokens', tonumber(ARGV[6]))
  local window = tonumber(ARGV[10])
  local first = tonumber(ARGV[3])
  local sample, list, field = tonumber(ARGV[2]), KEYS[3], 'latency_recent'
  if first >= 0 then sample, list, field = first, KEYS[2], 'ttft_recent' end
  redis.call('LPUSH', list, string.format('%.17g', sample))
  redis.call('LTRIM', list, 0, window - 1)
  redis.call('PEXPIRE', list, ttl)
  recent(field, sample)
  local out = tonumber(ARGV[4])
  if out > 0 then recent('output_recent', out) end
  local speed = tonumber(ARGV[9])
  if speed >= 0 then
    redis.call('LPUSH', KEYS[4], string.format('%.17g', speed))
    redis.call('LTRIM', KEYS[4], 0, window - 1)
    redis.call('PEXPIRE', KEYS[4], ttl)
  end
end
redis.call('PEXPIRE', h, ttl)
return 0
"""

# KEYS: per route, its stats hash, ttft, latency and speed lists, lease zset
# and limit hash (six keys a route, all in one Cluster slot). Returns, per
# route, {hash fields and values, ttft, latency, speed, in flight, limit}.
_STATS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #KEYS, 6 do
  out[#out + 1] = {
    redis.call('HGETALL', KEYS[i]),
    redis.call('LRANGE', KEYS[i + 1], 0, -1),
    redis.call('LRANGE', KEYS[i + 2], 0, -1),
    redis.call('LRANGE', KEYS[i + 3], 0, -1),
    redis.call('ZCOUNT', KEYS[i + 4], string.format('(%d', now), '+inf'),
    redis.call('HGET', KEYS[i + 5], 'lim') or -1,
  }
end
return out
"""

# KEYS: a conversation's key. ARGV: route label, idle TTL (ms).
_PIN = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 0"

# KEYS: a conversation's key. Returns the label of its route, or nil.
_PINNED = "return redis.call('GET', KEYS[1])"

STATS_SCRIPTS = {
    "observe": _OBSERVE,
    "stats": _STATS,
    "pin": _PIN,
    "pinned": _PINNED,
}
"""The scripts by the name a script call gives (merged into ``_lua.SCRIPTS``)."""


def observe_keys(key: str) -> list[str]:
    """The KEYS of ``observe`` for route ``key``."""
    return [f"{key}:stats", f"{key}:ttft", f"{key}:lat", f"{key}:tps"]


def observe_args(seen: Observation) -> list[Any]:
    """The ARGV of ``observe`` for one finished attempt."""
    speed = seen.tokens_per_second
    return [
        seen.outcome,
        repr(seen.seconds),
        -1 if seen.first is None else repr(seen.first),
        seen.output_tokens,
        seen.input_tokens,
        seen.cached_tokens,
        int(seen.hedge),
        int(seen.won),
        -1 if speed is None else repr(speed),
        WINDOW,
        repr(EWMA_WEIGHT),
        STATS_TTL_SECONDS * 1000,
    ]


def stats_keys(key: str) -> list[str]:
    """The six KEYS ``stats`` reads for route ``key`` (one Cluster slot)."""
    return [*observe_keys(key), f"{key}:lease", f"{key}:limit"]
