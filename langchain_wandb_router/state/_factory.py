"""Turning a router's ``state=`` setting into a :class:`RouterState`.

:func:`check_state` says at construction, without I/O, whether a setting can
work; :func:`state_from` builds the state on first use. Redis states need
redis-py (the ``redis`` extra), so their module is imported only when a Redis
URL or client is given.
"""

from __future__ import annotations

from typing import Literal

from langchain_wandb_router.state._interface import (
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    RouterState,
)
from langchain_wandb_router.state._memory import InProcessState

__all__ = ["check_state", "state_from"]


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
_ALL_SCHEMES = _REDIS_SCHEMES + _CLUSTER_SCHEMES
_REDIS_MISSING = (
    "a Redis router state needs redis-py: pip install 'langchain-wandb-router[redis]'"
)
_ACCEPTED = (
    "pass None (in-process), a RouterState, a redis://, rediss://, unix://, "
    "redis+cluster:// or rediss+cluster:// URL, or a redis-py client "
    "(redis.Redis, redis.asyncio.Redis, redis.cluster.RedisCluster, "
    "redis.asyncio.cluster.RedisCluster)"
)


def _redis_client_types() -> tuple[type, ...]:
    """The redis-py client classes ``state=`` takes; none without redis-py."""
    try:
        import redis
        import redis.asyncio
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
        from redis.cluster import RedisCluster
    except ImportError:
        return ()
    return (redis.Redis, redis.asyncio.Redis, RedisCluster, AsyncRedisCluster)


def _shown(spec: str) -> str:
    # Name only the scheme: the string may carry a password.
    return spec.split("://", 1)[0] + "://…" if "://" in spec else "a plain string"


def _check_url(url: str) -> None:
    """Parse a Redis URL as redis-py will (no I/O); ValueError without secrets."""
    try:
        import redis.connection
    except ImportError as exc:
        raise ImportError(_REDIS_MISSING) from exc
    scheme, rest = url.split("://", 1)
    cluster = scheme.lower().endswith("+cluster")
    plain = scheme.lower().removesuffix("+cluster") + "://" + rest
    try:
        options = redis.connection.parse_url(plain)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        # redis-py's message may quote the URL: say what is wrong without it.
        raise ValueError(
            f"Invalid Redis URL for router state ({_shown(url)}): it does not parse "
            "as redis-py expects (scheme://[user:password@]host[:port][/db])."
        ) from exc
    if cluster and not options.get("host"):
        raise ValueError(f"A Redis Cluster URL ({_shown(url)}) needs a host.")
    if cluster and int(options.get("db") or 0) != 0:
        raise ValueError(
            f"A Redis Cluster URL ({_shown(url)}) must use database 0 "
            "(Redis Cluster has no other)."
        )


def check_state(spec: object) -> None:
    """Check a ``state=`` setting without any I/O; raise if it could not work.

    Accepts what :func:`state_from` accepts: ``None``, a :class:`RouterState`,
    a ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://`` or
    ``rediss+cluster://`` URL that parses, or a redis-py client
    (``redis.Redis``, ``redis.asyncio.Redis``, ``redis.cluster.RedisCluster``,
    ``redis.asyncio.cluster.RedisCluster``). Messages never show a password.

    Args:
        spec: The setting.

    Raises:
        ImportError: A Redis URL was given but redis-py is not installed.
        ValueError: A string that is not a usable Redis URL.
        TypeError: Any other object.
    """
    if spec is None or isinstance(spec, RouterState):
        return
    if isinstance(spec, str):
        if not spec.lower().startswith(_ALL_SCHEMES):
            raise ValueError(f"Unsupported router state ({_shown(spec)}): {_ACCEPTED}.")
        _check_url(spec)
        return
    if isinstance(spec, _redis_client_types()):
        return
    raise TypeError(f"Unsupported router state ({type(spec).__name__}): {_ACCEPTED}.")


def state_from(
    spec: RouterState | str | object | None,
    *,
    health: HealthSettings | None = None,
    concurrency: ConcurrencySettings | None = None,
    budget: BudgetSettings | None = None,
    on_error: Literal["open", "closed"] = "open",
) -> RouterState:
    """The router state a ``state=`` setting names.

    Args:
        spec: ``None`` (a new :class:`InProcessState`), a :class:`RouterState`
            (used as is, with its own settings), a Redis URL (``redis://``,
            ``rediss://``, ``unix://``; ``redis+cluster://`` or
            ``rediss+cluster://`` for Redis Cluster) or a redis-py client (a
            shared ``RedisState``; see ``ScriptClients`` for how each client
            is used). :func:`check_state` says in advance whether it will do.
        health: Settings for a new state.
        concurrency: Settings for a new state.
        budget: Settings for a new state.
        on_error: What a new Redis state does while Redis is unreachable:
            ``"open"`` (per-process state, one warning) or ``"closed"``
            (raise :class:`StateUnavailableError`).

    Raises:
        ImportError: A Redis URL was given but redis-py is not installed.
        ValueError: ``spec`` is a string that is not a usable Redis URL.
        TypeError: ``spec`` is an object of another kind.
    """
    if isinstance(spec, RouterState):
        return spec
    if spec is None:
        return InProcessState(health=health, concurrency=concurrency, budget=budget)
    check_state(spec)
    # Only now: it needs redis-py, an optional dependency.
    from langchain_wandb_router.state._redis import RedisState

    return RedisState(
        spec,
        health=health,
        concurrency=concurrency,
        budget=budget,
        on_error=on_error,
    )
