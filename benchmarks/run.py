"""Client CPU per call: raw httpx, the openai SDK, ChatOpenAI, ChatWandb, WandbRouter.

The emulator runs in another process, so only the client's own work is
measured (``time.process_time`` of this process). Every client talks to the
same server in the same run; what matters is the ratio between them.

Scenarios:

- invoke / stream: one short prompt, a ~130-chunk streamed answer;
- history: invoke with an agent's 300-message history (user turns, tool
  calls, tool results, answers) and a tool bound; raw httpx posts the very
  body ChatWandb sends, encoded beforehand;
- child floor: the least a model that calls ChatWandb as a child run can do
  (ensure the config, configure its callbacks, call ``invoke``/``stream``):
  the yardstick for WandbRouter's own overhead;
- no-I/O model: a chat model answering at once with native ``_generate`` and
  ``_agenerate``; what LangChain itself costs per ``invoke``/``ainvoke``;
- ainvoke / astream: the async paths, calls awaited one after another in one
  event loop;
- burst: ``--concurrent`` streams at once (``astream``), each contender in a
  fresh interpreter so its peak RSS is its own.

Then the goals of the performance issue, each with its measured ratio.

    make bench            # or: python benchmarks/run.py --calls 50 --rounds 7 [--no-burst]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

REPLY_WORDS = 126  # + role, finish and usage events: ~130 chunks per stream
MODEL = "Qwen/Qwen3-235B-A22B-Instruct-2507"
HISTORY_SIZE = 300
PROMPT = "Tell me a story"
PROSE = (
    "The forecast for Zürich shows light rain in the morning, clearing by noon; "
    "temperatures stay between 9 and 14 °C with a westerly wind. "
)
# raw httpx's pool for the burst: ChatWandb's own cap (the openai SDK's is 1000).
RAW_MAX_CONNECTIONS = 200

Batch = Callable[[int], object]
"""Run this many calls of one client in one mode."""

# The goals: numerator and denominator ("client:mode"), the most the
# ratio of their CPU per call may be (None: shown for context only).
GOALS: tuple[tuple[str, str, float | None], ...] = (
    ("ChatWandb:stream", "raw httpx:stream", 1.8),
    ("ChatWandb:stream", "ChatOpenAI:stream", 0.25),
    ("ChatWandb:invoke", "raw httpx:invoke", 1.3),
    ("ChatWandb:history", "raw httpx:history", 1.6),
    ("WandbRouter:invoke", "ChatWandb:invoke", 1.1),
    ("WandbRouter:stream", "ChatWandb:stream", 1.1),
    ("ChatWandb:ainvoke", "ChatWandb:invoke", 1.1),
    ("ChatWandb:astream", "ChatWandb:stream", 1.1),
    ("WandbRouter:ainvoke", "WandbRouter:invoke", 1.1),
    ("WandbRouter:astream", "WandbRouter:stream", 1.1),
    ("no-I/O model:ainvoke", "no-I/O model:invoke", None),
    ("child floor:invoke", "ChatWandb:invoke", None),
    ("child floor:stream", "ChatWandb:stream", None),
    ("raw httpx:ainvoke", "raw httpx:invoke", None),
    ("raw httpx:astream", "raw httpx:stream", None),
    ("ChatWandb:history", "ChatOpenAI:history", None),
)


# ------------------------------------------------------------------ emulator


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


# ----------------------------------------------------------------- measuring


def cpu_per_call(batch: Batch, calls: int) -> float:
    """CPU seconds per call over ``calls`` calls.

    The garbage collector is run before and paused during the sample, so a
    collection does not land on whichever client happens to be running.
    """
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        batch(calls)
        return (time.process_time() - start) / calls
    finally:
        gc.enable()


def measure(
    clients: dict[str, dict[str, Batch]], calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    """The least CPU per call of each client and mode over the rounds.

    Clients interleave within each round, in an order rotated from round to
    round, so drift in the machine's speed lands on all of them alike. The least, not the median: on a shared machine other
    tenants only ever add to a sample (evicted caches, stolen cycles), so the
    least sample is the closest to the client's own cost. Over three runs
    on the 2-core CI machine, the goal ratios moved by 0.09 on average with
    the least and by 0.24 with the median.
    """
    for modes in clients.values():
        for batch in modes.values():
            batch(10)  # warm-up: pools, caches, lazy imports
    order = [
        (name, mode, batch)
        for name, modes in clients.items()
        for mode, batch in modes.items()
    ]
    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        # Each round starts further on in the list, so no client always runs
        # at the same point of a round (or after the same neighbour).
        shift = round_ * len(order) // rounds
        for name, mode, batch in order[shift:] + order[:shift]:
            samples.setdefault((name, mode), []).append(cpu_per_call(batch, calls))
    results: dict[str, dict[str, float]] = {}
    for (name, mode), values in samples.items():
        results.setdefault(name, {})[mode] = min(values)
    return results


def sync_batch(fn: Callable[[], object]) -> Batch:
    def batch(n: int) -> None:
        for _ in range(n):
            fn()

    return batch


def async_batch(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[object]]
) -> Batch:
    """``n`` awaited calls in one pass of the loop (no per-call loop start-up)."""

    async def many(n: int) -> None:
        for _ in range(n):
            await fn()

    return lambda n: loop.run_until_complete(many(n))


# ------------------------------------------------------------------ the calls


def agent_history(size: int) -> list[Any]:
    """An agent's state: user turns, two tool calls each, their results, answers.

    It ends on a user turn that names no tool, so the answer is text.
    """
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )

    messages: list[BaseMessage] = [SystemMessage("You plan trips. " * 30)]
    turn = 0
    while len(messages) < size - 1:
        turn += 1
        messages.append(HumanMessage(f"Turn {turn}: the weather in city {turn}?"))
        calls: list[dict[str, Any]] = [
            {
                "name": "get_weather",
                "args": {"city": f"City {turn}", "days": d + 1},
                "id": f"call_{turn}_{d}",
            }
            for d in range(2)
        ]
        messages.append(AIMessage("", tool_calls=calls))
        messages.extend(
            ToolMessage(
                json.dumps({"city": c["args"]["city"], "report": PROSE}),
                tool_call_id=c["id"],
            )
            for c in calls
        )
        messages.append(AIMessage(PROSE * 4))
    messages = messages[: size - 1]
    messages.append(HumanMessage("Thanks, please sum up our conversation."))
    return messages


def weather_tool() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }


def _no_io_model_class() -> type:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class NoIOChatModel(BaseChatModel):
        """Answers at once: LangChain's own cost of a call, sync or async."""

        @property
        def _llm_type(self) -> str:
            return "no-io"

        def _generate(
            self,
            messages: Any,
            stop: Any = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=AIMessage("ok"))])

        async def _agenerate(
            self,
            messages: Any,
            stop: Any = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            # Native, not core's default (which runs _generate in a thread).
            return self._generate(messages)

    return NoIOChatModel


def build_clients(
    base_url: str, key: str, loop: asyncio.AbstractEventLoop
) -> dict[str, dict[str, Batch]]:
    import httpx
    import openai
    from langchain_core.runnables.config import (
        ensure_config,
        get_callback_manager_for_config,
    )
    from langchain_openai import ChatOpenAI

    from langchain_wandb_router import ChatWandb, WandbRouter, transport as _transport

    NoIOChatModel = _no_io_model_class()

    url = f"{base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    messages: list[Any] = [{"role": "user", "content": PROMPT}]
    body = {"model": MODEL, "messages": messages}
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

    aclient = httpx.AsyncClient()

    async def raw_ainvoke() -> object:
        response = await aclient.post(url, content=json.dumps(body), headers=headers)
        return json.loads(response.content)

    async def raw_astream() -> object:
        out = []
        async with aclient.stream(
            "POST", url, content=stream_body, headers=headers
        ) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    out.append(json.loads(line[6:]))
        return out

    sdk = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0)

    def sdk_invoke() -> object:
        return sdk.chat.completions.create(model=MODEL, messages=messages)

    def sdk_stream() -> object:
        return list(
            sdk.chat.completions.create(
                model=MODEL,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )

    chat_openai = ChatOpenAI(
        model=MODEL, api_key=key, base_url=base_url, stream_usage=True, max_retries=0
    )
    wandb = ChatWandb(model=MODEL, api_key=key, base_url=base_url, max_retries=0)  # type: ignore[call-arg]
    router = WandbRouter(
        models=[MODEL, "deepseek-ai/DeepSeek-V3.1"], api_key=key, base_url=base_url
    )

    history = agent_history(HISTORY_SIZE)
    wandb_agent = wandb.bind_tools([weather_tool()])
    openai_agent = chat_openai.bind_tools([weather_tool()])
    # The very bytes ChatWandb sends for this call, encoded once up front.
    history_body = _transport.encode_body(
        wandb._get_request_payload(history, stream=False, tools=[weather_tool()])
    )

    def raw_history() -> object:
        return json.loads(
            client.post(url, content=history_body, headers=headers).content
        )

    no_io = NoIOChatModel()

    def child_floor_invoke() -> object:
        config = ensure_config(None)
        get_callback_manager_for_config(config)
        return wandb.invoke(PROMPT, config)

    def child_floor_stream() -> object:
        config = ensure_config(None)
        get_callback_manager_for_config(config)
        return list(wandb.stream(PROMPT, config))

    def call(model: Any) -> Batch:
        return sync_batch(lambda: model.invoke(PROMPT))

    def drain(model: Any) -> Batch:
        return sync_batch(lambda: list(model.stream(PROMPT)))

    def acall(model: Any) -> Batch:
        return async_batch(loop, lambda: model.ainvoke(PROMPT))

    def adrain(model: Any) -> Batch:
        async def run() -> object:
            return [chunk async for chunk in model.astream(PROMPT)]

        return async_batch(loop, run)

    return {
        "raw httpx": {
            "invoke": sync_batch(raw_invoke),
            "stream": sync_batch(raw_stream),
            "history": sync_batch(raw_history),
            "ainvoke": async_batch(loop, raw_ainvoke),
            "astream": async_batch(loop, raw_astream),
        },
        "openai SDK": {
            "invoke": sync_batch(sdk_invoke),
            "stream": sync_batch(sdk_stream),
        },
        "ChatOpenAI": {
            "invoke": call(chat_openai),
            "stream": drain(chat_openai),
            "history": sync_batch(lambda: openai_agent.invoke(history)),
        },
        "ChatWandb": {
            "invoke": call(wandb),
            "stream": drain(wandb),
            "history": sync_batch(lambda: wandb_agent.invoke(history)),
            "ainvoke": acall(wandb),
            "astream": adrain(wandb),
        },
        "WandbRouter": {
            "invoke": call(router),
            "stream": drain(router),
            "ainvoke": acall(router),
            "astream": adrain(router),
        },
        "no-I/O model": {
            "invoke": call(no_io),
            "ainvoke": acall(no_io),
        },
        "child floor": {
            "invoke": sync_batch(child_floor_invoke),
            "stream": sync_batch(child_floor_stream),
        },
    }


# --------------------------------------------------------- concurrent streams


def _burst_caller(
    contender: str, base_url: str, key: str
) -> Callable[[], Awaitable[int]]:
    """One streamed call for ``contender``, returning how many chunks it got."""
    if contender == "raw httpx":
        import httpx

        limits = httpx.Limits(
            max_connections=RAW_MAX_CONNECTIONS,
            max_keepalive_connections=RAW_MAX_CONNECTIONS,
        )
        client = httpx.AsyncClient(limits=limits, timeout=None)
        url = f"{base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        body = json.dumps(
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )

        async def raw() -> int:
            count = 0
            async with client.stream(
                "POST", url, content=body, headers=headers
            ) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        json.loads(line[6:])
                        count += 1
            return count

        return raw
    model: Any
    if contender == "ChatOpenAI":
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(
            model=MODEL,
            api_key=key,
            base_url=base_url,
            stream_usage=True,
            max_retries=0,
        )
    else:
        from langchain_wandb_router import ChatWandb

        model = ChatWandb(model=MODEL, api_key=key, base_url=base_url, max_retries=0)  # type: ignore[call-arg]

    async def chat() -> int:
        return len([chunk async for chunk in model.astream(PROMPT)])

    return chat


