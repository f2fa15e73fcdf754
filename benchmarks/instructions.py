"""Instructions per call, counted by valgrind: a figure the machine does not move.

``make bench`` times CPU, and on a shared 2-core machine its ratios move by
several hundredths from run to run: more than the change between two versions
of the package one wants to compare. Valgrind's callgrind counts the
instructions the client process executes instead, which is the same on every
run of the same code.

No server is involved: httpcore's pools answer from bodies recorded once from
the bundled emulator (one SSE event per piece, as W&B sends them), so the count
is the client's own work (ChatWandb, WandbRouter, LangChain core, httpcore's
response objects), with no sockets and no waiting. Each mode runs twice under
callgrind, with few and with many calls; the difference divided by the
difference in calls is one call's count, start-up and imports cancelled out.

Where objects land still moves a call's count by a percent or two either way
(obmalloc arenas emptied and refilled on every call, collisions in the type
attribute cache). ``--layouts`` repeats each measurement with heaps of
different sizes before the calls and prints the mean.

    python benchmarks/instructions.py [--tree PATH ...] [--layouts 2] [--modes ...]

``--tree`` adds another checkout, measured in the same run with its package on
``PYTHONPATH`` (``git worktree add /tmp/before <rev>`` makes one), for the
ratios of this checkout against it. Needs valgrind (Debian's package). It takes
about a minute of CPU per measurement, spread over the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MODEL = "Qwen/Qwen3-235B-A22B-Instruct-2507"
PROMPT = "Tell me a story"
MODES = ("invoke", "ainvoke", "stream", "astream", "router-invoke")
RATIOS = (
    ("ainvoke", "invoke"),
    ("astream", "stream"),
    ("router-invoke", "invoke"),
)
FEW, MANY = 10, 60
WARM_UP = 20
# Objects kept alive before the counted calls, one size per layout.
LAYOUT_OBJECTS = (0, 20_000, 60_000, 150_000)


# ------------------------------------------------------------------ the client


def record_bodies(path: Path) -> None:
    """A JSON answer and an SSE stream from the bundled emulator, to replay."""
    import httpx

    from langchain_wandb_router.testing import WandbEmulator

    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with WandbEmulator() as emu:
        # make bench's answer: 126 words, ~130 chunks when streamed.
        emu.respond_with(content=" ".join(f"word{i}" for i in range(126)), times=None)
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        url = f"{emu.base_url}/chat/completions"
        answer = httpx.post(url, json=body, headers=headers).text
        events = httpx.post(url, json=stream, headers=headers).text
    path.write_text(json.dumps({"json": answer, "sse": events}))


def replay(path: Path) -> None:
    """Make httpcore's pools answer every request from the recorded bodies."""
    import httpcore

    bodies = json.loads(path.read_text())
    answer = bodies["json"].encode()
    pieces = [event + b"\n\n" for event in bodies["sse"].encode().split(b"\n\n")]
    pieces = [piece for piece in pieces if piece.strip()]

    def response(sent: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        if b'"stream":true' in sent:
            return [(b"content-type", b"text/event-stream")], list(pieces)
        return [(b"content-type", b"application/json")], [answer]

    class Replayed:
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks

        async def __aiter__(self) -> Any:
            for chunk in self.chunks:
                yield chunk

        async def aclose(self) -> None:
            return None

    def handle(pool: Any, request: Any) -> Any:
        headers, chunks = response(b"".join(request.stream))
        return httpcore.Response(200, headers=headers, content=chunks)

    async def ahandle(pool: Any, request: Any) -> Any:
        stream = request.stream
        if hasattr(stream, "__aiter__"):
            sent = b"".join([part async for part in stream])
        else:
            sent = b"".join(stream)
        headers, chunks = response(sent)
        return httpcore.Response(200, headers=headers, content=Replayed(chunks))

    httpcore.ConnectionPool.handle_request = handle  # type: ignore[method-assign]
    httpcore.AsyncConnectionPool.handle_async_request = ahandle  # type: ignore[method-assign]


def calls(mode: str) -> Callable[[int], None]:
    """Run ``n`` calls of ``mode`` (the public API only: any version works)."""
    from langchain_wandb_router import ChatWandb, WandbRouter

    base_url, key = "http://127.0.0.1:9/v1", "replayed-key-0123456789abcdef"
    chat = ChatWandb(model=MODEL, api_key=key, base_url=base_url, max_retries=0)  # type: ignore[call-arg]
    router = WandbRouter(
        models=[MODEL, "deepseek-ai/DeepSeek-V3.1"], api_key=key, base_url=base_url
    )
    loop = asyncio.new_event_loop()

    async def adrain() -> list[Any]:
        return [chunk async for chunk in chat.astream(PROMPT)]

    async def awaited(n: int, call: Callable[[], Any]) -> None:
        for _ in range(n):
            await call()

    blocking: dict[str, Callable[[], Any]] = {
        "invoke": lambda: chat.invoke(PROMPT),
        "stream": lambda: list(chat.stream(PROMPT)),
        "router-invoke": lambda: router.invoke(PROMPT),
    }
    awaiting: dict[str, Callable[[], Any]] = {
        "ainvoke": lambda: chat.ainvoke(PROMPT),
        "astream": adrain,
    }
    if mode in blocking:
        call = blocking[mode]

        def run(n: int) -> None:
            for _ in range(n):
                call()

        return run
    acall = awaiting[mode]
    return lambda n: loop.run_until_complete(awaited(n, acall))


def child(bodies: Path, mode: str, n: int, layout: int) -> None:
    """The process callgrind counts: warm up, shape the heap, make ``n`` calls."""
    replay(bodies)
    run = calls(mode)
    run(WARM_UP)
    kept = [object() for _ in range(LAYOUT_OBJECTS[layout])]
    gc.collect()
    gc.disable()
    run(n)
    del kept


# ------------------------------------------------------------------ counting


def counted(tree: str | None, bodies: Path, mode: str, n: int, layout: int) -> int:
    """Instructions the child executes (start-up included)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if tree is not None:
        env["PYTHONPATH"] = tree
    with tempfile.TemporaryDirectory() as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=no",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            __file__,
            "--child",
            str(bodies),
            mode,
            str(n),
            str(layout),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"callgrind run failed ({mode}, {n}):\n{done.stderr[-2000:]}"
        )
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="another checkout")
    parser.add_argument("--layouts", type=int, default=2, choices=range(1, 5))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        bodies, mode, n, layout = args.child
        child(Path(bodies), mode, int(n), int(layout))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    trees: list[tuple[str, str | None]] = [("this checkout", None)]
    trees += [(path, str(Path(path).resolve())) for path in args.tree]
    with tempfile.TemporaryDirectory() as tmp:
        bodies = Path(tmp) / "bodies.json"
        record_bodies(bodies)
        runs = [
            (name, tree, mode, layout, n)
            for name, tree in trees
            for mode in args.modes
            for layout in range(args.layouts)
            for n in (FEW, MANY)
        ]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = {
                (name, mode, layout, n): pool.submit(
                    counted, tree, bodies, mode, n, layout
                )
                for name, tree, mode, layout, n in runs
            }
            counts = {key: future.result() for key, future in futures.items()}
    # One call's count: the difference between many calls and few.
    figures = {
        (name, mode): sum(
            (counts[name, mode, layout, MANY] - counts[name, mode, layout, FEW])
            / (MANY - FEW)
            for layout in range(args.layouts)
        )
        / args.layouts
        for name, _ in trees
        for mode in args.modes
    }
    print_tables(figures, [name for name, _ in trees], args.modes, args.layouts)


def print_tables(
    figures: dict[tuple[str, str], float],
    names: list[str],
    modes: list[str],
    layouts: int,
) -> None:
    print(
        f"Instructions per call (thousands), callgrind, replayed answers; "
        f"mean of {layouts} heap layout(s)"
    )
    print(f"{'mode':<16}" + "".join(f"{name[-24:]:>26}" for name in names))
    for mode in modes:
        row = "".join(f"{figures[name, mode] / 1000:>26,.1f}" for name in names)
        print(f"{mode:<16}{row}")
    print("\nRatios")
    for top, bottom in RATIOS:
        if top in modes and bottom in modes:
            row = "".join(
                f"{figures[name, top] / figures[name, bottom]:>26.3f}" for name in names
            )
            print(f"{top + ' / ' + bottom:<24}{row[8:]}")
    if len(names) > 1:
        print(f"\n{names[0]} against each other checkout (its count = 1.000)")
        for other in names[1:]:
            for mode in modes:
                change = figures[names[0], mode] / figures[other, mode]
                print(f"  {mode:<16} {change:.3f}  ({other})")


if __name__ == "__main__":
    main()
