"""An httpcore network backend written directly on asyncio.

httpcore's default async backend goes through anyio: every read and write
opens a cancel scope (``anyio.fail_after``), asks sniffio which library runs,
and yields to the event loop even when the data is already there. Measured on
``ChatWandb.ainvoke`` against the local emulator, this backend cuts the call's
CPU by about a fifth.

Here a small :class:`asyncio.Protocol` buffers what the transport receives, so
:meth:`AsyncioStream.read` returns at once when data is waiting and awaits one
future only when the buffer is empty. Writes go to ``transport.write`` (small
ones coalesced until the task reads or yields) and wait only while the
transport has paused writing (its buffer is above the high-water mark). A
timeout is a timer that resolves that same future, not a cancellation of the
task. Errors map to httpcore's exceptions as its own backends map them.

Use it only on an asyncio event loop (uvloop included); under trio, httpcore's
default backend remains the right one.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, NoReturn

import httpcore

__all__ = ["AsyncioBackend", "AsyncioStream"]

# Above this many unread bytes the transport stops reading from the socket, so
# a peer that sends faster than we consume fills its own buffers, not ours.
_READ_HIGH_WATER = 256 * 1024
_READ_LOW_WATER = 64 * 1024

# Writes smaller than this in total are held until the task next reads or
# yields to the event loop, then sent together: httpcore writes a request's
# head and body separately, and on a TCP_NODELAY socket each write would be a
# send() of its own (a system call and a packet). Larger writes go at once.
_CORK_LIMIT = 64 * 1024

# What anyio, httpcore's default, uses: try the next address of a dual-stack
# host if the first has not connected within this many seconds.
_HAPPY_EYEBALLS_DELAY = 0.25


class _StreamProtocol(asyncio.Protocol):
    """Buffers received data and records the connection's state for one stream.

    At most one reader and one writer wait at a time (httpcore never reads or
    writes one connection from two tasks); each waits on a future that this
    protocol, or its timer, resolves: ``True`` when woken by the connection,
    ``False`` when the timer ran out.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.read_waiter: asyncio.Future[bool] | None = None
        self.drain_waiter: asyncio.Future[bool] | None = None

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection always hands a stream transport to a stream protocol.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if type(data) is not bytes:  # the proactor loop may pass a bytearray
            data = bytes(data)
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _READ_HIGH_WATER and not self.reading_paused:
            self._pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        # False: let the transport close itself; an HTTP client has nothing
        # left to say once the server has finished.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    # -- used by the stream

    def take(self, max_bytes: int) -> bytes:
        """Pop up to ``max_bytes`` of buffered data (the buffer is not empty)."""
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.size -= len(chunk)
        if self.reading_paused and self.size <= _READ_LOW_WATER:
            self._resume_reading()
        return chunk

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
            self.reading_paused = True

    def _resume_reading(self) -> None:
        self.reading_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None:
            self.read_waiter = None
            if not waiter.done():
                waiter.set_result(True)

    def _wake_writer(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(True)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def _wait(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[bool], timeout: float | None
) -> bool:
    """Await ``waiter``; ``False`` if ``timeout`` seconds passed first.

    A timer that resolves the future costs one heap entry; cancelling the
    task instead (``asyncio.timeout``) costs a context manager, an uncancel
    and an exception on every expiry.
    """
    if timeout is None:
        return await waiter
    timer = loop.call_at(loop.time() + timeout, _expire, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()


def _is_readable(sock: Any) -> bool:
    """Whether the kernel holds data (or EOF) for ``sock`` not yet read."""
    if sock is None:
        return True
    fd = sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows has no poll(); select() on one socket
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (TCP, Unix socket, or TLS over either) on an asyncio transport."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        protocol: _StreamProtocol,
    ) -> None:
        """Wrap a connected ``transport`` whose protocol is ``protocol``."""
        self._loop = loop
        self._transport = transport
        self._protocol = protocol
        self._closed = False
        # Small writes wait here until the task reads or yields to the loop.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flush_handle: asyncio.Handle | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Return up to ``max_bytes`` received bytes; ``b""`` at end of stream.

        Raises:
            httpcore.ReadTimeout: Nothing arrived within ``timeout`` seconds.
            httpcore.ReadError: The connection broke or was closed here.
        """
        if self._pending:
            self._flush()
        protocol = self._protocol
        if not protocol.chunks:
            if self._closed:
                raise httpcore.ReadError("the connection is closed")
            if not (protocol.eof or protocol.lost):
                await self._await_data(timeout)
            if not protocol.chunks:
                if protocol.error is not None:
                    raise httpcore.ReadError(str(protocol.error)) from protocol.error
                if self._closed:
                    raise httpcore.ReadError("the connection is closed")
                return b""
        return protocol.take(max_bytes)

    async def _await_data(self, timeout: float | None) -> None:
        protocol = self._protocol
        if protocol.read_waiter is not None:
            msg = "another task is already reading this connection"
            raise RuntimeError(msg)
        waiter = protocol.read_waiter = self._loop.create_future()
        try:
            woken = await _wait(self._loop, waiter, timeout)
        finally:
            if protocol.read_waiter is waiter:
                protocol.read_waiter = None
        if not woken:
            raise httpcore.ReadTimeout("timed out waiting for data")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer``, waiting only while the transport's buffer is full.

        A small write is held until this task next reads or yields to the
        loop, so that a request's head and body leave in one ``send()``. A
        connection that breaks meanwhile shows on the next read, which is
        where httpcore looks: it ignores write errors to read the response.

        Raises:
            httpcore.WriteTimeout: The peer took no data for ``timeout`` seconds.
            httpcore.WriteError: The connection broke or was closed.
        """
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            self._raise_write_error()
        self._pending.append(buffer)
        self._pending_size += len(buffer)
        if self._pending_size < _CORK_LIMIT and not protocol.writing_paused:
            if self._flush_handle is None:
                # A timer due now runs as soon as the loop does, like call_soon;
                # unlike a call_soon handle, once cancelled (read() flushed
                # first, the usual case) it costs the loop no extra iteration.
                loop = self._loop
                self._flush_handle = loop.call_at(loop.time(), self._flush)
            return
        self._flush()
        if protocol.writing_paused:
            await self._drain(timeout)

    def _flush(self) -> None:
        """Hand the pending writes to the transport as one send."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    async def _drain(self, timeout: float | None) -> None:
        protocol = self._protocol
        waiter = protocol.drain_waiter = self._loop.create_future()
        try:
            woken = await _wait(self._loop, waiter, timeout)
        finally:
            if protocol.drain_waiter is waiter:
                protocol.drain_waiter = None
        if not woken:
            raise httpcore.WriteTimeout("timed out sending data")
        if protocol.lost:
            self._raise_write_error()

    def _raise_write_error(self) -> NoReturn:
        error = self._protocol.error
        if error is not None:
            raise httpcore.WriteError(str(error)) from error
        raise httpcore.WriteError("the connection is closed")

    async def aclose(self) -> None:
        """Close the connection at once, discarding anything unsent.

        httpcore closes a connection only when it is done with it or after an
        error, so nothing worth flushing is lost; aborting (as anyio does)
        needs no further loop iteration and no TLS close exchange, which could
        outlive an event loop that is shutting down.
        """
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade this connection to TLS; this stream must not be used after.

        Raises:
            httpcore.ConnectTimeout: The handshake took over ``timeout`` seconds.
            httpcore.ConnectError: The handshake failed (certificate, reset...).
        """
        self._flush()  # what was written before goes out before the handshake
        try:
            async with asyncio.timeout(timeout):
                transport = await self._loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                )
        except OSError as exc:  # ssl.SSLError and TimeoutError included
            await self.aclose()
            _raise_connect_error(exc)
        except BaseException:  # cancelled: the half-done connection goes too
            await self.aclose()
            raise
        if transport is None:  # only when the transport closed mid-handshake
            await self.aclose()
            raise httpcore.ConnectError(
                "the connection closed during the TLS handshake"
            )
        self._protocol.transport = transport
        return AsyncioStream(self._loop, transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        """The keys httpcore asks for; ``None`` for any other."""
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            protocol = self._protocol
            if protocol.chunks or protocol.eof or protocol.lost:
                return True
            return _is_readable(transport.get_extra_info("socket"))
        return None


def _raise_connect_error(exc: OSError) -> NoReturn:
    """Re-raise a failed connect or handshake as httpcore's exception.

    ``TimeoutError`` is an ``OSError`` too, so it is tested first.
    """
    if isinstance(exc, TimeoutError):
        raise httpcore.ConnectTimeout(str(exc) or "timed out connecting") from exc
    raise httpcore.ConnectError(str(exc)) from exc


def _apply_options(
    transport: asyncio.Transport, options: Iterable[httpcore.SOCKET_OPTION]
) -> None:
    sock = transport.get_extra_info("socket")
    for option in options:
        sock.setsockopt(*option)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`AsyncioStream` connections on the running asyncio loop.

    Stateless: one instance may serve any number of pools and event loops.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection with ``TCP_NODELAY`` set, as httpcore does.

        Raises:
            httpcore.ConnectTimeout: Not connected within ``timeout`` seconds.
            httpcore.ConnectError: Refused, unresolvable, unreachable...
        """
        loop = asyncio.get_running_loop()
        protocol = _StreamProtocol()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                    happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
                )
        except OSError as exc:  # TimeoutError and socket.gaierror included
            _raise_connect_error(exc)
        stream = AsyncioStream(loop, transport, protocol)
        try:
            # Requests are written whole, so Nagle's algorithm would only delay them.
            _apply_options(transport, [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            _apply_options(transport, socket_options or ())
        except OSError as exc:
            await stream.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a connection to the Unix socket at ``path``.

        Raises:
            httpcore.ConnectTimeout: Not connected within ``timeout`` seconds.
            httpcore.ConnectError: No such socket, refused...
        """
        loop = asyncio.get_running_loop()
        protocol = _StreamProtocol()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_unix_connection(lambda: protocol, path)
        except OSError as exc:  # TimeoutError and socket.gaierror included
            _raise_connect_error(exc)
        stream = AsyncioStream(loop, transport, protocol)
        try:
            _apply_options(transport, socket_options or ())
        except OSError as exc:
            await stream.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        return stream

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running loop."""
        await asyncio.sleep(seconds)
