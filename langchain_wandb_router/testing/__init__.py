"""A local W&B Inference emulator for tests, demos and benchmarks.

Use it in your own tests to exercise code built on ChatWandb or WandbRouter
without a key or a network:

.. code-block:: python

    from langchain_wandb_router import ChatWandb
    from langchain_wandb_router.testing import WandbEmulator

    with WandbEmulator() as emu:
        llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
                        api_key=emu.api_key, base_url=emu.base_url)
        assert llm.invoke("hi").content

Load and routing tests can cap requests in flight per project and model (W&B's
429), hold each request for a service time, declare timed outages and read the
counters:

.. code-block:: python

    with WandbEmulator(concurrency_limit={"*": 8, "zai-org/GLM-5.2": 1},
                       service_time=0.2) as emu:
        emu.outage("deepseek-ai/DeepSeek-V3.1", seconds=5)  # 503 for 5 s
        ...
        stats = emu.stats()
        stats.peak_in_flight_by_model, stats.rejected, stats.responses

Latency tests and benchmarks give models seeded timings, heavy tail included,
and read back what each request drew:

.. code-block:: python

    slow = Latency(ttft=0.5, per_token=0.02, tail_share=0.05, tail_factor=10)
    with WandbEmulator(latency={"*": Latency(0.1), "zai-org/GLM-5.2": slow}) as emu:
        ...
        [(d.model, d.ttft, d.tail) for d in emu.latencies()]

Cache tests read what the prefix cache found (``cache_salt`` isolates, blocks
expire on the emulator's clock):

.. code-block:: python

    settings = CacheSettings(block=16, ttl=600)
    with WandbEmulator(prefix_cache=settings, clock=fake_clock) as emu:
        ...
        [(c.model, c.salt, c.cached_tokens) for c in emu.cache_lookups()]
        emu.cache_stats().hits

Inside: ``_server`` is the emulator's API, ``_handler`` its HTTP side (typed
against a small protocol, not the emulator's module), ``_types`` the scripted
faults, forced replies and recorded requests, ``_responder`` what the model
says, ``_bodies`` how that goes on the wire (JSON or SSE), ``_load`` the
concurrency caps, service times, outages and counters, ``_latency`` the seeded
time to first token and per token, ``_cache`` the prefix cache.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from langchain_wandb_router.testing._cache import (
    CacheLookup,
    CacheSettings,
    PrefixCacheStats,
)
from langchain_wandb_router.testing._latency import Latency, LatencyDraw
from langchain_wandb_router.testing._load import EmulatorStats, Outage
from langchain_wandb_router.testing._server import WandbEmulator
from langchain_wandb_router.testing._types import Fault, RecordedRequest

__all__ = [
    "CacheLookup",
    "CacheSettings",
    "EmulatorStats",
    "Fault",
    "Latency",
    "LatencyDraw",
    "Outage",
    "PrefixCacheStats",
    "RecordedRequest",
    "WandbEmulator",
    "offline_unless_key",
    "shared_emulator",
]

_shared: WandbEmulator | None = None
_shared_lock = threading.Lock()


def shared_emulator() -> WandbEmulator:
    """One emulator for the whole process, started on first use.

    Handy where a fixture cannot reach, such as the class properties of
    langchain-tests' standard suites. It lives until the process exits; do not
    script faults on it from tests that may run in parallel.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WandbEmulator().start()
        return _shared


_ENV_VARS = ("WANDB_API_KEY", "WANDB_INFERENCE_BASE_URL")


@contextmanager
def offline_unless_key() -> Iterator[WandbEmulator | None]:
    """Run against W&B when ``WANDB_API_KEY`` is set, else against an emulator.

    Without a key, starts an emulator and points ``WANDB_API_KEY`` and
    ``WANDB_INFERENCE_BASE_URL`` at it for the duration of the block, so code
    inside reads exactly as it would against W&B. Yields the emulator, or
    ``None`` when the real service is used.
    """
    if os.environ.get("WANDB_API_KEY"):
        yield None
        return
    saved = {name: os.environ.get(name) for name in _ENV_VARS}
    with WandbEmulator() as emu:
        os.environ["WANDB_API_KEY"] = emu.api_key
        os.environ["WANDB_INFERENCE_BASE_URL"] = emu.base_url
        try:
            yield emu
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
