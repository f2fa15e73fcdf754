"""Client CPU per call: raw httpx, the openai SDK, ChatOpenAI, ChatWandb, WandbRouter.

The emulator runs in another process, so only the client's own work is
measured (``time.process_time`` of this process). Every client talks to the
same server in the same run; what matters is the ratio between them.

    make bench            # or: python benchmarks/run.py --calls 300
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

REPLY_WORDS = 126  # + role, finish and usage events: ~130 chunks per stream
MODEL = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langchain_wandb_router.testing",
            "--reply-words",
            str(REPLY_WORDS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    key = proc.stdout.readline().strip()
    return proc, base_url, key


def cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    """CPU seconds per call over ``calls`` calls.

    The garbage collector is run before and paused during the sample, so a
    collection does not land on whichever client happens to be running.
    """
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(calls):
            fn()
        return (time.process_time() - start) / calls
    finally:
        gc.enable()


def measure(
    clients: dict[str, dict[str, Callable[[], object]]], calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Median per client and mode; clients interleave within each round so that
    drift in the machine's speed lands on all of them alike."""
    for modes in clients.values():
        for fn in modes.values():
            for _ in range(10):
                fn()  # warm-up: pools, caches, lazy imports
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, modes in clients.items():
            for mode, fn in modes.items():
                samples.setdefault((name, mode), []).append(cpu_per_call(fn, calls))
    results: dict[str, dict[str, float]] = {}
    for (name, mode), values in samples.items():
        results.setdefault(name, {})[mode] = statistics.median(values)
    return results


def build_clients(
    base_url: str, key: str
) -> dict[str, dict[str, Callable[[], object]]]:
    import httpx
    import openai
    from langchain_openai import ChatOpenAI

    from langchain_wandb_router import ChatWandb, WandbRouter

    url = f"{base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a story"}],
    }
    stream_body = json.dumps(
        {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    client = httpx.Client()

    def raw_invoke() -> object:
        return json.loads(
            client.post(url, content=json.dumps(body), headers=headers).content
        )

    def raw_stream() -> object:
        out = []
        with client.stream("POST", url, content=stream_body, headers=headers) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    out.append(json.loads(line[6:]))
        return out

    sdk = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0)

    def sdk_invoke() -> object:
        return sdk.chat.completions.create(model=MODEL, messages=body["messages"])  # type: ignore[arg-type]

    def sdk_stream() -> object:
        return list(
            sdk.chat.completions.create(
                model=MODEL,
                messages=body["messages"],
                stream=True,
                stream_options={"include_usage": True},  # type: ignore[arg-type]
            )
        )

    chat_openai = ChatOpenAI(
        model=MODEL, api_key=key, base_url=base_url, stream_usage=True, max_retries=0
    )  # type: ignore[arg-type]
    wandb = ChatWandb(model=MODEL, api_key=key, base_url=base_url, max_retries=0)
    router = WandbRouter(
        models=[MODEL, "deepseek-ai/DeepSeek-V3.1"], api_key=key, base_url=base_url
    )
    prompt = "Tell me a story"

    def drain(model: object) -> Callable[[], object]:
        return lambda: list(model.stream(prompt))  # type: ignore[attr-defined]

    def call(model: object) -> Callable[[], object]:
        return lambda: model.invoke(prompt)  # type: ignore[attr-defined]

    return {
        "raw httpx": {"invoke": raw_invoke, "stream": raw_stream},
        "openai SDK": {"invoke": sdk_invoke, "stream": sdk_stream},
        "ChatOpenAI": {"invoke": call(chat_openai), "stream": drain(chat_openai)},
        "ChatWandb": {"invoke": call(wandb), "stream": drain(wandb)},
        "WandbRouter": {"invoke": call(router), "stream": drain(router)},
    }


def import_time(statement: str) -> float:
    """Median wall seconds of a fresh interpreter running ``statement``."""
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, base_url, key = start_emulator()
    try:
        results = measure(build_clients(base_url, key), args.calls, args.rounds)
    finally:
        proc.terminate()
        proc.wait()

    base = results["ChatOpenAI"]
    print(
        f"Client CPU per call (ms), median of {args.rounds} interleaved rounds x "
        f"{args.calls} calls; stream = {REPLY_WORDS + 4} chunks"
    )
    print(
        f"{'client':<12} {'invoke':>8} {'x ChatOpenAI':>13} {'stream':>8} {'x ChatOpenAI':>13}"
    )
    for name, r in results.items():
        print(
            f"{name:<12} {r['invoke'] * 1e3:8.3f} {r['invoke'] / base['invoke']:13.2f} "
            f"{r['stream'] * 1e3:8.3f} {r['stream'] / base['stream']:13.2f}"
        )
    w, rt = results["ChatWandb"], results["WandbRouter"]
    print(
        f"\nWandbRouter / ChatWandb: invoke {rt['invoke'] / w['invoke']:.2f}x, "
        f"stream {rt['stream'] / w['stream']:.2f}x (target <= 1.15x)"
    )
    print(
        f"ChatWandb / ChatOpenAI: invoke {w['invoke'] / base['invoke']:.2f}x (target <= 0.70x), "
        f"stream {w['stream'] / base['stream']:.2f}x (target <= 0.35x)"
    )
    print("\nImport time (fresh interpreter, wall s, median of 5):")
    for label, stmt in [
        ("python -c pass", "pass"),
        ("import langchain_wandb_router", "import langchain_wandb_router"),
        (
            "from langchain_wandb_router import ChatWandb",
            "from langchain_wandb_router import ChatWandb",
        ),
        (
            "from langchain_openai import ChatOpenAI",
            "from langchain_openai import ChatOpenAI",
        ),
    ]:
        print(f"  {label:<46} {import_time(stmt):.3f}")


if __name__ == "__main__":
    main()
