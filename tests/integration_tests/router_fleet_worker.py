"""One worker process of the fleet tests: a WandbRouter sharing state through Redis.

Usage: python router_fleet_worker.py MODE REDIS_URL BASE_URL API_KEY [BUDGET CALLS]
Prints one JSON line with what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys

from langchain_wandb_router import BudgetExceededError, RedisState, WandbRouter

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"


def main() -> None:
    mode, redis_url, base_url, api_key = sys.argv[1:5]
    common = {"api_key": api_key, "base_url": base_url, "state": redis_url}
    if mode == "slots":
        router = WandbRouter(models=QWEN, max_in_flight=3, **common)

        async def burst() -> list[str]:
            calls = [router.ainvoke(f"worker call {i}") for i in range(12)]
            return [m.text for m in await asyncio.gather(*calls)]

        print(json.dumps({"answers": asyncio.run(burst())}))
    elif mode == "cool":
        router = WandbRouter(models=[QWEN, DSV31], cooldown_failures=1, **common)
        msg = router.invoke("hi")
        print(
            json.dumps(
                {
                    "served": msg.response_metadata["model_name"],
                    "excluded": msg.response_metadata["routing"]["excluded"],
                }
            )
        )
    elif mode == "budget":
        router = WandbRouter(
            models="meta-llama/Llama-3.3-70B-Instruct", budget_usd=0.002, **common
        )
        costs: list[float] = []
        try:
            for _ in range(500):
                msg = router.invoke("spend a little " * 20)
                costs.append(msg.response_metadata["cost_usd"])
        except BudgetExceededError:
            pass
        print(json.dumps({"costs": costs, "spent": router.spent_usd}))
    elif mode == "crowd":
        print(json.dumps(crowd(common, int(sys.argv[5]), int(sys.argv[6]))))
    elif mode == "outage":
        print(json.dumps(outage(redis_url, common)))


def crowd(common: dict[str, str], cap: int, calls: int) -> dict[str, object]:
    """Many callers at once behind one fleet-wide cap; what the state warned."""
    import logging

    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    logging.getLogger("langchain_wandb_router").addHandler(Collect())
    # What is shown here is the cap held by a crowd, not how soon an outage is
    # seen: on a CPU-starved machine (CI's 2 cores under the whole suite)
    # hundreds of connects can outlast the 1 s defaults, and the fallback that
    # follows is right but is not this test's subject (the outage tests are).
    state = RedisState(common["state"], timeout=10.0, connect_timeout=10.0)
    router = WandbRouter(
        models=QWEN,
        max_in_flight=cap,
        deadline=120,
        **{**common, "state": state},
    )

    async def burst() -> int:
        answers = await asyncio.gather(*(router.ainvoke("hi") for _ in range(calls)))
        return sum(1 for m in answers if m.text)

    return {"answered": asyncio.run(burst()), "warnings": warnings}


def outage(redis_url: str, common: dict[str, str]) -> dict[str, object]:
    """Many capped, budgeted calls while the test kills and restarts Redis."""
    import time

    import redis

    from langchain_wandb_router.state._redis import RedisState

    # A short retry interval: the outage in the test lasts about a second.
    state = RedisState.from_url(redis_url, retry_interval=0.2)
    router = WandbRouter(
        models=LLAMA,
        max_in_flight=3,
        budget_usd=float(sys.argv[5]),
        model_settings={"max_tokens": 64},
        **{**common, "state": state},
    )

    async def one(i: int) -> float | None:
        try:
            msg = await router.ainvoke(f"spend a little {i} " * 20)
        except BudgetExceededError:
            return None
        return float(msg.response_metadata["cost_usd"])

    async def burst() -> list[float | None]:
        return await asyncio.gather(*(one(i) for i in range(int(sys.argv[6]))))

    costs = asyncio.run(burst())
    # Wait for Redis, then let this process replay what it could not send.
    probe = redis.Redis.from_url(redis_url.replace("redis+cluster", "redis"))
    while True:
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    time.sleep(0.3)  # past the retry interval
    spent = router.spent_usd
    return {"costs": [c for c in costs if c is not None], "spent": spent}


if __name__ == "__main__":
    main()
