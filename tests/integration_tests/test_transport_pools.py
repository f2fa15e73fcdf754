"""Pooled clients against local servers: loop ownership, no leaked sockets, reuse, TLS."""

from __future__ import annotations

import asyncio
import gc
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from langchain_wandb_router import ChatWandb, RetryPolicy, transport as _transport
from langchain_wandb_router.errors import (
    WandbAPIError,
    WandbConnectionError,
    WandbError,
    WandbRateLimitError,
    WandbTimeoutError,
)
from langchain_wandb_router.testing import WandbEmulator
from langchain_wandb_router.transport import _deadline, _pools

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(limit: int) -> int:
    """Open fds once the emulator's side of closed connections has closed too.

    The server closes its socket when its handler thread reads EOF, a moment
    after the client closed; wait (bounded) for that instead of racing it.
    """
    deadline = time.monotonic() + 10
    count = open_fds()
    while count > limit and time.monotonic() < deadline:
        time.sleep(0.05)
        gc.collect()
        count = open_fds()
    return count


@pytest.fixture
def url(emulator: WandbEmulator) -> str:
    return f"{emulator.base_url}/chat/completions"


@pytest.fixture
def request_for(emulator: WandbEmulator, url: str) -> Callable[..., _transport.Request]:
    def build(**payload: Any) -> _transport.Request:
        body = {
            "model": QWEN,
            "messages": [{"role": "user", "content": "hi"}],
            **payload,
        }
        return _transport.Request(
            url=url,
            headers={
                "Authorization": f"Bearer {emulator.api_key}",
                "Content-Type": "application/json",
            },
            body=_transport.encode_body(body),
            model=QWEN,
            timeout=30,
        )

    return build


# ------------------------------------------------------------ loop ownership


