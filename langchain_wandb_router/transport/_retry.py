"""The one retry policy: what is retried, how long to wait, and how to sleep.

ChatWandb (standalone) and WandbRouter both decide with a :class:`RetryPolicy`;
the transport itself sends each request once. W&B's concurrency 429 is
backpressure: retried without spending a retry, with a short capped backoff
(the one rule: :meth:`RetryPolicy.limited_delay`, :data:`MAX_LIMITED`,
:data:`LIMITED_BACKOFF_CAP`), the same in ChatWandb's loop and in the
router's driver. A call's retry decisions are written once, as
steps (:meth:`RetryPolicy.retries`); :meth:`~RetryPolicy.call` and
:meth:`~RetryPolicy.acall` are their thin blocking and awaiting interpreters.
The sleep functions are fields, so tests inject recorders instead of patching
module globals.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbConcurrencyLimitError,
    WandbError,
)
from langchain_wandb_router.transport._loops import run_at_once

__all__ = [
    "LIMITED_BACKOFF_CAP",
    "MAX_LIMITED",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "aclose",
    "aopen_first",
    "astreamed",
    "is_concurrency_limit",
    "open_first",
    "streamed",
]

logger = logging.getLogger("langchain_wandb_router")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

# W&B's concurrency 429 costs no retry (RetryPolicy.limited_delay), but a
# call that meets nothing else must still end: after this many it is given up.
MAX_LIMITED = 20
# The longest wait between two concurrency 429s (without Retry-After).
LIMITED_BACKOFF_CAP = 1.0


def _uniform(low: float, high: float) -> float:
    return random.uniform(low, high)  # noqa: S311 - jitter, not crypto


def is_concurrency_limit(error: BaseException) -> bool:
    """Whether ``error`` is W&B's "too many in flight" 429 (backpressure).

    W&B caps concurrent requests per project and model; such a 429 says
    nothing about the model's health, only that the caller should slow down.
    """
    return isinstance(error, WandbConcurrencyLimitError)


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried and how long to wait before the next try.

    Attributes:
        backoff_base: First backoff ceiling in seconds; doubles per retry.
        backoff_cap: Largest backoff ceiling.
        min_delay: Floor of every backoff, so retries are never spent within
            a fraction of a second.
        retry_after_cap: Largest ``Retry-After`` honoured (a bad header must
            not park a caller for hours).
        sleep: How to wait in sync code (a test seam).
        asleep: How to wait in async code (a test seam).
        jitter: ``(low, high) -> seconds``; uniform by default (a test seam).
        backpressure: Whether :meth:`call` and :meth:`acall` retry W&B's
            concurrency 429 as backpressure (:meth:`limited_delay`: no retry
            spent) rather than as an ordinary retryable failure, as the
            router's driver does. On by default; the router's own route models
            turn it off, so the 429 reaches the router's loop at once.
    """

    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    min_delay: float = 0.1
    retry_after_cap: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    asleep: Callable[[float], Awaitable[None]] = field(
        default=asyncio.sleep, compare=False
    )
    jitter: Callable[[float, float], float] = field(default=_uniform, compare=False)
    backpressure: bool = True

    def is_retryable(self, error: BaseException) -> bool:
        """Whether the same request may succeed if sent again."""
        if isinstance(error, StreamInterruptedError):
            return False
        if isinstance(error, WandbError) and error.status_code is not None:
            # Both must agree: a retryable status (not 4xx/3xx) and a retryable
            # kind (a 429 that means "quota" or "personal account" is not).
            return error.status_code in RETRYABLE_STATUS and error.is_retryable
        return bool(getattr(error, "is_retryable", False))

    def retry_after(self, error: BaseException | None) -> float | None:
        """The server's ``Retry-After`` hint (capped), if the error carries one."""
        hint = error.retry_after if isinstance(error, WandbError) else None
        if hint is None:
            return None
        return min(max(hint, 0.0), self.retry_after_cap)

    def delay(self, retry: int, error: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        ``Retry-After`` wins when W&B sends one; otherwise exponential backoff
        with "equal jitter": between half the ceiling and the ceiling, never
        under ``min_delay``.
        """
        hint = self.retry_after(error)
        if hint is not None:
            return hint
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (retry - 1)))
        return max(self.min_delay, self.jitter(ceiling / 2, ceiling))

    def next_delay(
        self,
        retry: int,
        max_retries: int,
        error: BaseException,
        deadline: float | None = None,
    ) -> float | None:
        """The wait before retry ``retry``, or ``None`` when not to retry.

        Args:
            retry: The retry about to be made (1-based).
            max_retries: How many retries the caller allows.
            error: What the last attempt raised.
            deadline: When the whole call must be over (``time.monotonic()``
                seconds); a retry that could only start after it is not made,
                and ``error`` gets a note saying so.
        """
        if retry > max_retries or not self.is_retryable(error):
            return None
        return _before(deadline, self.delay(retry, error), error, f"retry {retry}")

    def limited_delay(self, limited: int, error: BaseException) -> float | None:
        """The wait after the ``limited``-th concurrency 429 of a call (or route).

        W&B's concurrency 429 is backpressure, not a failure: it spends no
        retry. The first is retried at once (unless W&B sends
        ``Retry-After``); refused again, the slots are held elsewhere, so the
        caller backs off briefly (``delay(limited - 1)``, at most
        :data:`LIMITED_BACKOFF_CAP`). ``None``: more than :data:`MAX_LIMITED`,
        give up (a call that meets nothing else must still end).
        """
        if limited > MAX_LIMITED:
            return None
        hint = self.retry_after(error)
        if hint is None and limited > 1:
            hint = min(self.delay(limited - 1), LIMITED_BACKOFF_CAP)
        return hint or 0.0

    def retries(
        self, max_retries: int, label: str, deadline: float | None = None
    ) -> Generator[float, BaseException, NoReturn]:
        """The retry decisions of one call, as steps (primed, ready for a failure).

        Throw each failure of an attempt in (``steps.throw(error)``): the
        answer is the seconds to wait before the next attempt, or the failure
        itself is raised when it is final. With :attr:`backpressure` on, a
        concurrency 429 is retried as :meth:`limited_delay` without spending
        ``max_retries``; anything else spends one (:meth:`next_delay`); no
        wait ends after ``deadline``.
        """
        steps = self._retry_steps(max_retries, label, deadline)
        next(steps)
        return steps

    def _retry_steps(
        self, max_retries: int, label: str, deadline: float | None
    ) -> Generator[float, BaseException, NoReturn]:
        retry = limited = 0
        wait = 0.0
        while True:
            try:
                yield wait
            except WandbError as exc:
                if self.backpressure and is_concurrency_limit(exc):
                    limited += 1
                    wait_ = self.limited_delay(limited, exc)
                    if wait_ is None:
                        exc.add_note(
                            f"Given up after {MAX_LIMITED} retries at W&B's "
                            "concurrency limit."
                        )
                    else:
                        wait_ = _before(deadline, wait_, exc, "the retry")
                    kind, done, most = "concurrency limit", limited, MAX_LIMITED
                else:
                    retry += 1
                    wait_ = self.next_delay(retry, max_retries, exc, deadline)
                    kind, done, most = type(exc).__name__, retry, max_retries
                if wait_ is None:
                    raise
                wait = wait_
                _log_retry(label, kind, done, most, wait)

    # ------------------------------------------------------------ interpreters
    # Thin interpreters for a single model (ChatWandb); the router has its own
    # driver. ``deadline`` (monotonic seconds) bounds the waits: no backoff
    # sleeps past it. The first attempt is made before any loop (most calls
    # end there); after a failure one loop (_attempts) serves both: acall
    # awaits it, call runs it to the end at once with blocking steps
    # (run_at_once). A stream is opened through them (open_first/aopen_first,
    # below).

    def call(
        self,
        send: Callable[[], T],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> T:
        """Run ``send`` until it succeeds or the failure is final."""
        try:
            return send()  # most calls end here, before any loop is made
        except WandbError as exc:
            failed = exc

        async def attempt() -> T:
            return send()

        async def sleep(seconds: float) -> None:
            self.sleep(seconds)

        retrying = self._attempts(attempt, sleep, max_retries, label, deadline, failed)
        return run_at_once(retrying)

    async def acall(
        self,
        send: Callable[[], Awaitable[T]],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> T:
        """Async :meth:`call`."""
        try:
            return await send()  # most calls end here, before any loop is made
        except WandbError as exc:
            failed = exc
        return await self._attempts(
            send, self.asleep, max_retries, label, deadline, failed
        )

    async def _attempts(
        self,
        send: Callable[[], Awaitable[T]],
        sleep: Callable[[float], Awaitable[None]],
        max_retries: int,
        label: str,
        deadline: float | None,
        failed: WandbError,
    ) -> T:
        """Retry after a first attempt ``failed``, to a success or a final failure.

        The steps decide each wait, or raise what ends the call.
        """
        steps = self.retries(max_retries, label, deadline)
        error = failed
        while True:
            await sleep(steps.throw(error))
            try:
                return await send()
            except WandbError as exc:
                error = exc


def _before(
    deadline: float | None, wait: float, error: BaseException, what: str
) -> float | None:
    """``wait``, or ``None`` (noted on ``error``) if it would end past ``deadline``."""
    if deadline is not None and time.monotonic() + wait >= deadline:
        error.add_note(
            f"Not retried: {what} would start {wait:.2f}s from now, "
            "after the call's deadline."
        )
        return None
    return wait


# ------------------------------------------------------------------ streams
# A stream is retried only until its first item (after it, a retry would
# repeat output): open it under call/acall with open_first/aopen_first, then
# read on with streamed/astreamed. The router opens its attempts the same way.


def open_first(items: Iterator[T]) -> tuple[T, Iterator[T]] | None:
    """A stream's first item and the stream (``None``: it was empty).

    A stream whose first read fails is closed at once (its connection back).
    """
    try:
        for first in items:
            return first, items
    except BaseException:
        _close(items)
        raise
    return None


async def aopen_first(
    items: AsyncIterator[T],
) -> tuple[T, AsyncIterator[T]] | None:
    """Async :func:`open_first`."""
    try:
        async for first in items:
            return first, items
    except BaseException:
        await aclose(items)
        raise
    return None


@contextmanager
def streamed(opened: tuple[T, Iterator[T]] | None) -> Generator[Iterator[T]]:
    """The opened stream from its first item on, closed when the block ends.

    The items come through ``itertools.chain``: no frame of ours per item.
    """
    if opened is None:
        yield iter(())
        return
    first, items = opened
    try:
        yield itertools.chain((first,), items)
    finally:
        _close(items)  # an abandoned stream gives its connection back now


@asynccontextmanager
async def astreamed(
    opened: tuple[T, AsyncIterator[T]] | None,
) -> AsyncGenerator[AsyncIterator[T]]:
    """Async :func:`streamed`."""
    if opened is None:
        yield _Prepended(None, _Nothing())
        return
    first, items = opened
    try:
        yield _Prepended((first,), items)
    finally:
        await aclose(items)


class _Prepended(AsyncIterator[T]):
    """``items`` with ``first`` (a 1-tuple, or ``None``) before them.

    After the first item, each ``__anext__`` hands back the stream's own
    awaitable: no coroutine of ours per item, and the check for it first.
    """

    __slots__ = ("_first", "_items")

    def __init__(self, first: tuple[T] | None, items: AsyncIterator[T]) -> None:
        self._first = first
        self._items = items

    def __aiter__(self) -> _Prepended[T]:
        return self

    def __anext__(self) -> Awaitable[T]:
        if self._first is None:
            return self._items.__anext__()
        (first,), self._first = self._first, None
        return _at_once(first)


class _Nothing(AsyncIterator[Any]):
    """An async stream with no items (an opened stream that had none)."""

    __slots__ = ()

    def __anext__(self) -> Awaitable[Any]:
        return _at_once_stop()


async def _at_once(item: T) -> T:
    return item


async def _at_once_stop() -> Any:
    raise StopAsyncIteration


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


async def aclose(items: AsyncIterator[Any]) -> None:
    """Close an async stream now, if it can be closed (its connection back)."""
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


DEFAULT_POLICY = RetryPolicy()


def _log_retry(label: str, kind: str, retry: int, most: int, wait: float) -> None:
    logger.info(
        "W&B call to %s failed (%s); retry %d/%d in %.2fs",
        label,
        kind,
        retry,
        most,
        wait,
    )
