"""Server-sent events from W&B's streamed chat completions, decoded by hand.

The decoder works on the raw byte pieces of the response body, which is what
keeps the per-chunk client cost low; sending the request and mapping transport
failures is :mod:`langchain_wandb_router.transport._http`'s job.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_wandb_router.errors import WandbAPIError, WandbError, scrub
from langchain_wandb_router.transport._wire import error_from_payload

_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    r"""Turns raw byte pieces into decoded JSON events, per the SSE spec.

    Lines end in CRLF, LF or a lone CR (a CR ending one piece and an LF
    starting the next are one line ending). ``data:`` loses one leading space;
    several ``data:`` lines of one event are joined with ``"\n"``; the event
    is dispatched at the blank line; comments and other fields are ignored.
    An event left without its blank line when the body ends is dropped.

    The common W&B piece, ``data: {...}\n\n`` with LF endings and nothing
    carried over, takes a fast path: one ``split`` and one ``json.loads``.

    A bad event stops decoding: :meth:`feed` returns the events decoded before
    it and sets :attr:`failure`, so the caller can hand those on first.

    Attributes:
        done: ``[DONE]`` arrived; later pieces decode to nothing (a body is
            still read to its end, so its connection goes back to the pool).
        decoded: Events were decoded (and returned): a failure now cuts an
            answer short rather than preventing it.
        finished: A ``finish_reason`` or the usage chunk arrived, so the answer
            is complete even if a proxy swallows the closing ``[DONE]``.
        failure: The typed error for a malformed or error event, once seen.
    """

    __slots__ = (
        "_clean",
        "_cr",
        "_data",
        "_started",
        "_tail",
        "advice",
        "decoded",
        "done",
        "failure",
        "finished",
        "model",
        "successor",
    )

    def __init__(
        self, model: str, *, successor: str | None = None, advice: str | None = None
    ) -> None:
        self._tail = b""
        self._cr = False
        self._started = False
        # True when nothing is carried over: no partial line, no trailing CR,
        # byte-order mark already checked. Only then is the fast path exact.
        self._clean = False
        self._data: bytes | None = None
        self.done = False
        self.decoded = False
        self.finished = False
        self.failure: WandbError | None = None
        self.model = model
        self.successor = successor
        self.advice = advice

    def feed(self, piece: bytes) -> list[dict[str, Any]]:
        """Decode ``piece``; return the complete events it finished."""
        if self.failure is not None:
            raise self.failure
        if self.done:
            return []
        if self._clean and piece[-2:] == b"\n\n" and piece[:6] == b"data: ":
            # The common W&B piece: exactly one single-line event, nothing
            # pending. (Ints: ``in`` with an int is a plain memchr.)
            text = piece[6:-2]
            if self._data is None and 10 not in text and 13 not in text:
                event = self._decode(text)
                return [] if event is None else [event]
        if self._clean and b"\r" not in piece:
            lines = piece.split(b"\n")
            tail = lines.pop()
            if tail:
                self._tail = tail
                self._clean = False
        else:
            lines = self._split(piece)
        events: list[dict[str, Any]] = []
        data = self._data
        for line in lines:
            if line:
                if line[:6] == b"data: ":
                    value = line[6:]
                elif line[:5] == b"data:":
                    value = line[5:]
                elif line == b"data":
                    value = b""
                else:
                    continue  # a comment (":...") or another field
                data = value if data is None else data + b"\n" + value
                continue
            if data is None:
                continue  # a blank line with no data before it
            event = self._decode(data)
            data = None
            if event is not None:
                events.append(event)
            elif self.done or self.failure is not None:
                break
        self._data = data
        return events

    def _decode(self, text: bytes) -> dict[str, Any] | None:
        """One dispatched event's data: the event, or ``None`` (skip/end/fail)."""
        if text[:1] != b"{":
            stripped = text.strip()
            if stripped == b"[DONE]":
                self.done = True
                return None
            if not stripped:
                return None
        try:
            # str, not bytes: json.loads would sniff the encoding per event.
            event = json.loads(text.decode())
        except ValueError:
            self.failure = self._malformed(text)
            return None
        if not isinstance(event, dict):
            return None
        choices = event.get("choices")
        if choices:
            try:
                if choices[0].get("finish_reason"):
                    self.finished = True
            except (LookupError, TypeError, AttributeError):
                # Not a list of objects (try costs nothing when nothing fails).
                self.failure = self._malformed(text)
                return None
        elif event.get("error"):
            self.failure = error_from_payload(
                event, self.model, successor=self.successor, advice=self.advice
            )
            return None
        elif event.get("usage"):
            self.finished = True
        self.decoded = True
        return event

    def _split(self, piece: bytes) -> list[bytes]:
        """Split into complete lines, carrying state across pieces (slow path)."""
        buf = self._tail + piece if self._tail else piece
        if self._cr:
            if not buf:
                return []
            self._cr = False
            if buf[:1] == b"\n":
                buf = buf[1:]  # the LF half of a CRLF split across pieces
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._tail = buf  # maybe a byte-order mark cut short
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[len(_BOM) :]
        if b"\r" in buf:
            self._cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        self._clean = not self._tail and not self._cr
        return lines

    def _malformed(self, text: bytes) -> WandbAPIError:
        # Scrubbed before the cut, so a cut cannot leave part of an echoed key.
        quoted = scrub(text.decode("utf-8", "replace"))[:80]
        return WandbAPIError(
            f"W&B sent a malformed stream line for '{self.model}': {quoted!r}",
            model=self.model,
        )