def test_150_asyncio_runs_leave_no_sockets_behind(
    url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req = request_for()

    async def call() -> dict[str, Any]:
        return await _transport.apost_json(_transport.async_client(url), req)

    before = settled_fds(open_fds())
    for _ in range(150):
        assert asyncio.run(call())["choices"]
    # Before the fix each run left its client and two sockets (ours and the
    # emulator's) open: ~300 fds here, and "Too many open files" near 200 runs.
    assert settled_fds(before + 4) <= before + 4


def test_streams_in_many_asyncio_runs_leave_no_sockets_behind(
    url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req = request_for(stream=True, stream_options={"include_usage": True})

    async def call() -> int:
        return len(
            [
                e
                async for e in _transport.astream_events(
                    _transport.async_client(url), req
                )
            ]
        )

    before = settled_fds(open_fds())
    for _ in range(60):
        assert asyncio.run(call()) > 3
    assert settled_fds(before + 4) <= before + 4


def test_chat_wandb_ainvoke_under_repeated_asyncio_run(emulator: WandbEmulator) -> None:
    llm = ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url)
    before = settled_fds(open_fds())
    for _ in range(60):
        assert asyncio.run(llm.ainvoke("hi")).text
    assert settled_fds(before + 4) <= before + 4


def holds_connections(client: _transport.AsyncHTTP) -> bool:
    if isinstance(client, httpx.AsyncClient):
        return not client.is_closed
    return bool(client.connections)


def test_a_loops_clients_are_closed_when_asyncio_run_ends(
    url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req = request_for()

    async def use() -> tuple[_transport.AsyncHTTP, _transport.AsyncHTTP]:
        client = _transport.async_client(url)
        await _transport.apost_json(client, req)
        assert holds_connections(client)  # a kept-alive connection
        return client, _transport.async_client(url)

    first, again = asyncio.run(use())
    assert first is again  # one pooled client per loop and URL
    assert not holds_connections(first)  # closed by the loop's own shutdown
    second, _ = asyncio.run(use())
    assert second is not first
    assert not holds_connections(second)


def test_each_thread_loop_has_its_own_client(
    url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req = request_for()
    seen: dict[int, _transport.AsyncHTTP] = {}
    barrier = threading.Barrier(4)

    async def call(n: int) -> None:
        client = _transport.async_client(url)
        seen[n] = client
        barrier.wait(timeout=10)  # all four loops hold their client at once
        await _transport.apost_json(client, req)

    threads = [threading.Thread(target=asyncio.run, args=(call(n),)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len({id(c) for c in seen.values()}) == 4
    assert not any(holds_connections(c) for c in seen.values())


def test_loops_closed_without_shutdown_are_purged(
    url: str,
    request_for: Callable[..., _transport.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bare ``loop.close()`` skips the shutdown hook; the next loop lets go."""
    req = request_for()
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def call() -> dict[str, Any]:
        return await _transport.apost_json(_transport.async_client(url), req)

    before = settled_fds(open_fds())
    for _ in range(40):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(call())
        finally:
            loop.close()
    asyncio.run(call())  # a new loop: drops the 40 closed loops' clients
    with warnings.catch_warnings():
        # The dropped transports' sockets are closed by the collector, which
        # says so with a ResourceWarning: the documented fallback.
        warnings.simplefilter("ignore", ResourceWarning)
        assert settled_fds(before + 4) <= before + 4
    assert unraisable == []  # no closer finalizer ran against a closed loop


def test_loops_never_closed_take_their_pools_along(emulator: WandbEmulator) -> None:
    """A loop dropped without ``close()`` is collected with its pools' sockets.

    (asyncio's loops. A uvloop loop that is never closed is kept alive by its
    own libuv handles, whatever it holds.)
    """
    llm = ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    def call() -> None:
        loop = asyncio.new_event_loop()
        loops.append(weakref.ref(loop))
        assert loop.run_until_complete(llm.ainvoke("hi")).text

    call()  # first-use costs (imports, the sync pool...) before counting
    before = settled_fds(open_fds())
    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    with warnings.catch_warnings():
        # Unclosed loops and transports say so when the collector frees them.
        warnings.simplefilter("ignore", ResourceWarning)
        # Before the fix the 20 loops kept ~80 fds open (a loop's selector and
        # self-pipe, its pool's socket, the emulator's end).
        assert settled_fds(before + 4) <= before + 4
        gc.collect()
    assert [ref for ref in loops if ref() is not None] == []


# ------------------------------------------------------------ keep-alive pool


async def test_bursts_above_64_reuse_every_connection(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req = request_for()
    client = _transport.async_client(url)

    async def burst(size: int) -> set[int]:
        emulator.reset()
        emulator.fault(delay=2.0, times=None)  # hold each request so all overlap
        calls = []
        async with asyncio.timeout(60):
            for sent in range(1, size + 1):
                calls.append(asyncio.ensure_future(_transport.apost_json(client, req)))
                # Start the next one once this one reached the server: httpcore
                # hands requests queued at the same instant one idle connection
                # (they then queue again one by one), and that would test its
                # scheduling rather than which connections the pool kept.
                while len(emulator.chat_requests()) < sent:
                    await asyncio.sleep(0.001)
            await asyncio.gather(*calls)
        return {r.client_port for r in emulator.chat_requests()}

    first = await burst(100)
    assert len(first) > 64  # the burst really needed more than the old keep-alive
    second = await burst(100)
    assert len(second) > 64
    assert second <= first  # nothing reconnected: every connection was kept


# ------------------------------------------------------------ cancellation


def busy_connections(client: _transport.SyncHTTP | _transport.AsyncHTTP) -> int:
    assert isinstance(client, httpcore.ConnectionPool | httpcore.AsyncConnectionPool)
    return sum(1 for c in client.connections if not (c.is_idle() or c.is_closed()))


async def test_cancelled_calls_give_their_connections_back(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    req, sreq = request_for(), request_for(stream=True)
    client = _transport.async_client(url)
    emulator.fault(delay=2.0, times=None)
    for _ in range(10):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_transport.apost_json(client, req), timeout=0.05)
    emulator.reset()
    emulator.fault(chunk_delay=0.2, times=None)

    async def read_two() -> None:
        seen = 0
        async for _ in _transport.astream_events(client, sreq):
            seen += 1
            if seen == 2:
                await asyncio.sleep(10)

    for _ in range(10):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_two(), timeout=0.5)
    # An abandoned async generator is closed by a task the loop schedules when
    # it is collected: give the loop a few turns (bounded) to run those.
    async with asyncio.timeout(10):
        while busy_connections(client):
            await asyncio.sleep(0.01)
    emulator.reset()
    assert (await _transport.apost_json(client, req))["choices"]


def collect_loop_errors() -> list[dict[str, Any]]:
    """Route the running loop's error reports (unretrieved exceptions...) here."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: errors.append(ctx))
    return errors


async def test_a_cancelled_request_leaves_no_connection_in_the_pool() -> None:
    errors = collect_loop_errors()
    got_request = asyncio.Event()
    server_saw_eof: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        got_request.set()
        server_saw_eof.set_result(await reader.read() == b"")
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        pool = _transport.async_client(f"http://127.0.0.1:{port}/v1/chat/completions")
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        request = asyncio.ensure_future(
            pool.request("GET", f"http://127.0.0.1:{port}/")
        )
        await got_request.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert pool.connections == []
        assert await asyncio.wait_for(server_saw_eof, timeout=10) is True
    finally:
        server.close()
        await server.wait_closed()
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []


async def test_chat_wandb_reuses_one_pooled_connection_on_this_loop(
    emulator: WandbEmulator,
) -> None:
    llm = ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url)
    answer = await llm.ainvoke("hi")
    assert answer.text
    chunks = [chunk async for chunk in llm.astream("hi")]
    assert "".join(c.text for c in chunks) == answer.text
    with _deadline.bounded(time.monotonic() + 30):
        assert (await llm.ainvoke("hi")).text

    url = f"{emulator.base_url}/chat/completions"
    pool = _transport.async_client(url)
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert len(pool.connections) == 1
    response = await pool.request(
        "POST",
        url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        content=json.dumps(
            {"model": QWEN, "messages": [{"role": "user", "content": "hi"}]}
        ).encode(),
    )
    assert response.status == 200
    # httpcore's own network backend, under our deadline clamp.
    assert isinstance(response.extensions["network_stream"], _pools._AsyncBoundedStream)
    assert len(pool.connections) == 1
    ports = {r.client_port for r in emulator.chat_requests()}
    assert len(ports) == 1


def test_an_abandoned_sync_stream_gives_its_connection_back(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    client = _transport.sync_client(url)
    emulator.fault(chunk_delay=0.05, times=None)
    events = _transport.stream_events(client, request_for(stream=True))
    assert next(events)["choices"]
    assert busy_connections(client) == 1
    events.close()
    assert busy_connections(client) == 0


# ------------------------------------------------- what the bare pool must keep


def test_proxy_variables_still_route_through_the_proxy(
    emulator: WandbEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # The emulator plays the proxy: it records the absolute-form request line.
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{emulator.port}")
    url = "http://wandb-behind-proxy.invalid/v1/chat/completions"
    req = _transport.Request(url=url, headers={}, body=b"{}", model=QWEN, timeout=10)
    # Whatever the emulator answers (it reads the path of an absolute-form
    # request line, and this one has no key), it got the request as a proxy.
    with pytest.raises(WandbError):
        _transport.post_json(_transport.sync_client(url), req)
    assert [r.path for r in emulator.requests] == [url]


def test_a_users_httpx_client_works_the_same(
    emulator: WandbEmulator, request_for: Callable[..., _transport.Request]
) -> None:
    with httpx.Client() as client:
        assert _transport.post_json(client, request_for())["choices"]
        events = list(_transport.stream_events(client, request_for(stream=True)))
        assert events[-1]["usage"]
        emulator.fault(status=429, headers={"Retry-After": "2"})
        with pytest.raises(WandbRateLimitError) as info:
            _transport.post_json(client, request_for())
        assert info.value.retry_after == 2.0


def test_retry_after_and_redirects_on_the_default_pool(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    client = _transport.sync_client(url)
    emulator.fault(status=429, headers={"Retry-After": "2"})
    with pytest.raises(WandbRateLimitError) as info:
        _transport.post_json(client, request_for())
    assert info.value.retry_after == 2.0
    emulator.fault(status=307, headers={"Location": "http://127.0.0.1:9/v1"}, body="")
    with pytest.raises(WandbAPIError, match="redirect") as redirect:
        list(_transport.stream_events(client, request_for(stream=True)))
    assert redirect.value.status_code == 307


def test_an_encoded_body_is_refused_not_misread(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    emulator.fault(status=200, headers={"Content-Encoding": "gzip"}, body=b"\x1f\x8b..")
    with pytest.raises(WandbAPIError, match="Content-Encoding 'gzip'"):
        _transport.post_json(_transport.sync_client(url), request_for())
    assert emulator.chat_requests()[0].headers["accept-encoding"] == "identity"


def test_timeouts_are_typed(
    emulator: WandbEmulator, url: str, request_for: Callable[..., _transport.Request]
) -> None:
    slow = _transport.Request(**{**request_for().__dict__, "timeout": 0.2})
    emulator.fault(delay=1.0)
    with pytest.raises(WandbTimeoutError, match="ReadTimeout"):
        _transport.post_json(_transport.sync_client(url), slow)


# ------------------------------------------------------ 200s without answers


def _llm(emulator: WandbEmulator, **kw: Any) -> ChatWandb:
    return ChatWandb(
        model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url, **kw
    )


@pytest.fixture
def no_sleep() -> RetryPolicy:
    waits: list[float] = []
    return RetryPolicy(sleep=waits.append)


@pytest.mark.parametrize(
    "body", [{"id": "x", "choices": []}, {"id": "x", "choices": None}]
)
def test_empty_200_is_retried_then_served(
    emulator: WandbEmulator, no_sleep: RetryPolicy, body: dict[str, Any]
) -> None:
    emulator.fault(status=200, body=body)
    assert _llm(emulator, retry_policy=no_sleep).invoke("hi").text
    assert len(emulator.chat_requests()) == 2


def test_empty_200_names_the_model_when_retries_run_out(
    emulator: WandbEmulator,
) -> None:
    emulator.fault(status=200, body={"choices": []}, times=None)
    with pytest.raises(WandbAPIError, match=QWEN.replace(".", r"\.")):
        _llm(emulator, max_retries=0).invoke("hi")


def test_200_error_body_is_typed(emulator: WandbEmulator) -> None:
    body = {
        "error": {"message": "concurrency limit reached", "code": "rate_limit_exceeded"}
    }
    emulator.fault(status=200, body=body, times=None)
    with pytest.raises(WandbRateLimitError):
        _llm(emulator, max_retries=0).invoke("hi")


# ------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made with the openssl tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl tool to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
    key_type = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, "req", "-x509", "-nodes", "-days", "1", *key_type, *subject, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


COMPLETION = {
    "id": "chatcmpl-tls",
    "object": "chat.completion",
    "created": 0,
    "model": QWEN,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "secret"},
            "finish_reason": "stop",
        }
    ],
}


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(COMPLETION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tls_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    """An HTTPS chat endpoint on 127.0.0.1 with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/v1/chat/completions"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def tls_request(url: str) -> _transport.Request:
    return _transport.Request(
        url=url,
        headers={"Content-Type": "application/json"},
        body=b'{"messages": []}',
        model=QWEN,
        timeout=10,
        deadline=time.monotonic() + 30,  # the clamped path, start_tls included
    )


def test_tls_round_trip_on_the_sync_backend(
    certificate: tuple[Path, Path], tls_url: str
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    with httpcore.ConnectionPool(
        ssl_context=trusted, network_backend=_pools._SYNC_BACKEND
    ) as pool:
        data = _transport.post_json(pool, tls_request(tls_url))
        assert data["choices"][0]["message"]["content"] == "secret"
        [connection] = pool.connections
        assert connection.is_idle()


async def test_tls_round_trip_on_the_async_backend(
    certificate: tuple[Path, Path], tls_url: str
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    async with httpcore.AsyncConnectionPool(
        ssl_context=trusted, network_backend=_pools._ASYNC_BACKEND
    ) as pool:
        data = await _transport.apost_json(pool, tls_request(tls_url))
        assert data["choices"][0]["message"]["content"] == "secret"
        response = await pool.request("POST", tls_url, content=b"{}")
        stream = response.extensions["network_stream"]
        assert isinstance(stream.get_extra_info("ssl_object"), ssl.SSLObject)


def test_the_default_pools_refuse_an_untrusted_certificate(tls_url: str) -> None:
    with pytest.raises(WandbConnectionError, match="ConnectError"):
        _transport.post_json(_transport.sync_client(tls_url), tls_request(tls_url))

    async def call() -> None:
        await _transport.apost_json(
            _transport.async_client(tls_url), tls_request(tls_url)
        )

    with pytest.raises(WandbConnectionError, match="ConnectError"):
        asyncio.run(call())
