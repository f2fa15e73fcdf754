"""A real ``redis-server`` for the Redis state tests.

Uses Debian's ``redis-server`` binary on a free 127.0.0.1 port in a temporary
directory, without persistence. Tests that need Redis skip with a clear reason
only when the binary is absent; any other failure to start is an error.

Use the session fixtures by binding them in the test module
(``redis_url = redis_server.redis_url``; ``redis_cluster_url`` for a 3-master
Redis Cluster), or start a private :class:`RedisServer` for a test that kills
or restarts it.
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


def redis_binary(name: str = "redis-server") -> str:
    """The path of ``name`` (a Redis binary), or skip the test that needs it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} is not installed (Debian: apt-get install redis-server, "
            "which brings redis-tools); Redis state tests skipped"
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


def free_cluster_port() -> int:
    """A port below 55535 free for a cluster node, with its bus port (+10000)."""
    for _ in range(200):
        port = free_port()
        if port < 55535 and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisServer:
    """One ``redis-server`` process; ``kill()`` and ``start()`` again at will.

    Restarting on the same port and directory reloads ``dump.rdb`` if a test
    wrote one with ``SAVE`` (the server never saves on its own).

    Args:
        directory: Where its log (and any dump or cluster config) goes.
        port: The port to listen on (a free one if not given).
        extra: More ``redis-server`` arguments (e.g. cluster mode).
    """

    def __init__(
        self, directory: Path, port: int | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        log = self.directory / f"redis-{self.port}.log"
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
                *self.extra,
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


class RedisCluster:
    """A 3-master Redis Cluster (no replicas) of :class:`RedisServer` nodes.

    Args:
        directory: Where the nodes keep their logs and cluster configs.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """The cluster's ``redis+cluster://`` URL (one node; the rest are found)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        """Start three nodes, join them, and wait for ``cluster_state:ok``."""
        cli = redis_binary("redis-cli")
        for _ in range(3):
            port = free_cluster_port()
            node = RedisServer(
                self.directory,
                port,
                extra=(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
                ),
            )  # fmt: skip
            self.nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT * 3
        while not all(self._ok(cli, node.port) for node in self.nodes):
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("the Redis Cluster never reached cluster_state:ok")
            time.sleep(0.05)

    @staticmethod
    def _ok(cli: str, port: int) -> bool:
        info = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return "cluster_state:ok" in info.stdout

    def kill(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> RedisCluster:
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
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``redis+cluster://`` URL of a 3-master cluster shared by the session."""
    redis_binary()
    with RedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster.url