def _rss_kb(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of this process from ``/proc``, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Start ``VmHWM`` again from the current RSS (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def burst_child(contender: str, base_url: str, key: str, n: int) -> None:
    """Run in a fresh interpreter: ``n`` concurrent streams; print one JSON line."""

    async def main() -> dict[str, Any]:
        call = _burst_caller(contender, base_url, key)
        for _ in range(5):
            await call()  # warm-up: imports, pool, caches
        gc.collect()
        reset = _reset_peak_rss()
        before = _rss_kb("VmRSS")
        cpu, wall = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(call() for _ in range(n)), return_exceptions=True
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        failures = [r for r in results if isinstance(r, BaseException)]
        return {
            "cpu": cpu,
            "wall": wall,
            "rss_before_kb": before,
            # Without the reset, VmHWM is the peak since the process started.
            "peak_rss_kb": _rss_kb("VmHWM"),
            "peak_reset": reset,
            "failures": len(failures),
            "first_failure": repr(failures[0]) if failures else None,
            "chunks": sum(r for r in results if isinstance(r, int)),
        }

    print(json.dumps(asyncio.run(main())))


def burst(base_url: str, key: str, n: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for contender in ("raw httpx", "ChatOpenAI", "ChatWandb"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--burst-child",
                contender,
                base_url,
                key,
                str(n),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        out[contender] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# -------------------------------------------------------------------- report


def import_time(statement: str, repeat: int = 3) -> float:
    """Median wall seconds of a fresh interpreter running ``statement``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def print_cpu_table(
    results: dict[str, dict[str, float]], calls: int, rounds: int
) -> None:
    modes = ("invoke", "stream", "history", "ainvoke", "astream")
    print(
        f"Client CPU per call (ms), least of {rounds} interleaved rounds x {calls} "
        f"calls; stream = {REPLY_WORDS + 4} chunks, history = {HISTORY_SIZE} messages"
    )
    print(f"{'client':<13}" + "".join(f"{m:>10}" for m in modes))
    for name, r in results.items():
        cells = "".join(
            f"{r[m] * 1e3:10.3f}" if m in r else f"{'-':>10}" for m in modes
        )
        print(f"{name:<13}{cells}")


def print_goals(results: dict[str, dict[str, float]]) -> None:
    def cpu(key: str) -> float:
        client, mode = key.split(":")
        return results[client][mode]

    print("\nGoals: ratio of client CPU per call")
    print(f"{'':<44}{'ratio':>7}{'goal':>9}")
    for numerator, denominator, target in GOALS:
        label = f"{numerator} / {denominator}"
        ratio = cpu(numerator) / cpu(denominator)
        if target is None:
            print(f"{label:<44}{ratio:7.2f}{'(context)':>11}")
        else:
            verdict = "met" if ratio <= target else "MISSED"
            print(
                f"{label:<44}{ratio:7.2f}{'<= ' + format(target, '.2f'):>9}  {verdict}"
            )


def print_burst(figures: dict[str, dict[str, Any]], n: int) -> None:
    print(
        f"\n{n} concurrent astream calls, one fresh process per client "
        f"(raw httpx pool: {RAW_MAX_CONNECTIONS} connections). Client CPU for "
        "the burst; peak RSS of the process, and its rise over the RSS before "
        "the burst; x = ratio to raw httpx / ChatOpenAI"
    )
    print(
        f"{'client':<12}{'CPU s':>8}{'x raw':>7}{'x COAI':>8}{'wall s':>8}"
        f"{'peak MiB':>10}{'rise MiB':>10}{'x raw':>7}{'x COAI':>8}  notes"
    )
    raw, coai = figures["raw httpx"], figures["ChatOpenAI"]

    def grow(f: dict[str, Any]) -> float:
        return max(1.0, float(f["peak_rss_kb"] - f["rss_before_kb"])) / 1024

    for name, f in figures.items():
        notes = f"{f['chunks']} chunks"
        if not f["peak_reset"]:
            notes += " (peak since start)"
        if f["failures"]:
            notes += f", {f['failures']} failed: {f['first_failure']}"
        print(
            f"{name:<12}{f['cpu']:8.2f}{f['cpu'] / raw['cpu']:7.2f}"
            f"{f['cpu'] / coai['cpu']:8.2f}{f['wall']:8.2f}"
            f"{f['peak_rss_kb'] / 1024:10.1f}{grow(f):10.1f}"
            f"{grow(f) / grow(raw):7.2f}{grow(f) / grow(coai):8.2f}  {notes}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument(
        "--no-burst", action="store_true", help="skip the concurrent-streams burst"
    )
    parser.add_argument("--burst-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.burst_child:
        contender, base_url, key, n = args.burst_child
        burst_child(contender, base_url, key, int(n))
        return
    proc, base_url, key = start_emulator()
    loop = asyncio.new_event_loop()
    try:
        results = measure(build_clients(base_url, key, loop), args.calls, args.rounds)
        figures = None if args.no_burst else burst(base_url, key, args.concurrent)
    finally:
        loop.close()
        proc.terminate()
        proc.wait()

    print_cpu_table(results, args.calls, args.rounds)
    print_goals(results)
    if figures is not None:
        print_burst(figures, args.concurrent)
    print("\nImport time (fresh interpreter, wall s, median of 3):")
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
