"""The live Redis clients of a state, each with every script registered.

:class:`ScriptClients` opens one sync client, shared by every thread, and one
async client per event loop (asyncio connections belong to one loop), kept in
the package's one per-loop registry
(:class:`~langchain_wandb_router.transport._loops.LoopShelf`): the loop itself
holds its client (so a dropped loop takes its sockets with it), and the client
is closed from inside the loop when it shuts down.
It also runs :class:`~langchain_wandb_router.state._lua.ScriptCall` s, makes
pub/sub objects for waiters and reads the servers' eviction policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.commands.core import AsyncScript, Script
from redis.exceptions import MaxConnectionsError

from langchain_wandb_router.state._connect import AsyncClient, SyncClient, connector
from langchain_wandb_router.state._lua import SCRIPTS, ScriptCall
from langchain_wandb_router.transport._loops import LoopShelf

__all__ = ["ScriptClients", "pool_exhausted"]


def pool_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` says the client has no free connection (not an outage)."""
    if isinstance(exc, MaxConnectionsError):
        return True
    # BlockingConnectionPool's error once its wait for a connection ran out.
    return isinstance(exc, redis.ConnectionError) and isinstance(
        exc.__cause__, asyncio.TimeoutError | TimeoutError
    )


class _LoopClient:
    """The async client of one event loop, with its scripts registered."""

    __slots__ = ("client", "ready", "scripts", "setup")

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.scripts = {n: client.register_script(s) for n, s in SCRIPTS.items()}
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


async def _close_client(entry: _LoopClient) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing left to free
        await entry.client.aclose()


# Each event loop's clients, one per ScriptClients (held weakly: a dropped
# state lets its client go), closed when the loop shuts down (see LoopShelf).
_loop_clients: LoopShelf[ScriptClients, _LoopClient] = LoopShelf(
    "_langchain_wandb_router_redis", _close_client, weak_keys=True
)


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
        reach = connector(spec, timeout=timeout, connect_timeout=connect_timeout)
        self.url = reach.url
        self.cluster = reach.cluster
        self._secrets = reach.secrets
        self._given = reach.given
        self._new_sync = reach.new_sync
        self._new_async = reach.new_async
        self._lock = threading.Lock()
        self._client: SyncClient | None = None
        self._scripts: dict[str, Script] = {}

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
                        for name, src in SCRIPTS.items()
                    }
                    self._client = client
        return self._scripts

    def _loop_entry(self) -> _LoopClient:
        entry = _loop_clients.get(self)
        if entry is None:
            entry = _loop_clients.add(self, _LoopClient(self._new_async()))
        return entry

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
        await _loop_clients.discard(self)
        self.close()


def _policies(replies: list[Any]) -> list[str]:
    out = []
    for reply in replies:
        value = reply.get("maxmemory-policy") or reply.get(b"maxmemory-policy") or ""
        out.append(value.decode() if isinstance(value, bytes) else str(value))
    return out
