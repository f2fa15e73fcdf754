"""One worker process of the fleet tests: a WandbRouter sharing state through Redis.

Usage: python router_fleet_worker.py MODE REDIS_URL BASE_URL API_KEY
Prints one JSON line with what happened.
"""

from __future__ import annotations

import asyncio
import json
import sys

from langchain_wandb_router import BudgetExceededError, WandbRouter

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"


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
        print(json.dumps({"served": msg.response_metadata["model_name"],
                          "excluded": msg.response_metadata["routing"]["excluded"]}))
    elif mode == "budget":
        router = WandbRouter(models="meta-llama/Llama-3.3-70B-Instruct", budget_usd=0.002, **common)
        costs: list[float] = []
        try:
            for _ in range(500):
                msg = router.invoke("spend a little " * 20)
                costs.append(msg.response_metadata["cost_usd"])
        except BudgetExceededError:
            pass
        print(json.dumps({"costs": costs, "spent": router.spent_usd}))


if __name__ == "__main__":
    main()
