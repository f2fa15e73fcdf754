"""The asyncio network backend against real local servers (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import gc
import shutil
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpcore
import pytest

from langchain_wandb_router import ChatWandb, _transport
from langchain_wandb_router._aio_net import AsyncioBackend, AsyncioStream
from langchain_wandb_router._config import chat_url
from langchain_wandb_router.testing import WandbEmulator

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"


@asynccontextmanager
async def serving(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Run ``handler`` for each connection to a local server; yield its port.

    Handlers end on their own once the client has closed; on the way out they
    get a bounded wait. (Cancelling one instead makes asyncio 3.11 report an
    error from its own callback, which tests watching the loop would see.)
    """
    tasks: set[asyncio.Task[Any]] = set()

    async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client reset or left early: some tests do that on purpose
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(track, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        server.close()
        await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def connect(port: int, **kwargs: Any) -> httpcore.AsyncNetworkStream:
    return await AsyncioBackend().connect_tcp("127.0.0.1", port, **kwargs)


async def read_exactly(stream: httpcore.AsyncNetworkStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read(size - len(data))
        assert chunk, "unexpected end of stream"
        data += chunk
    return data


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ reading, writing


async def test_round_trip() -> None:
    async with serving(echo) as port:
        stream = await connect(port)
        await stream.write(b"ping " * 1000)
        assert await read_exactly(stream, 5000) == b"ping " * 1000
        await stream.aclose()


async def test_a_write_goes_out_without_a_following_read() -> None:
    # Small writes are held until the task reads or yields; yielding alone
    # must deliver them.
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.readexactly(11))

    async with serving(take) as port:
        stream = await connect(port)
        await stream.write(b"hello ")
        await stream.write(b"world")
        assert await asyncio.wait_for(received, timeout=10) == b"hello world"
        await stream.aclose()


async def test_buffered_data_is_returned_without_waiting() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello world")
        await reader.read()

    async with serving(greet) as port:
        stream = await connect(port)
        assert await stream.read(5) == b"hello"
        # A zero timeout would expire at the first wait: the rest of the chunk
        # is already buffered, so nothing waits.
        assert await stream.read(100, timeout=0) == b" world"
        await stream.aclose()


async def test_end_of_stream_reads_empty() -> None:
    async def bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    async with serving(bye) as port:
        stream = await connect(port)
        assert await read_exactly(stream, 3) == b"bye"
        assert await stream.read(10) == b""
        assert await stream.read(10) == b""
        assert stream.get_extra_info("is_readable") is True
        await stream.aclose()


async def test_peer_reset_is_a_read_error_then_a_write_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        sock = writer.get_extra_info("socket")
        # Linger 0: closing sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serving(reset) as port:
        stream = await connect(port)
        await stream.write(b"ping")
        with pytest.raises(httpcore.ReadError) as info:
            await stream.read(10)
        assert isinstance(info.value.__cause__, ConnectionResetError)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"more")
        await stream.aclose()


async def test_read_timeout_then_the_stream_still_works() -> None:
    go = asyncio.Event()

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        writer.write(b"late")
        await reader.read()

    async with serving(late) as port:
        stream = await connect(port)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(10, timeout=0.05)
        go.set()
        assert await read_exactly(stream, 4) == b"late"
        await stream.aclose()


async def test_reading_a_closed_stream_is_a_read_error() -> None:
    async with serving(echo) as port:
        stream = await connect(port)
        await stream.aclose()
        with pytest.raises(httpcore.ReadError):
            await stream.read(10)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"x")


# ------------------------------------------------------------------------ connect


async def test_connection_refused_is_a_connect_error() -> None:
    with pytest.raises(httpcore.ConnectError) as info:
        await connect(free_port())
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_connect_timeout_is_a_connect_timeout() -> None:
    # A zero timeout expires at the connect's first wait (the transport's
    # connection_made callback), deterministically, against a live server.
    async with serving(echo) as port:
        with pytest.raises(httpcore.ConnectTimeout):
            await connect(port, timeout=0)
        # The half-made connection was closed, and the next one works.
        stream = await connect(port, timeout=5)
        await stream.write(b"ok")
        assert await read_exactly(stream, 2) == b"ok"
        await stream.aclose()


