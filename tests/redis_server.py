"""A real ``redis-server`` for the Redis state tests.

Uses Debian's ``redis-server`` binary on a free 127.0.0.1 port in a temporary
directory, without persistence. Tests that need Redis skip with a clear reason
only when the binary is absent; any other failure to start is an error.

Use the session fixture by binding it in the test module
(``redis_url = redis_server.redis_url``), or start a private
:class:`RedisServer` for a test that kills or restarts it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

_START_TIMEOUT = 10.0


def redis_binary() -> str:
    """The ``redis-server`` path, or skip the test that needs it."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip(
            "redis-server is not installed (Debian: apt-get install redis-server); "
            "Redis state tests skipped"
        )
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_ping(port: int) -> bool:
    """Whether a Redis server on ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``kill()`` and ``start()`` again at will.

    Restarting on the same port and directory reloads ``dump.rdb`` if a test
    wrote one with ``SAVE`` (the server never saves on its own).
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        log = self.directory / "redis.log"
        self._process = subprocess.Popen(
            [
                redis_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(log),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = log.read_text()[-2000:] if log.exists() else "(no log)"
                raise RuntimeError(
                    f"redis-server did not start on {self.port}:\n{tail}"
                )
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server shared by the test session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url
