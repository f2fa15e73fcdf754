"""ChatWandb's whole-call deadline against servers that stall or trickle bytes.

Each server here would take about 10 s to answer; a call with a 0.5 s deadline
must end well within 2 s, on every path: sync and async, invoke and stream,
ChatWandb's own ``deadline=`` and one set by an outer caller (as the router
does) through :func:`langchain_wandb_router.transport._deadline.bounded`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from langchain_wandb_router import ChatWandb, RetryPolicy
from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbTimeoutError,
)
from langchain_wandb_router.testing import WandbEmulator
from langchain_wandb_router.transport import _deadline

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DEADLINE = 0.5
# Generous: the calls end a few milliseconds after the deadline; a loaded
# machine must not make this flaky.
BOUND = 2.0
TRICKLE = 0.1  # seconds between bytes: 100 bytes take 10 s

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": QWEN,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x" * 60},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


def sse_event(content: str) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": QWEN,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


# ------------------------------------------------------------------ raw server

# What the server sends: (bytes sent at once, bytes then sent one at a time).
Script = tuple[bytes, bytes]

JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"

SCRIPTS: dict[str, Script] = {
    # The status line and headers never come.
    "silent": (b"", b""),
    # The headers themselves arrive a byte at a time.
    "trickled headers": (b"", JSON_HEAD % len(COMPLETION) + COMPLETION),
    # Headers at once, then a JSON body a byte at a time.
    "trickled body": (JSON_HEAD % len(COMPLETION), COMPLETION),
    # A stream whose first event arrives a byte at a time.
    "trickled first event": (SSE_HEAD, sse_event("hello") * 3 + b"data: [DONE]\n\n"),
    # A stream whose first event arrives at once, then the rest a byte at a time.
    "trickled after first event": (
        SSE_HEAD + sse_event("hello"),
        sse_event("world") * 3 + b"data: [DONE]\n\n",
    ),
}


class TrickleServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers every request with one script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stop = threading.Event()
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self.answer, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def answer(self, conn: socket.socket) -> None:
        with conn:
            self.read_request(conn)
            self.requests += 1
            at_once, slowly = self.script
            try:
                conn.sendall(at_once)
                for byte in slowly:
                    if self.stop.wait(TRICKLE):
                        return
                    conn.sendall(bytes([byte]))
                self.stop.wait()  # keep the connection open, as a stalled server would
            except OSError:
                return  # the client gave up and closed: what the tests want

    @staticmethod
    def read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += conn.recv(65536)


@contextmanager
def trickling(name: str) -> Iterator[TrickleServer]:
    server = TrickleServer(SCRIPTS[name])
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(timeout=5)
        for handler in server.threads:
            handler.join(timeout=5)
        server.sock.close()


def chat(base_url: str, **kwargs: Any) -> ChatWandb:
    kwargs.setdefault("max_retries", 0)
    return ChatWandb(
        model=QWEN, api_key="sk-test-0123456789abcdef", base_url=base_url, **kwargs
    )


# ---------------------------------------------------------------- the four paths


def invoke(llm: ChatWandb) -> Any:
    return llm.invoke("hi")


def stream(llm: ChatWandb) -> Any:
    return [c.text for c in llm.stream("hi")]


def ainvoke(llm: ChatWandb) -> Any:
    return asyncio.run(llm.ainvoke("hi"))


def astream(llm: ChatWandb) -> Any:
    async def run() -> list[str]:
        return [c.text async for c in llm.astream("hi")]

    return asyncio.run(run())


INVOKES = [invoke, ainvoke]
STREAMS = [stream, astream]
ALL_PATHS = INVOKES + STREAMS


def timed(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


# ------------------------------------------------------------- ChatWandb's own


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("script", ["silent", "trickled headers"])
def test_headers_that_never_come_end_at_the_deadline(
    path: Callable[[ChatWandb], Any], script: str
) -> None:
    with trickling(script) as server:
        error, took = timed(lambda: path(chat(server.base_url, deadline=DEADLINE)))
    assert isinstance(error, WandbTimeoutError), error
    assert "deadline passed" in str(error)
    assert "deadline=" in str(error)  # says how to allow more
    assert DEADLINE * 0.9 <= took < BOUND


@pytest.mark.parametrize("path", INVOKES, ids=lambda p: p.__name__)
def test_a_trickling_json_body_ends_at_the_deadline(
    path: Callable[[ChatWandb], Any],
) -> None:
    with trickling("trickled body") as server:
        error, took = timed(lambda: path(chat(server.base_url, deadline=DEADLINE)))
    assert isinstance(error, WandbTimeoutError), error
    assert "deadline passed" in str(error)
    assert took < BOUND


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.__name__)
def test_a_stream_trickling_before_its_first_event_is_a_retryable_timeout(
    path: Callable[[ChatWandb], Any],
) -> None:
    with trickling("trickled first event") as server:
        error, took = timed(lambda: path(chat(server.base_url, deadline=DEADLINE)))
    assert isinstance(error, WandbTimeoutError), error
    assert not isinstance(error, StreamInterruptedError)
    assert RetryPolicy().is_retryable(error)
    assert took < BOUND


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.__name__)
def test_a_stream_trickling_after_its_first_event_is_interrupted(
    path: Callable[[ChatWandb], Any],
) -> None:
    with trickling("trickled after first event") as server:
        error, took = timed(lambda: path(chat(server.base_url, deadline=DEADLINE)))
    assert isinstance(error, StreamInterruptedError), error
    assert "deadline passed" in str(error)
    assert took < BOUND


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.__name__)
def test_slow_events_from_the_emulator_end_at_the_deadline(
    emulator: WandbEmulator, path: Callable[[ChatWandb], Any]
) -> None:
    emulator.respond_with(
        content=" ".join(["word"] * 40)
    )  # 40 events: 8 s at 0.2 s each
    emulator.fault(chunk_delay=0.2)
    llm = ChatWandb(
        model=QWEN,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        deadline=DEADLINE,
    )
    error, took = timed(lambda: path(llm))
    assert isinstance(error, StreamInterruptedError), error
    assert took < BOUND


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.__name__)
def test_retries_stay_within_the_deadline(path: Callable[[ChatWandb], Any]) -> None:
    # Each attempt is cut at the deadline; no retry starts after it.
    with trickling("silent") as server:
        llm = chat(server.base_url, deadline=DEADLINE, max_retries=5)
        error, took = timed(lambda: path(llm))
    assert isinstance(error, WandbTimeoutError), error
    assert took < BOUND
    assert server.requests == 1


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.__name__)
def test_a_backoff_that_would_pass_the_deadline_is_not_slept(
    emulator: WandbEmulator, path: Callable[[ChatWandb], Any]
) -> None:
    emulator.fault(status=503, headers={"Retry-After": "5"}, times=None)
    llm = ChatWandb(
        model=QWEN,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        deadline=1.0,
        max_retries=3,
    )
    error, took = timed(lambda: path(llm))
    assert isinstance(error, WandbAPIError), error
    assert error.status_code == 503  # the real failure, not a made-up timeout
    assert any("after the call's deadline" in note for note in error.__notes__)
    assert took < 1.0
    assert len(emulator.chat_requests()) == 1


def test_short_backoffs_are_retried_until_the_deadline(emulator: WandbEmulator) -> None:
    emulator.fault(status=503, headers={"Retry-After": "0.25"}, times=None)
    llm = ChatWandb(
        model=QWEN,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        deadline=1.0,
        max_retries=10,
    )
    error, took = timed(lambda: llm.invoke("hi"))
    # The 503 itself, or a timeout if the last attempt was still under way.
    assert isinstance(error, WandbAPIError | WandbTimeoutError), error
    assert took < 1.5
    assert 2 <= len(emulator.chat_requests()) <= 4


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.__name__)
def test_a_deadline_that_is_not_reached_changes_nothing(
    emulator: WandbEmulator, path: Callable[[ChatWandb], Any]
) -> None:
    llm = ChatWandb(
        model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url, deadline=30
    )
    assert path(llm)


def test_a_users_httpx_client_is_bounded_between_body_pieces() -> None:
    with trickling("trickled body") as server, httpx.Client() as client:
        llm = chat(server.base_url, deadline=DEADLINE, http_client=client)
        error, took = timed(lambda: llm.invoke("hi"))
    assert isinstance(error, WandbTimeoutError), error
    assert took < BOUND


def test_a_users_async_httpx_client_is_bounded_between_stream_events() -> None:
    async def run(base_url: str) -> Any:
        async with httpx.AsyncClient() as client:
            llm = chat(base_url, deadline=DEADLINE, http_async_client=client)
            return [c.text async for c in llm.astream("hi")]

    with trickling("trickled after first event") as server:
        error, took = timed(lambda: asyncio.run(run(server.base_url)))
    assert isinstance(error, StreamInterruptedError), error
    assert took < BOUND


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_deadline_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="deadline must be > 0"):
        chat("http://127.0.0.1:9/v1", deadline=seconds)


# ------------------------------------------------- a deadline from an outer caller


def within_outer_deadline(
    path: Callable[[ChatWandb], Any],
) -> Callable[[ChatWandb], Any]:
    """Run ``path`` as the router runs an attempt: inside ``bounded(...)``."""

    def run(llm: ChatWandb) -> Any:
        if path in (invoke, stream):
            with _deadline.bounded(time.monotonic() + DEADLINE):
                return path(llm)

        async def bounded_in_loop() -> Any:
            with _deadline.bounded(time.monotonic() + DEADLINE):
                if path is ainvoke:
                    return await llm.ainvoke("hi")
                return [c.text async for c in llm.astream("hi")]

        return asyncio.run(bounded_in_loop())

    return run


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("script", ["trickled headers", "trickled first event"])
def test_an_outer_deadline_bounds_chat_wandb_the_same_way(
    path: Callable[[ChatWandb], Any], script: str
) -> None:
    with trickling(script) as server:
        llm = chat(server.base_url, max_retries=2)  # no deadline of its own
        error, took = timed(lambda: within_outer_deadline(path)(llm))
    assert isinstance(error, WandbTimeoutError), error
    assert "deadline passed" in str(error)
    assert took < BOUND
    assert server.requests == 1  # no retry after the outer deadline either
    assert _deadline.current() is None  # restored


def test_the_earlier_of_outer_and_own_deadline_wins() -> None:
    with trickling("trickled body") as server:
        llm = chat(server.base_url, deadline=30)
        with _deadline.bounded(time.monotonic() + DEADLINE):
            error, took = timed(lambda: llm.invoke("hi"))
        assert isinstance(error, WandbTimeoutError)
        assert took < BOUND
        outer = chat(server.base_url, deadline=DEADLINE)
        with _deadline.bounded(time.monotonic() + 30):
            error, took = timed(lambda: outer.invoke("hi"))
        assert isinstance(error, WandbTimeoutError)
        assert took < BOUND
    assert _deadline.current() is None


def test_a_stream_never_leaves_its_deadline_set_in_the_consumer(
    emulator: WandbEmulator,
) -> None:
    # A sync generator runs in its consumer's context: between chunks the
    # consumer must see its own deadline (here none), not the call's.
    llm = ChatWandb(
        model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url, deadline=30
    )
    seen = [_deadline.current() for _ in llm.stream("hi")]
    assert seen
    assert set(seen) == {None}
    outer = time.monotonic() + 60
    with _deadline.bounded(outer):
        seen = [_deadline.current() for _ in llm.stream("hi")]
    assert set(seen) == {outer}


async def test_an_async_stream_never_leaves_its_deadline_set_in_the_consumer(
    emulator: WandbEmulator,
) -> None:
    llm = ChatWandb(
        model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url, deadline=30
    )
    seen = [_deadline.current() async for _ in llm.astream("hi")]
    assert seen
    assert set(seen) == {None}
    assert (await llm.ainvoke("hi")).text
    assert _deadline.current() is None


async def test_an_async_call_on_either_loop_ends_at_the_deadline() -> None:
    # Runs on asyncio and on uvloop (see conftest): their timers differ.
    with trickling("trickled after first event") as server:
        llm = chat(server.base_url, deadline=DEADLINE)
        start = time.monotonic()
        with pytest.raises(StreamInterruptedError):
            async for _ in llm.astream("hi"):
                pass
        with pytest.raises(WandbTimeoutError):
            await llm.ainvoke("hi")  # a JSON call on an SSE answer: trickled
        assert time.monotonic() - start < 2 * BOUND
