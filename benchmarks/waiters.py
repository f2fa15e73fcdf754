"""Many callers behind one concurrency cap: CPU per call, wall time, Redis commands.

All callers start at once (``asyncio.gather``) against a W&B emulator in another
process that holds each request ``--service-time`` seconds. The router runs
with ``max_in_flight=--cap``; the baseline is an ``asyncio.Semaphore(--cap)``
around ``ChatWandb.ainvoke`` in the same run, i.e. the least any client can
spend to wait its turn. The ideal wall time is ``callers x service / cap``.

    python benchmarks/waiters.py                       # in process, then Redis
    python benchmarks/waiters.py --sizes 50,200 --no-redis

With Redis (Debian's ``redis-server`` on a free loopback port, started here)
it also counts the Redis commands per call (``INFO commandstats``) and runs
``--fleet`` processes of ``--fleet-callers`` callers each sharing one cap,
checking the peak in flight at the emulator never passes the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import EmulatorProcess

MODEL = "Qwen/Qwen3-235B-A22B-Instruct-2507"


# ------------------------------------------------------------------ one run


async def _timed(calls: int, one: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(CPU seconds per call, wall seconds) for ``calls`` started at once."""
    cpu, wall = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(calls)))
    assert len(results) == calls
    return (time.process_time() - cpu) / calls, time.perf_counter() - wall


async def _baseline(emu: EmulatorProcess, cap: int, calls: int) -> tuple[float, float]:
    from langchain_wandb_router import ChatWandb

    chat = ChatWandb(model=MODEL, api_key=emu.api_key, base_url=emu.base_url)
    gate = asyncio.Semaphore(cap)

    async def one() -> Any:
        async with gate:
            return await chat.ainvoke("hi")

    await _timed(min(calls, 20), one)  # warm the pool
    return await _timed(calls, one)


async def _router(
    emu: EmulatorProcess, cap: int, calls: int, state: Any
) -> tuple[float, float]:
    from langchain_wandb_router import WandbRouter

    router = WandbRouter(
        models=MODEL,
        api_key=emu.api_key,
        base_url=emu.base_url,
        max_in_flight=cap,
        state=state,
    )
    await _timed(min(calls, 20), lambda: router.ainvoke("hi"))
    return await _timed(calls, lambda: router.ainvoke("hi"))


# ------------------------------------------------------------------ Redis


class _Redis:
    """A throwaway redis-server on a free loopback port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._dir = tempfile.mkdtemp()
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        self.client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise SystemExit("redis-server did not start")

    def commands(self) -> int:
        """Commands clients sent (a script run counts once; what runs inside
        it, and this benchmark's own INFO, do not)."""
        stats = self.client.info("commandstats")
        sent = ("evalsha", "eval", "script", "subscribe", "unsubscribe", "ping",
                "config", "client", "hello", "select")  # fmt: skip
        return sum(
            int(v["calls"])
            for k, v in stats.items()
            if k.removeprefix("cmdstat_").split("|")[0] in sent
        )

    def reset(self) -> None:
        self.client.flushall()
        self.client.config_resetstat()

    def stop(self) -> None:
        self.client.close()
        self._proc.kill()
        self._proc.wait()


def _fleet_worker(
    url: str, base_url: str, key: str, cap: int, calls: int, go: Any, out: Any
) -> None:
    from langchain_wandb_router import WandbRouter

    async def main() -> None:
        router = WandbRouter(
            models=MODEL, api_key=key, base_url=base_url, max_in_flight=cap, state=url
        )
        go.wait()  # every process imported and built: all start together
        started = time.time()
        await asyncio.gather(*(router.ainvoke("hi") for _ in range(calls)))
        out.put((started, time.time()))

    asyncio.run(main())


def _fleet(
    emu: EmulatorProcess, redis_url: str, cap: int, processes: int, calls: int
) -> float:
    """Wall time from the first process's first call to the last one's end."""
    context = multiprocessing.get_context("spawn")
    go, out = context.Barrier(processes), context.Queue()
    procs = [
        context.Process(
            target=_fleet_worker,
            args=(redis_url, emu.base_url, emu.api_key, cap, calls, go, out),
        )
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    spans = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a fleet worker failed ({proc.exitcode})")
    return max(end for _, end in spans) - min(start for start, _ in spans)


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,800,2000")
    parser.add_argument("--redis-sizes", default="200,800")
    parser.add_argument("--cap", type=int, default=4)
    parser.add_argument("--service-time", type=float, default=0.02)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--fleet", type=int, default=4)
    parser.add_argument("--fleet-callers", type=int, default=500)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    # The emulator caps nothing: every cap here is the client's own.
    emu = EmulatorProcess(cap=10_000, service_time=args.service_time, retry_after=None)
    try:
        print(f"cap {args.cap}, service time {args.service_time * 1000:.0f} ms")
        print("| callers | router CPU/call | semaphore CPU/call | ratio | router wall "
              "| semaphore wall | ideal wall |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for calls in sizes:
            base_cpu, base_wall = asyncio.run(_baseline(emu, args.cap, calls))
            cpu, wall = asyncio.run(_router(emu, args.cap, calls, None))
            ideal = calls * args.service_time / args.cap
            print(
                f"| {calls} | {cpu * 1000:.2f} ms | {base_cpu * 1000:.2f} ms | "
                f"{cpu / base_cpu:.2f} | {wall:.2f} s | {base_wall:.2f} s | "
                f"{ideal:.2f} s |"
            )
        if args.no_redis:
            return
        server = _Redis()
        try:
            print("\nRedis state (one process)")
            print("| callers | commands/call | router CPU/call | wall | peak in flight |")
            print("|---:|---:|---:|---:|---:|")
            for calls in [int(s) for s in args.redis_sizes.split(",") if s]:
                server.reset()
                emu.reset()
                cpu, wall = asyncio.run(_router(emu, args.cap, calls, server.url))
                per_call = server.commands() / (calls + min(calls, 20))
                peak = max(emu.stats()["peak_by_model"].values())
                print(
                    f"| {calls} | {per_call:.1f} | {cpu * 1000:.2f} ms | "
                    f"{wall:.2f} s | {peak} |"
                )
            server.reset()
            emu.reset()
            n, each = args.fleet, args.fleet_callers
            wall = _fleet(emu, server.url, args.cap, n, each)
            peak = max(emu.stats()["peak_by_model"].values())
            per_call = server.commands() / (n * each)
            print(
                f"\nfleet: {n} processes x {each} callers, one cap of {args.cap}: "
                f"{per_call:.1f} commands/call, wall {wall:.2f} s "
                f"(ideal {n * each * args.service_time / args.cap:.2f} s), "
                f"peak in flight {peak}"
            )
        finally:
            server.stop()
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
