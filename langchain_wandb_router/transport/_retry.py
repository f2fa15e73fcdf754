"""The one retry policy: what is retried, how long to wait, and how to sleep.

ChatWandb (standalone) and WandbRouter both decide with a :class:`RetryPolicy`;
the transport itself sends each request once. The sleep functions are fields,
so tests inject recorders instead of patching module globals.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbConcurrencyLimitError,
    WandbError,
)

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "is_concurrency_limit"]

logger = logging.getLogger("langchain_wandb_router")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


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
        wait = self.delay(retry, error)
        if deadline is not None and time.monotonic() + wait >= deadline:
            error.add_note(
                f"Not retried: retry {retry} would start {wait:.2f}s from now, "
                "after the call's deadline."
            )
            return None
        return wait

    # ----------------------------------------------------------- adapters
    # Thin loops for a single model (ChatWandb); the router has its own driver.
    # ``deadline`` (monotonic seconds) bounds the waits: no backoff sleeps
    # past it.

    def call(
        self,
        send: Callable[[], T],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> T:
        """Run ``send`` until it succeeds or the failure is final."""
        retry = 0
        while True:
            try:
                return send()
            except WandbError as exc:
                retry += 1
                wait = self.next_delay(retry, max_retries, exc, deadline)
                if wait is None:
                    raise
                _log_retry(label, retry, max_retries, exc, wait)
                self.sleep(wait)

    async def acall(
        self,
        send: Callable[[], Awaitable[T]],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> T:
        """Async :meth:`call`."""
        retry = 0
        while True:
            try:
                return await send()
            except WandbError as exc:
                retry += 1
                wait = self.next_delay(retry, max_retries, exc, deadline)
                if wait is None:
                    raise
                _log_retry(label, retry, max_retries, exc, wait)
                await self.asleep(wait)

    def stream(
        self,
        open_stream: Callable[[], Iterator[T]],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> Iterator[T]:
        """Yield from ``open_stream()``, retrying only before its first item."""
        retry = 0
        while True:
            items = open_stream()
            try:
                first = next(items)
            except StopIteration:
                return
            except WandbError as exc:
                retry += 1
                wait = self.next_delay(retry, max_retries, exc, deadline)
                if wait is None:
                    raise
                _log_retry(label, retry, max_retries, exc, wait)
                self.sleep(wait)
                continue
            try:
                yield first
                yield from items
            finally:
                # An abandoned stream must give its connection back now.
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            return

    async def astream(
        self,
        open_stream: Callable[[], AsyncIterator[T]],
        max_retries: int,
        label: str,
        deadline: float | None = None,
    ) -> AsyncIterator[T]:
        """Async :meth:`stream`."""
        retry = 0
        while True:
            items = open_stream()
            try:
                first = await anext(items)
            except StopAsyncIteration:
                return
            except WandbError as exc:
                retry += 1
                wait = self.next_delay(retry, max_retries, exc, deadline)
                if wait is None:
                    raise
                _log_retry(label, retry, max_retries, exc, wait)
                await self.asleep(wait)
                continue
            try:
                yield first
                async for item in items:
                    yield item
            finally:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()
            return


DEFAULT_POLICY = RetryPolicy()


def _log_retry(
    label: str, retry: int, max_retries: int, error: BaseException, wait: float
) -> None:
    logger.info(
        "W&B call to %s failed (%s); retry %d/%d in %.2fs",
        label,
        type(error).__name__,
        retry,
        max_retries,
        wait,
    )
