"""A worker process for the multi-process Redis state test (not a test module).

Usage: ``python redis_state_worker.py URL KEY HARD_LIMIT THREADS SECONDS``.
Each thread repeatedly acquires a slot of KEY, counts itself in as a holder on
a Redis counter, holds briefly, counts itself out and releases. Prints JSON:
the most holders any thread saw at once and how many slots were taken.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import redis

from langchain_wandb_router.state._redis import RedisState


def main() -> None:
    url, key, hard, threads, seconds = sys.argv[1:6]
    state = RedisState.from_url(url, on_error="closed")
    counter = redis.Redis.from_url(url)
    holders_key = f"{key}:test-holders"
    seen: list[int] = []
    taken: list[int] = []
    stop = time.monotonic() + float(seconds)

    def work() -> None:
        most = count = 0
        while time.monotonic() < stop:
            lease = state.acquire(key, int(hard), deadline=time.monotonic() + 30)
            holders = int(counter.incr(holders_key))
            counter.expire(holders_key, 60)
            most = max(most, holders)
            time.sleep(0.002)
            counter.decr(holders_key)
            state.release(lease, "ok")
            count += 1
        seen.append(most)
        taken.append(count)

    pool = [threading.Thread(target=work) for _ in range(int(threads))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps({"max_holders": max(seen), "acquired": sum(taken)}))


if __name__ == "__main__":
    main()
