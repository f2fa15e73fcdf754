"""Bookkeeping of a routed call: its attempts, and the guard on a committed stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.outputs import ChatGenerationChunk

from langchain_wandb_router import _routing
from langchain_wandb_router._routing import Candidate, Cooldown
from langchain_wandb_router.errors import StreamInterruptedError

__all__ = ["Attempts", "StreamTally", "aclose", "guard", "interrupted", "note_attempts"]


class Attempts:
    """What happened on the way to an answer (becomes ``routing.attempts``)."""

    __slots__ = ("excluded", "last_error", "records")

    def __init__(self, excluded: dict[str, str]) -> None:
        self.excluded = excluded
        self.records: list[dict[str, Any]] = []
        self.last_error: BaseException | None = None

    def failed(self, label: str, error: BaseException, started: float) -> None:
        self.last_error = error
        self.records.append(
            {
                "model": label,
                "error": _routing.describe(error),
                "seconds": round(time.monotonic() - started, 4),
            }
        )

    def succeeded(self, label: str, started: float) -> None:
        self.records.append(
            {
                "model": label,
                "error": None,
                "seconds": round(time.monotonic() - started, 4),
            }
        )


class StreamTally:
    """Counts a committed stream's text and cost, for errors and the budget."""

    __slots__ = ("_charge", "_cost", "text")

    def __init__(self, charge: Callable[[float | None], None]) -> None:
        self._charge = charge
        self._cost = 0.0
        self.text: list[str] = []

    def see(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        self.text.append(chunk.text)
        info = chunk.generation_info or {}
        cost = info.get("cost_usd") or chunk.message.response_metadata.get("cost_usd")
        if cost:
            self._cost += cost
        return chunk

    def close(self) -> None:
        """The stream ended: count its cost toward the budget."""
        self._charge(self._cost or None)


def interrupted(
    cand: Candidate, exc: BaseException, tally: StreamTally, cooldown: Cooldown
) -> BaseException:
    if isinstance(exc, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt):
        return exc
    cooldown.failure(cand.label)
    partial = "".join(tally.text)
    if isinstance(exc, StreamInterruptedError):
        exc.partial_text = partial
        return exc
    return StreamInterruptedError(
        f"The stream from '{cand.label}' failed after output had been yielded "
        f"({_routing.describe(exc)}); not falling back, so answers are not spliced.",
        model=cand.label,
        partial_text=partial,
    )


def guard(
    first: ChatGenerationChunk,
    rest: Iterator[ChatGenerationChunk],
    cand: Candidate,
    cooldown: Cooldown,
    tally: StreamTally,
) -> Iterator[ChatGenerationChunk]:
    yield first
    try:
        for chunk in rest:
            yield tally.see(chunk)
    except Exception as exc:
        raise interrupted(cand, exc, tally, cooldown) from exc


async def aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def note_attempts(error: BaseException, run: Attempts) -> None:
    if run.records and hasattr(error, "add_note"):
        lines = [f"{r['model']}: {r['error'] or 'ok'}" for r in run.records]
        error.add_note("WandbRouter attempts: " + " | ".join(lines))
