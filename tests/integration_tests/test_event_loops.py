"""ChatWandb's async calls on every asyncio loop: asyncio's own and uvloop."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest
import uvloop

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def llm_for(emulator: WandbEmulator) -> ChatWandb:
    return ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url)


async def test_async_tests_run_on_the_loop_their_id_names(
    request: pytest.FixtureRequest,
) -> None:
    # conftest runs every async test on both loops; check it really does.
    loop = asyncio.get_running_loop()
    assert ("uvloop" in request.node.name) == isinstance(loop, uvloop.Loop)
    assert ("asyncio" in request.node.name) == (
        type(loop).__module__.startswith("asyncio")
    )


def test_uvloop_run_ainvoke_and_astream(emulator: WandbEmulator) -> None:
    # Under uvicorn with uvloop every async call failed: the old home-made
    # backend passed asyncio-only arguments to uvloop's create_connection.
    llm = llm_for(emulator)
    answer = uvloop.run(llm.ainvoke("hi"))
    assert answer.text

    async def stream() -> str:
        return "".join([chunk.text async for chunk in llm.astream("hi")])

    assert uvloop.run(stream()) == answer.text


async def test_concurrent_calls_on_this_loop(emulator: WandbEmulator) -> None:
    llm = llm_for(emulator)
    answers = await asyncio.gather(*(llm.ainvoke(f"hi {n}") for n in range(20)))
    assert all(a.text for a in answers)

    async def stream() -> str:
        return "".join([chunk.text async for chunk in llm.astream("hi")])

    texts = await asyncio.gather(*(stream() for _ in range(10)))
    assert all(texts)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_many_uvloop_runs_leave_no_sockets_behind(emulator: WandbEmulator) -> None:
    llm = llm_for(emulator)
    assert uvloop.run(llm.ainvoke("hi")).text  # first-use costs before counting
    gc.collect()
    before = open_fds()
    for _ in range(30):
        assert uvloop.run(llm.ainvoke("hi")).text
    # Each run's pool is closed by its loop's shutdown; the emulator closes its
    # end a moment later (bounded wait).
    deadline = time.monotonic() + 10
    while open_fds() > before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
        gc.collect()
    assert open_fds() <= before + 4
