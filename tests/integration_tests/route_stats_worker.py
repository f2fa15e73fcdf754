"""One worker process of the route statistics tests: records figures in Redis.

Usage: python route_stats_worker.py REDIS_URL BASE_URL API_KEY PROJECT CALLS MODEL...
Calls each MODEL ``CALLS`` times (invokes, then as many streams) and prints
one JSON line: this worker's view of ``router.stats()``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from langchain_wandb_router import WandbRouter


async def work(router: WandbRouter, models: list[str], calls: int) -> None:
    for model in models:
        for i in range(calls):
            await router.ainvoke(f"call {i}", model=model)
            async for _chunk in router.astream(f"stream {i}", model=model):
                pass


def main() -> None:
    redis_url, base_url, api_key, project, calls, *models = sys.argv[1:]
    router = WandbRouter(
        models=models,
        api_key=api_key,
        base_url=base_url,
        project=project,
        state=redis_url,
        state_on_error="closed",
    )
    asyncio.run(work(router, models, int(calls)))
    print(json.dumps(router.stats()))


if __name__ == "__main__":
    main()
