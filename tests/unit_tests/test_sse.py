"""SSE decoding per the WHATWG event-stream rules, on W&B-shaped events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from langchain_wandb_router.errors import (
    WandbAPIError,
    WandbError,
    WandbModelNotFoundError,
)
from langchain_wandb_router.transport._http import SSEDecoder
from tests.helpers import error_code_cases

M = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "model": M,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def line(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode()


def feed_all(decoder: SSEDecoder, pieces: list[bytes]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events


def every_split(stream: bytes) -> list[list[bytes]]:
    """The stream cut into two pieces at every position, and byte by byte."""
    cuts = [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    return [*cuts, [stream[i : i + 1] for i in range(len(stream))]]


# ------------------------------------------------------------------ line endings


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_each_line_ending_separates_events(eol: bytes) -> None:
    stream = (
        line(chunk("a"))
        + eol
        + eol
        + line(chunk("b"))
        + eol
        + eol
        + b"data: [DONE]"
        + eol
        + eol
    )
    for pieces in every_split(stream):
        decoder = SSEDecoder(M)
        events = feed_all(decoder, pieces)
        assert [e["choices"][0]["delta"]["content"] for e in events] == ["a", "b"]
        assert decoder.done


def test_cr_and_lf_split_across_pieces_are_one_line_ending() -> None:
    # Were the CR and the LF counted as two endings, the blank line would
    # dispatch the first data line alone, and '{"a":' is not JSON.
    decoder = SSEDecoder(M)
    assert decoder.feed(b'data: {"a":\r') == []
    assert decoder.feed(b"\ndata: 1}\r") == []
    assert decoder.feed(b"\n\r") == [{"a": 1}]  # LF pairs with the CR; CR is blank
    assert decoder.feed(b"\n") == []  # pairs with the previous CR: no new line
    assert decoder.failure is None


def test_crlf_split_after_a_data_line_keeps_the_event_whole() -> None:
    decoder = SSEDecoder(M)
    events = feed_all(decoder, [b'data: {"x"\r', b"\n", b"data: :1}\r", b"\n\r", b"\n"])
    assert events == [{"x": 1}]
    assert decoder.failure is None


def test_lone_cr_then_blank_lf_line_dispatches() -> None:
    # "\r" then "\n\n": the LF right after the CR belongs to it, the next LF is
    # the blank line. Dispatch must come only then, not one line early.
    decoder = SSEDecoder(M)
    assert decoder.feed(line({"k": 1}) + b"\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [{"k": 1}]


def test_mixed_endings_in_one_piece() -> None:
    stream = (
        line({"a": 1})
        + b"\r\n\n"
        + line({"b": 2})
        + b"\r\r"
        + line({"c": 3})
        + b"\n\r\n"
    )
    for pieces in every_split(stream):
        assert feed_all(SSEDecoder(M), pieces) == [{"a": 1}, {"b": 2}, {"c": 3}]


# ------------------------------------------------------------------ fields


def test_only_one_space_after_the_colon_is_removed() -> None:
    decoder = SSEDecoder(M)
    # Two spaces: the value keeps one, still valid JSON; none: nothing removed.
    assert decoder.feed(b'data:  {"a": 1}\n\ndata:{"b": 2}\n\n') == [{"a": 1}, {"b": 2}]


def test_multiline_data_is_joined_with_newline_and_dispatched_at_blank_line() -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(b'data: {"text":\n') == []
    assert decoder.feed(b'data: "two lines"}\n') == []
    # JSON allows the joining newline as whitespace between tokens.
    assert decoder.feed(b"\n") == [{"text": "two lines"}]


def test_value_whitespace_is_kept_inside_strings() -> None:
    decoder = SSEDecoder(M)
    events = decoder.feed(b'data: ["a\ndata:  b"]\n\n')
    # A JSON string cannot hold a raw newline: the joined event is malformed.
    assert events == []
    assert isinstance(decoder.failure, WandbAPIError)


def test_comments_and_other_fields_are_ignored() -> None:
    stream = (
        b": keep-alive\n\n"
        b"event: message\nid: 7\nretry: 1000\n" + line({"a": 1}) + b"\n\n"
        b"foo: bar\n\n"
        b":" + line({"not": "data"}) + b"\n\n"
        b"data: [DONE]\n\n"
    )
    for pieces in every_split(stream):
        decoder = SSEDecoder(M)
        assert feed_all(decoder, pieces) == [{"a": 1}]
        assert decoder.done


def test_field_without_colon_is_an_empty_data_line() -> None:
    decoder = SSEDecoder(M)
    # "data" alone appends an empty line: {"a": joined with "" and 1} -> valid.
    assert decoder.feed(b'data: {"a":\ndata\ndata: 1}\n\n') == [{"a": 1}]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(b"\n\n\n: ping\n\n\n") == []
    assert decoder.feed(b"data:\n\n") == []  # an empty event is skipped
    assert decoder.failure is None


def test_byte_order_mark_is_ignored_even_when_split() -> None:
    stream = b"\xef\xbb\xbf" + line({"a": 1}) + b"\n\n"
    for pieces in every_split(stream):
        assert feed_all(SSEDecoder(M), pieces) == [{"a": 1}]


def test_event_without_blank_line_at_end_is_not_dispatched() -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(line({"a": 1}) + b"\n") == []
    assert not decoder.done


# ------------------------------------------------------------------ [DONE]


def test_done_stops_decoding_the_rest() -> None:
    decoder = SSEDecoder(M)
    events = decoder.feed(
        line({"a": 1}) + b"\n\ndata: [DONE]\n\n" + line({"b": 2}) + b"\n\n"
    )
    assert events == [{"a": 1}]
    assert decoder.done
    # Pieces after [DONE] (read so the connection can be reused) decode to nothing.
    assert decoder.feed(line({"c": 3}) + b"\n\n") == []
    assert decoder.feed(b"data: [DON") == []


def test_decoded_says_whether_any_event_came_out() -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(b": a comment\n\ndata: [DONE]\n\n") == []
    assert not decoder.decoded
    decoder = SSEDecoder(M)
    decoder.feed(line({"a": 1})[:5])  # half an event: nothing decoded yet
    assert not decoder.decoded
    assert decoder.feed(line({"a": 1})[5:] + b"\n\n") == [{"a": 1}]
    assert decoder.decoded


@pytest.mark.parametrize("done", [b"data:[DONE]", b"data: [DONE]", b"data: [DONE] "])
def test_done_spellings(done: bytes) -> None:
    decoder = SSEDecoder(M)
    decoder.feed(done + b"\n\n")
    assert decoder.done


def test_finish_reason_and_usage_mark_the_answer_finished() -> None:
    decoder = SSEDecoder(M)
    decoder.feed(line(chunk("a")) + b"\n\n")
    assert not decoder.finished
    decoder.feed(line(chunk("", "stop")) + b"\n\n")
    assert decoder.finished
    usage_only = SSEDecoder(M)
    usage_only.feed(line({"choices": [], "usage": {"total_tokens": 3}}) + b"\n\n")
    assert usage_only.finished


# ------------------------------------------------------------------ failures


def test_events_before_a_malformed_line_are_returned_then_failure_is_set() -> None:
    decoder = SSEDecoder(M)
    piece = (
        line(chunk("a"))
        + b"\n\n"
        + line(chunk("b"))
        + b"\n\ndata: {nope\n\n"
        + line(chunk("c"))
        + b"\n\n"
    )
    events = decoder.feed(piece)
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["a", "b"]
    assert isinstance(decoder.failure, WandbAPIError)
    assert "malformed stream line" in str(decoder.failure)
    assert M in str(decoder.failure)
    with pytest.raises(WandbAPIError, match="malformed stream line"):
        decoder.feed(line(chunk("d")) + b"\n\n")  # nothing decodes after a failure


def test_invalid_utf8_is_malformed_not_a_crash() -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(b'data: {"a": "\xff"}\n\n') == []
    assert isinstance(decoder.failure, WandbAPIError)


@pytest.mark.parametrize("choices", [{"0": {}}, ["text"], "abc", 5, [[1]]])
def test_choices_of_the_wrong_shape_are_malformed(choices: object) -> None:
    decoder = SSEDecoder(M)
    assert decoder.feed(line({"choices": choices}) + b"\n\n") == []
    assert isinstance(decoder.failure, WandbAPIError)


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [*error_code_cases(), ("a bare string", WandbAPIError, 500)],
)
def test_error_events_are_typed_by_code(
    error: object, cls: type[WandbError], status: int
) -> None:
    decoder = SSEDecoder(M, successor="Qwen/Qwen3.5-35B-A3B")
    events = decoder.feed(line(chunk("a")) + b"\n\n" + line({"error": error}) + b"\n\n")
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["a"]
    failure = decoder.failure
    assert type(failure) is cls
    assert failure.status_code == status
    assert failure.model == M
    if cls is WandbModelNotFoundError:
        assert "wandb/Qwen/Qwen3.5-35B-A3B" in str(failure)
