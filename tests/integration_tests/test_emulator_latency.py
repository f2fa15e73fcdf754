"""The emulator's per-model latency over HTTP: what is drawn, when bytes go out.

Timings are asserted as lower bounds only (a reply never comes before its
drawn delay); everything else is read from the recorded draws, so a slow
machine cannot fail these. Cancellation tests use delays far longer than any
test waits, so a slot freed means the emulator noticed the hang-up.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import Latency, LatencyDraw, WandbEmulator
from tests.integration_tests.test_emulator_load import HOLD_LIMIT, wait_until

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
LONG = 60.0  # a delay no test waits out: only a noticed hang-up ends it sooner
WAIT_LIMIT = HOLD_LIMIT  # how long a test waits for the emulator before failing


async def await_until(condition: Callable[[], bool], what: str) -> None:
    """:func:`wait_until` without blocking the event loop."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


def body(model: str = QWEN, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "say something short"}],
    }


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=WAIT_LIMIT) as c:
        yield c


def chat(client: httpx.Client, emu: WandbEmulator, model: str = QWEN) -> httpx.Response:
    return client.post(
        f"{emu.base_url}/chat/completions",
        json=body(model),
        headers={"Authorization": f"Bearer {emu.api_key}"},
    )


def open_stream(emu: WandbEmulator, model: str = QWEN) -> http.client.HTTPConnection:
    """Start a streamed request and read its status line and headers."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=WAIT_LIMIT)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(body(model, stream=True)),
        {"Authorization": f"Bearer {emu.api_key}", "Content-Type": "application/json"},
    )
    return conn


def request_number(response: httpx.Response) -> int:
    return int(response.json()["id"].removeprefix("chatcmpl-"))


# ------------------------------------------------------------------ draws


def test_per_model_latency_applies_to_that_model_only(client: httpx.Client) -> None:
    with WandbEmulator(latency={LLAMA: Latency(0.05, 0.001)}) as emu:
        plain = chat(client, emu, QWEN)
        paced = chat(client, emu, LLAMA)
        assert plain.status_code == paced.status_code == 200
        assert emu.latencies() == [
            LatencyDraw(request_number(paced), LLAMA, 0.05, 0.001, False)
        ]
        emu.set_latency(Latency(0.01), model="*")
        chat(client, emu, QWEN)
        assert [(d.model, d.ttft) for d in emu.latencies()] == [
            (LLAMA, 0.05),
            (QWEN, 0.01),
        ]


def test_same_seed_same_draws_in_a_fresh_emulator(client: httpx.Client) -> None:
    latency = Latency(0.002, 0.0001, tail_share=0.3, tail_factor=3, jitter=0.5)

    def run(seed: int) -> list[LatencyDraw]:
        with WandbEmulator(latency=latency, latency_seed=seed) as emu:
            for model in (QWEN, LLAMA, QWEN, QWEN, LLAMA, QWEN):
                assert chat(client, emu, model).status_code == 200
            return emu.latencies()

    first = run(11)
    assert run(11) == first
    assert [d.ttft for d in run(12)] != [d.ttft for d in first]


def test_errors_are_answered_without_a_draw(client: httpx.Client) -> None:
    with WandbEmulator(latency=Latency(LONG), concurrency_limit=0) as emu:
        assert chat(client, emu).status_code == 429
        emu.set_concurrency_limit(None)
        emu.fault(status=503)
        assert chat(client, emu).status_code == 503
        assert chat(client, emu, "no/such-model").status_code == 404
        assert emu.latencies() == []


def test_reset_forgets_draws_and_replays_the_sequence(client: httpx.Client) -> None:
    latency = Latency(0.001, tail_share=0.5, jitter=1.0)
    with WandbEmulator(latency=latency, latency_seed=4) as emu:
        chat(client, emu)
        chat(client, emu)
        before = [(d.ttft, d.tail) for d in emu.latencies()]
        emu.reset()
        assert emu.latencies() == []
        chat(client, emu)
        chat(client, emu)
        assert [(d.ttft, d.tail) for d in emu.latencies()] == before


# ---------------------------------------------------------------- timings


def test_first_streamed_chunk_comes_no_earlier_than_ttft() -> None:
    with WandbEmulator(latency=Latency(0.3, 0.01)) as emu:
        started = time.monotonic()
        conn = open_stream(emu)
        response = conn.getresponse()
        assert response.status == 200
        first = response.readline()
        first_at = time.monotonic() - started
        rest = response.read()
        done_at = time.monotonic() - started
        conn.close()
        (drawn,) = emu.latencies()
    assert first.startswith(b"data: ")
    assert first_at >= drawn.ttft
    chunks = rest.count(b"\ndata: ") + 1
    # Every chunk but the first and the usage one waited for its token.
    assert done_at >= drawn.ttft + (chunks - 3) * drawn.per_token


def test_json_answer_waits_for_every_token(client: httpx.Client) -> None:
    with WandbEmulator(service_time=0.1, latency=Latency(0.1, 0.01)) as emu:
        started = time.monotonic()
        response = chat(client, emu)
        elapsed = time.monotonic() - started
        (drawn,) = emu.latencies()
    tokens = response.json()["usage"]["completion_tokens"]
    assert elapsed >= 0.1 + drawn.answer_time(tokens)


# ------------------------------------------------------- slots and hang-ups


def test_a_request_holds_its_slot_through_ttft(client: httpx.Client) -> None:
    with WandbEmulator(concurrency_limit=1, latency=Latency(LONG)) as emu:
        conn = open_stream(emu)
        assert conn.getresponse().status == 200  # headers first, then the TTFT
        assert emu.stats().in_flight_by_model == {QWEN: 1}
        assert chat(client, emu).status_code == 429
        conn.close()
        wait_until(lambda: emu.in_flight == 0, "the hung-up request left")
        assert emu.stats().in_flight_by_model == {}


def test_a_stream_cancelled_mid_way_frees_its_slot(client: httpx.Client) -> None:
    with WandbEmulator(concurrency_limit=1, latency=Latency(0.01, LONG)) as emu:
        conn = open_stream(emu)
        response = conn.getresponse()
        assert response.readline().startswith(b"data: ")
        assert chat(client, emu).status_code == 429
        conn.close()
        wait_until(lambda: emu.in_flight == 0, "the cancelled stream left")
        emu.set_latency(None)
        assert chat(client, emu).status_code == 200
        assert emu.stats().responses_by_model[QWEN] == {200: 2, 429: 1}


def test_a_json_request_abandoned_while_waiting_frees_its_slot() -> None:
    with WandbEmulator(concurrency_limit=1, latency=Latency(LONG)) as emu:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(
                f"{emu.base_url}/chat/completions",
                json=body(),
                headers={"Authorization": f"Bearer {emu.api_key}"},
                timeout=0.2,
            )
        wait_until(lambda: emu.in_flight == 0, "the abandoned request left")


async def test_closing_a_chat_wandb_stream_frees_the_emulators_slot() -> None:
    with WandbEmulator(concurrency_limit=1, latency=Latency(0.01, LONG)) as emu:
        llm = ChatWandb(
            model=f"wandb/{QWEN}",
            api_key=emu.api_key,
            base_url=emu.base_url,
            max_retries=0,
        )
        chunks = llm.astream("hi")
        await chunks.__anext__()
        await chunks.aclose()  # type: ignore[attr-defined]
        await await_until(lambda: emu.in_flight == 0, "the closed stream left")
        emu.set_latency(None)
        assert (await llm.ainvoke("hi")).content
