"""Bookkeeping of a routed call: its attempts, and the guard on a committed stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import UsageMetadata, add_usage

from langchain_wandb_router.errors import stream_interrupted
from langchain_wandb_router.router import _routing

__all__ = ["Attempts", "StreamTally", "interrupted", "note_attempts"]


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

    def abandoned(self, label: str, started: float) -> None:
        """A hedged call's slower attempt, cancelled when the other answered."""
        self.records.append(
            {
                "model": label,
                "error": "abandoned: the other attempt answered first",
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
    """A committed stream's text and usage, for errors and the budget."""

    __slots__ = ("text", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage: UsageMetadata | None = None

    def see(self, chunk: AIMessageChunk) -> AIMessageChunk:
        content = chunk.content
        # Plain string content is its own text; `.text` costs a call per chunk.
        self.text.append(content if type(content) is str else chunk.text)
        if chunk.usage_metadata:
            self.usage = add_usage(self.usage, chunk.usage_metadata)
        return chunk


def interrupted(label: str, exc: BaseException, tally: StreamTally) -> BaseException:
    """The error a committed stream raises when it breaks: never a splice."""
    if isinstance(exc, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt):
        return exc
    return stream_interrupted(
        exc, label, cause=_routing.describe(exc), partial_text="".join(tally.text)
    )


def note_attempts(error: BaseException, run: Attempts) -> None:
    if run.records and hasattr(error, "add_note"):
        lines = [f"{r['model']}: {r['error'] or 'ok'}" for r in run.records]
        error.add_note("WandbRouter attempts: " + " | ".join(lines))