async def test_tcp_nodelay_and_socket_options_are_set() -> None:
    option = (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    async with serving(echo) as port:
        stream = await connect(port, socket_options=[option])
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        await stream.aclose()


async def test_unix_socket_round_trip(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    if not pytestconfig.getoption("--allow-unix-socket"):
        pytest.skip("pytest-socket blocks Unix sockets without --allow-unix-socket")
    path = str(tmp_path / "s.sock")
    server = await asyncio.start_unix_server(echo, path)
    try:
        stream = await AsyncioBackend().connect_unix_socket(path, timeout=5)
        await stream.write(b"over unix")
        assert await read_exactly(stream, 9) == b"over unix"
        await stream.aclose()
        with pytest.raises(httpcore.ConnectError):
            await AsyncioBackend().connect_unix_socket(str(tmp_path / "none.sock"))
    finally:
        server.close()
        await server.wait_closed()


async def test_sleep_returns() -> None:
    await AsyncioBackend().sleep(0)


# ----------------------------------------------------------------- extra information


async def test_extra_info_keys() -> None:
    peers: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.set_result(writer.get_extra_info("peername"))
        await reader.read()

    async with serving(note) as port:
        stream = await connect(port)
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert stream.get_extra_info("client_addr") == await peers
        assert stream.get_extra_info("socket").fileno() >= 0
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("no such key") is None
        await stream.aclose()


# ------------------------------------------------------------------- cancellation


def collect_loop_errors() -> list[dict[str, Any]]:
    """Route the running loop's error reports (unretrieved exceptions...) here."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: errors.append(ctx))
    return errors


async def test_a_cancelled_read_leaves_the_stream_usable() -> None:
    errors = collect_loop_errors()
    go = asyncio.Event()

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        writer.write(b"after")
        await reader.read()

    async with serving(late) as port:
        stream = await connect(port)
        reading = asyncio.create_task(stream.read(10))
        await asyncio.sleep(0)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        go.set()
        assert await read_exactly(stream, 5) == b"after"
        await stream.aclose()
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []


async def test_a_cancelled_request_closes_its_connection() -> None:
    errors = collect_loop_errors()
    got_request = asyncio.Event()
    server_saw_eof: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        got_request.set()
        server_saw_eof.set_result(await reader.read() == b"")

    async with serving(silent) as port:
        pool = httpcore.AsyncConnectionPool(network_backend=AsyncioBackend())
        request = asyncio.create_task(pool.request("GET", f"http://127.0.0.1:{port}/"))
        await got_request.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert pool.connections == []
        assert await asyncio.wait_for(server_saw_eof, timeout=10) is True
        await pool.aclose()
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []


async def test_a_cancelled_connect_leaves_no_connection() -> None:
    accepted, closed = 0, 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted, closed
        accepted += 1
        while data := await reader.read(100):
            writer.write(data)
        closed += 1

    async with serving(count) as port:
        for turns in range(4):  # cancelled at successive steps of the connect
            connecting = asyncio.create_task(connect(port))
            for _ in range(turns):
                await asyncio.sleep(0)
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting
        # Accepted in order: once this one answers, the server has seen the rest.
        last = await connect(port)
        await last.write(b"ping")
        assert await read_exactly(last, 4) == b"ping"
        # Whatever else the server accepted, the client closed again (bounded
        # wait: the server notices a close when its loop turn comes).
        async with asyncio.timeout(10):
            while closed < accepted - 1:
                await asyncio.sleep(0.01)
        await last.aclose()


# ------------------------------------------------------------------- flow control

BIG = 32 * 1024 * 1024  # above loopback's socket buffers, so the peer must read


async def test_a_large_write_waits_for_a_slow_reader_and_arrives_whole() -> None:
    start_reading = asyncio.Event()
    received: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await start_reading.wait()
        total = 0
        while total < BIG and (chunk := await reader.read(1 << 20)):
            total += len(chunk)
        received.set_result(total)

    async with serving(slow) as port:
        stream = await connect(port)
        writing = asyncio.create_task(stream.write(b"x" * BIG, timeout=30))
        for _ in range(20):
            await asyncio.sleep(0)
        # Ignoring flow control, write() would have buffered it all and returned.
        assert not writing.done()
        start_reading.set()
        await writing
        assert await received == BIG
        await stream.aclose()


async def test_a_peer_that_never_reads_is_a_write_timeout() -> None:
    done = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()

    async with serving(deaf) as port:
        stream = await connect(port)
        with pytest.raises(httpcore.WriteTimeout):
            await stream.write(b"x" * BIG, timeout=0.2)
        await stream.aclose()
        done.set()


# ---------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made with the openssl tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl tool to make a test certificate (no trustme here)")
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


@pytest.fixture
def tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def test_start_tls_round_trip(
    certificate: tuple[Path, Path], tls_server_context: ssl.SSLContext
) -> None:
    client_context = ssl.create_default_context(cafile=str(certificate[0]))
    async with serving(echo, tls_server_context) as port:
        plain = await connect(port)
        stream = await plain.start_tls(client_context, "localhost", timeout=10)
        assert isinstance(stream.get_extra_info("ssl_object"), ssl.SSLObject)
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        await stream.write(b"secret " * 10000)
        assert await read_exactly(stream, 70000) == b"secret " * 10000
        await stream.aclose()


async def test_an_untrusted_certificate_is_a_connect_error(
    tls_server_context: ssl.SSLContext,
) -> None:
    async with serving(echo, tls_server_context) as port:
        plain = await connect(port)
        with pytest.raises(httpcore.ConnectError) as info:
            await plain.start_tls(ssl.create_default_context(), "localhost", timeout=10)
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        # The failed connection was closed.
        with pytest.raises(httpcore.ReadError):
            await plain.read(10)


# ------------------------------------------------------------------- end to end


async def test_chat_wandb_async_calls_run_on_this_backend(
    emulator: WandbEmulator,
) -> None:
    llm = ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=emulator.base_url)  # type: ignore[call-arg]
    answer = await llm.ainvoke("hi")
    assert isinstance(answer.content, str)
    assert answer.content
    chunks = [chunk async for chunk in llm.astream("hi")]
    assert "".join(str(c.content) for c in chunks) == answer.content

    # The pool ChatWandb just used hands its connection's stream out in
    # httpcore's public "network_stream" extension.
    url = chat_url(emulator.base_url)
    pool = _transport.async_client(url)
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert len(pool.connections) == 1
    response = await pool.request(
        "POST",
        url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        content=b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}]}'
        % QWEN.encode(),
    )
    assert response.status == 200
    assert isinstance(response.extensions["network_stream"], AsyncioStream)
    assert len(pool.connections) == 1
