"""Seeded per-model latency: time to first token, time per token, a heavy tail.

:class:`Latency` describes a model's timing, :func:`draw_latency` draws one
request's delays from it, :class:`LatencyState` keeps the settings, one
seeded ``random.Random`` per model and the draws made, and
:func:`wait_unless_gone` waits them out in a handler thread, returning early
when the client hangs up so a cancelled request frees its slot at once.
"""

from __future__ import annotations

import math
import random
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Latency",
    "LatencyDraw",
    "LatencySetting",
    "LatencyState",
    "draw_latency",
    "wait_unless_gone",
]

_ANY_MODEL = "*"


@dataclass(frozen=True)
class Latency:
    """How long a model takes to answer: drawn afresh, seeded, per request.

    Attributes:
        ttft: Median seconds from the request's admission (and service time)
            to its first token: a stream's first chunk, or the start of a
            JSON answer's generation.
        per_token: Median seconds per output token: the wait between one
            streamed chunk and the next; a JSON answer arrives after
            ``ttft + completion_tokens * per_token``.
        tail_share: Share of requests (0 to 1) in the heavy tail.
        tail_factor: How many times slower a tail request is (both delays).
        jitter: Relative spread: each delay is multiplied by a lognormal
            factor of median 1 and this sigma (0: every request alike).

    Raises:
        ValueError: A figure is negative or not finite, ``tail_share`` is
            above 1, or ``tail_factor`` is below 1.
    """

    ttft: float
    per_token: float = 0.0
    tail_share: float = 0.0
    tail_factor: float = 10.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("ttft", "per_token", "tail_share", "tail_factor", "jitter"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Latency.{name} must be finite and >= 0: {value!r}")
        if self.tail_share > 1:
            raise ValueError(f"Latency.tail_share must be <= 1: {self.tail_share!r}")
        if self.tail_factor < 1:
            raise ValueError(f"Latency.tail_factor must be >= 1: {self.tail_factor!r}")


LatencySetting = Latency | Mapping[str, Latency] | None
"""Latency for every model, per model id (``"*"`` for the others), or none."""


@dataclass(frozen=True)
class LatencyDraw:
    """The delays drawn for one request (``WandbEmulator.latencies``).

    Attributes:
        request: The request's number, as in its ``chatcmpl-`` id.
        model: The model id the request named.
        ttft: Seconds waited before the first token.
        per_token: Seconds per output token.
        tail: Whether the request fell in the heavy tail.
    """

    request: int
    model: str
    ttft: float
    per_token: float
    tail: bool

    def answer_time(self, tokens: int) -> float:
        """Seconds before a JSON answer of ``tokens`` output tokens is sent."""
        return self.ttft + tokens * self.per_token


def draw_latency(
    latency: Latency, rng: random.Random, request: int = 0, model: str = ""
) -> LatencyDraw:
    """Draw one request's delays from ``latency`` with ``rng``.

    Every draw takes the same three numbers from ``rng``, whatever the
    settings, so one figure changed leaves the others' sequences alone.

    Args:
        latency: The model's timing.
        rng: The model's seeded generator.
        request: The request's number, recorded in the draw.
        model: The model id, recorded in the draw.

    Returns:
        The delays, tail factor and jitter applied.
    """
    tail = rng.random() < latency.tail_share
    spread_first = rng.gauss(0.0, 1.0)
    spread_tokens = rng.gauss(0.0, 1.0)
    factor = latency.tail_factor if tail else 1.0
    return LatencyDraw(
        request=request,
        model=model,
        ttft=latency.ttft * factor * math.exp(latency.jitter * spread_first),
        per_token=latency.per_token * factor * math.exp(latency.jitter * spread_tokens),
        tail=tail,
    )


class LatencyState:
    """Latency settings, a seeded generator per model, and the draws made.

    A model's generator is seeded from the seed its setting was given with and
    the model id, so its draws repeat run after run whatever other models'
    traffic; changing a setting restarts the sequences it applies to.

    Args:
        latency: The initial setting (see :meth:`set`).
        seed: The seed of the initial setting.
    """

    def __init__(self, latency: LatencySetting = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._default: tuple[Latency, int] | None = None
        self._own: dict[str, tuple[Latency, int]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._draws: list[LatencyDraw] = []
        self.set(latency, seed=seed)

    def set(
        self, latency: LatencySetting, *, model: str | None = None, seed: int = 0
    ) -> None:
        """Replace every setting, or (with ``model``) one model's; see the emulator."""
        with self._lock:
            if model is None:
                pairs = _pairs(latency)
                default = pairs.pop(_ANY_MODEL, None)
                self._default = None if default is None else (default, seed)
                self._own = {m: (lat, seed) for m, lat in pairs.items()}
                self._rngs.clear()
                return
            if latency is not None and not isinstance(latency, Latency):
                raise TypeError("with model=, the latency must be a Latency or None")
            entry = None if latency is None else (latency, seed)
            if model == _ANY_MODEL:
                self._default = entry
                self._rngs = {m: r for m, r in self._rngs.items() if m in self._own}
                return
            if entry is None:
                self._own.pop(model, None)
            else:
                self._own[model] = entry
            self._rngs.pop(model, None)

    def get(self, model: str) -> Latency | None:
        """The latency that applies to ``model`` (``None``: answers at once)."""
        entry = self._own.get(model, self._default)
        return None if entry is None else entry[0]

    def draw(self, model: str, request: int) -> LatencyDraw | None:
        """Draw and record request ``request``'s delays (``None``: no latency)."""
        if self._default is None and not self._own:  # the common case, no lock
            return None
        with self._lock:
            entry = self._own.get(model, self._default)
            if entry is None:
                return None
            latency, seed = entry
            rng = self._rngs.get(model)
            if rng is None:
                rng = self._rngs[model] = random.Random(f"{seed}/{model}")  # noqa: S311
            drawn = draw_latency(latency, rng, request, model)
            self._draws.append(drawn)
            return drawn

    def draws(self) -> list[LatencyDraw]:
        """The draws made so far, in the order they were made."""
        with self._lock:
            return list(self._draws)

    def reset(self) -> None:
        """Forget the draws and restart every model's sequence from its seed."""
        with self._lock:
            self._draws.clear()
            self._rngs.clear()


def _pairs(latency: LatencySetting) -> dict[str, Latency]:
    """A whole setting as model id → latency (``"*"`` for every other model)."""
    if latency is None:
        return {}
    if isinstance(latency, Latency):
        return {_ANY_MODEL: latency}
    pairs = dict(latency)
    for model, value in pairs.items():
        if not isinstance(value, Latency):
            raise TypeError(f"latency for {model!r} must be a Latency: {value!r}")
    return pairs


def wait_unless_gone(sock: socket.socket, seconds: float) -> bool:
    """Wait ``seconds`` in this thread, unless the client hangs up first.

    Args:
        sock: The request's connection.
        seconds: How long to wait.

    Returns:
        ``True`` after the full wait, ``False`` as soon as the client has
        closed or reset the connection (nothing more can reach it).
    """
    if seconds <= 0:
        return True
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        remaining = seconds
        while remaining > 0:
            if selector.select(remaining):
                try:
                    pending = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not pending:
                    return False
                # The client sent more (a pipelined request) rather than hanging
                # up; nothing more can be learnt from the socket until it is read.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return True
            remaining = deadline - time.monotonic()
    return True
