"""Transport pieces: error mapping, 200s without answers, streams, retry timing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
)

from langchain_wandb_router import RetryPolicy, transport as _transport
from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    WandbAuthenticationError,
    WandbContextOverflowError,
    WandbInvalidRequestError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbRateLimitError,
    WandbTimeoutError,
    error_for_status,
    status_for_code,
)
from langchain_wandb_router.transport import _core, _deadline, _pools
from tests.helpers import error_code_cases

M = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def test_sse_decoder_handles_split_lines_comments_and_done() -> None:
    decoder = _transport.SSEDecoder(M)
    events = []
    stream = (
        b': keep-alive\n\ndata: {"a": 1}\n\ndata: {"b"'
        + b": 2}\r\n\r\nevent: x\ndata: [DONE]\n\n"
    )
    for i in range(0, len(stream), 7):
        events += decoder.feed(stream[i : i + 7])
    assert events == [{"a": 1}, {"b": 2}]
    assert decoder.done


def test_sse_decoder_reports_typed_error_on_malformed_line() -> None:
    decoder = _transport.SSEDecoder(M)
    assert decoder.feed(b"data: {nope\n\n") == []
    assert isinstance(decoder.failure, WandbAPIError)
    assert "malformed stream line" in str(decoder.failure)


def test_sse_decoder_reports_error_event() -> None:
    event = json.dumps({"error": {"message": "overloaded", "code": 503}}).encode()
    decoder = _transport.SSEDecoder(M)
    decoder.feed(b"data: " + event + b"\n\n")
    assert isinstance(decoder.failure, WandbAPIError)
    assert "overloaded" in str(decoder.failure)
    assert decoder.failure.status_code == 503


@pytest.mark.parametrize(
    ("status", "cls", "core_cls"),
    [
        (401, WandbAuthenticationError, ModelAuthenticationError),
        (402, WandbQuotaError, ModelPermissionDeniedError),
        (403, WandbPermissionError, ModelPermissionDeniedError),
        (404, WandbModelNotFoundError, ModelNotFoundError),
        (400, WandbInvalidRequestError, ModelInvalidRequestError),
        (422, WandbInvalidRequestError, ModelInvalidRequestError),
        (429, WandbRateLimitError, ModelRateLimitError),
        (500, WandbAPIError, ModelAPIError),
        (502, WandbAPIError, ModelAPIError),
        (503, WandbAPIError, ModelAPIError),
    ],
)
def test_status_maps_to_typed_error(status: int, cls: type, core_cls: type) -> None:
    body = json.dumps({"error": {"message": "boom"}}).encode()
    err = _transport.error_from_status(status, body, {}, M)
    assert type(err) is cls
    assert isinstance(err, core_cls)
    assert err.status_code == status
    assert "boom" in str(err)
    assert err.model == M


def test_401_hint_mentions_key_and_project() -> None:
    err = _transport.error_from_status(
        401, b'{"error":{"message":"Authentication failed"}}', {}, M
    )
    assert "WANDB_API_KEY" in str(err) and "team/project" in str(err)


def test_404_names_the_successor_the_caller_gives() -> None:
    err = _transport.error_from_status(
        404, b"{}", {}, "moonshotai/Kimi-K2-Instruct", successor="moonshotai/Kimi-K2.5"
    )
    assert "use 'wandb/moonshotai/Kimi-K2.5' instead" in str(err)


def test_404_without_successor_points_at_the_live_list() -> None:
    # The transport does not consult the catalog: a retired id it is not told
    # about gets the generic hint.
    err = _transport.error_from_status(404, b"{}", {}, "moonshotai/Kimi-K2-Instruct")
    assert "wandb-router models --live" in str(err)
    assert "Kimi-K2.5" not in str(err)


def test_fastapi_detail_bodies() -> None:
    err = _transport.error_from_status(
        422, b'{"detail": "logprobs is not supported"}', {}, M
    )
    assert "logprobs is not supported" in str(err)
    body = json.dumps(
        {"detail": [{"loc": ["body", "top_k"], "msg": "must be int"}]}
    ).encode()
    err = _transport.error_from_status(422, body, {}, M)
    assert "body.top_k: must be int" in str(err)


def test_html_error_page() -> None:
    err = _transport.error_from_status(
        502, b"<html><body>Bad Gateway</body></html>", {}, M
    )
    assert isinstance(err, WandbAPIError)
    assert "HTML error page" in str(err)


def test_context_overflow_is_recognised() -> None:
    body = (
        b'{"error":{"message":"This model\'s maximum context length is 131072 tokens"}}'
    )
    err = _transport.error_from_status(400, body, {}, M)
    assert isinstance(err, WandbContextOverflowError)
    assert isinstance(err, ContextOverflowError)


def test_retry_after_parsing() -> None:
    assert _transport.parse_retry_after("2") == 2.0
    assert _transport.parse_retry_after("0.25") == 0.25
    assert _transport.parse_retry_after(None) is None
    assert _transport.parse_retry_after("soon") is None
    assert _transport.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    err = _transport.error_from_status(429, b"{}", {"retry-after": "3"}, M)
    assert err.retry_after == 3.0


def test_retry_delay_honours_retry_after_and_caps() -> None:
    policy = RetryPolicy()
    assert (
        policy.delay(1, _transport.error_from_status(429, b"", {"retry-after": "2"}, M))
        == 2.0
    )
    assert (
        policy.delay(
            1, _transport.error_from_status(429, b"", {"retry-after": "9999"}, M)
        )
        == 60.0
    )
    for attempt in range(1, 10):
        assert 0.1 <= policy.delay(attempt) <= 8.0


def test_backoff_has_a_floor_and_grows() -> None:
    # Equal jitter: even the unluckiest draw waits half the ceiling, so a
    # policy's retries are not all spent within a fraction of a second.
    low = RetryPolicy(jitter=lambda lo, hi: lo)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    tiny = RetryPolicy(backoff_base=0.01, jitter=lambda lo, hi: lo)
    assert tiny.delay(1) == 0.1


def test_no_retry_starts_after_the_deadline() -> None:
    policy = RetryPolicy()
    error = _transport.error_from_status(503, b"", {"retry-after": "2"}, M)
    assert policy.next_delay(1, 3, error, deadline=time.monotonic() + 60) == 2.0
    assert policy.next_delay(1, 3, error, deadline=time.monotonic() + 1) is None
    assert error.__notes__ == [
        "Not retried: retry 1 would start 2.00s from now, after the call's deadline."
    ]


def test_retry_loops_give_up_rather_than_sleep_past_the_deadline() -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    policy = RetryPolicy(sleep=sleep)
    attempts = 0

    def send() -> None:
        nonlocal attempts
        attempts += 1
        raise _transport.error_from_status(503, b"", {"retry-after": "0.2"}, M)

    start = time.monotonic()
    with pytest.raises(WandbAPIError) as info:
        policy.call(send, 10, M, deadline=start + 0.5)
    # Attempts at 0, 0.2 and 0.4 s (a loaded machine may fit one fewer); a
    # fourth would start at 0.6 s, after the deadline, so it is not slept for.
    assert 2 <= attempts <= 3
    assert sum(slept) < 0.5
    assert "after the call's deadline" in info.value.__notes__[0]


def test_in_force_is_what_bounded_would_enter() -> None:
    assert _deadline.in_force(None) is None
    assert _deadline.in_force(5.0) == 5.0
    with _deadline.bounded(10.0):
        for own in (None, 5.0, 10.0, 20.0):
            with _deadline.bounded(own) as entered:
                assert _deadline.current() == entered
            assert _deadline.in_force(own) == entered
    assert _deadline.current() is None


def test_clamp_cuts_each_wait_to_the_time_left() -> None:
    assert _pools.clamp(600.0, httpcore.ReadTimeout) == 600.0  # no deadline
    assert _pools.clamp(None, httpcore.ReadTimeout) is None
    with _deadline.bounded(time.monotonic() + 1):
        left = _pools.clamp(600.0, httpcore.ReadTimeout)
        assert left is not None
        assert 0 < left <= 1
        unbounded = _pools.clamp(None, httpcore.ReadTimeout)
        assert unbounded is not None
        assert 0 < unbounded <= 1
        assert _pools.clamp(0.25, httpcore.ReadTimeout) == 0.25
    with (
        _deadline.bounded(time.monotonic() - 1),
        pytest.raises(httpcore.WriteTimeout, match="deadline passed"),
    ):
        _pools.clamp(600.0, httpcore.WriteTimeout)


def test_per_request_timeouts_are_clamped_to_the_deadline() -> None:
    req = _transport.Request(
        url="http://127.0.0.1:9/v1/chat/completions",
        headers={},
        body=b"{}",
        model=M,
        timeout=httpx.Timeout(600.0, connect=10.0),
    )
    assert _core.clamped_timeouts(req) == {
        "connect": 10.0,
        "read": 600.0,
        "write": 600.0,
        "pool": 600.0,
    }
    bounded = _transport.Request(**{**req.__dict__, "deadline": time.monotonic() + 2})
    assert all(0 < t <= 2 for t in _core.clamped_timeouts(bounded).values())  # type: ignore[operator]


def test_a_request_past_its_deadline_is_never_sent() -> None:
    # Nothing listens on port 9: sending would be a connection error.
    req = _transport.Request(
        url="http://127.0.0.1:9/v1/chat/completions",
        headers={},
        body=b"{}",
        model=M,
        timeout=10,
        deadline=time.monotonic() - 0.1,
    )
    with pytest.raises(WandbTimeoutError, match=r"deadline passed.*deadline="):
        _transport.post_json(_transport.sync_client(req.url), req)
    with pytest.raises(WandbTimeoutError, match="deadline passed"):
        list(_transport.stream_events(_transport.sync_client(req.url), req))


def test_retryability() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(_transport.error_from_status(503, b"", {}, M))
    assert policy.is_retryable(_transport.error_from_status(429, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(400, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(401, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(402, b"", {}, M))


def test_2025_style_429s_that_waiting_cannot_fix() -> None:
    quota = _transport.error_from_status(
        429,
        b'{"error":{"message":"You exceeded your current quota, please check your plan"}}',
        {},
        M,
    )
    assert isinstance(quota, WandbQuotaError)
    assert not RetryPolicy().is_retryable(quota)
    personal = _transport.error_from_status(
        429,
        b'{"error":{"message":"W&B Inference isn\'t available for personal accounts."}}',
        {},
        M,
    )
    assert isinstance(personal, WandbPermissionError)
    assert "WANDB_INFERENCE_PROJECT" in str(personal)
    assert not RetryPolicy().is_retryable(personal)
    busy = _transport.error_from_status(
        429, b'{"error":{"message":"concurrency limit reached"}}', {}, M
    )
    assert isinstance(busy, WandbRateLimitError)
    assert RetryPolicy().is_retryable(busy)


# ------------------------------------------------------------ the status table


@pytest.mark.parametrize(
    ("status", "detail", "message"),
    [
        (
            401,
            "Authentication failed",
            "W&B rejected the credentials (401: Authentication failed). Check WANDB_API_KEY, and that the team/project (project=, WANDB_INFERENCE_PROJECT) exists and is yours.",
        ),
        (
            402,
            "over",
            "W&B quota or spend cap reached (402: over). Raise the limit in your W&B billing settings; retrying will not help.",
        ),
        (
            403,
            "nope",
            "W&B refused the request (403: nope). W&B Inference may not be enabled for this organization or region.",
        ),
        (
            404,
            "gone",
            f"W&B does not serve model '{M}' (404: gone). Run `wandb-router models --live` to see what W&B serves now.",
        ),
        (400, "bad", f"W&B rejected the request for '{M}' (400: bad)."),
        (
            413,
            "maximum context length exceeded",
            f"The input is too long for '{M}' (413: maximum context length exceeded). Shorten it, or route to a model with a larger context window.",
        ),
        (
            429,
            "concurrency limit reached",
            f"W&B's concurrency limit is full for '{M}' (429: concurrency limit reached); requests in flight must finish first (see max_in_flight).",
        ),
        (
            429,
            "rate limit: 60 requests per minute",
            f"W&B rate limit hit for '{M}' (429: rate limit: 60 requests per minute).",
        ),
        (
            429,
            "You exceeded your current quota",
            "W&B quota or spend cap reached (429: You exceeded your current quota). Raise the limit in your W&B billing settings; retrying will not help.",
        ),
        (
            429,
            "not for personal accounts",
            "W&B refused the request (429: not for personal accounts). Send a team project: project='team/project' or WANDB_INFERENCE_PROJECT.",
        ),
        (503, "overloaded", f"W&B server error for '{M}' (503: overloaded)."),
        (409, "conflict", f"W&B server error for '{M}' (409: conflict)."),
    ],
)
def test_messages_are_unchanged(status: int, detail: str, message: str) -> None:
    err = error_for_status(status, detail, model=M)
    assert str(err) == message
    body = json.dumps({"error": {"message": detail}}).encode()
    assert str(_transport.error_from_status(status, body, {}, M)) == message


def test_redirect_names_location_and_is_an_api_error() -> None:
    err = _transport.error_from_status(
        307, b"", {"location": "https://elsewhere/v1"}, M
    )
    assert type(err) is WandbAPIError
    assert err.status_code == 307
    assert str(err) == (
        f"W&B answered '{M}' with a redirect (307) to https://elsewhere/v1; redirects "
        "are not followed so the API key stays with base_url. Check "
        "WANDB_INFERENCE_BASE_URL."
    )
    assert not RetryPolicy().is_retryable(err)


def test_code_sharpens_an_ambiguous_status() -> None:
    body = json.dumps(
        {"error": {"message": "too many", "code": "context_length_exceeded"}}
    ).encode()
    assert isinstance(
        _transport.error_from_status(400, body, {}, M), WandbContextOverflowError
    )
    body = json.dumps(
        {"error": {"message": "stop", "code": "insufficient_quota"}}
    ).encode()
    assert isinstance(_transport.error_from_status(429, body, {}, M), WandbQuotaError)
    # The status line wins over a code that names another class.
    body = json.dumps({"error": {"message": "x", "code": "invalid_api_key"}}).encode()
    assert isinstance(_transport.error_from_status(503, body, {}, M), WandbAPIError)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (429, 429),
        (503, 503),
        ("502", 502),
        (200, 500),
        (99, 500),
        (True, 500),
        ("rate_limit_exceeded", 429),
        ("invalid_api_key", 401),
        ("insufficient_quota", 402),
        ("quota_exceeded", 402),
        ("model_not_found", 404),
        ("context_length_exceeded", 400),
        ("server_error", 500),
        ("brand_new_code", 500),
        (None, 500),
    ],
)
def test_status_for_code(code: object, status: int) -> None:
    assert status_for_code(code) == status


def test_retry_after_reaches_the_error() -> None:
    err = error_for_status(503, "busy", model=M, retry_after=1.5)
    assert err.retry_after == 1.5 and err.model == M and err.status_code == 503


# ------------------------------------------------- 200 answers without an answer


def _client(body: bytes | Iterator[bytes], status: int = 200) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _req(successor: str | None = None) -> _transport.Request:
    return _transport.Request(
        url="http://127.0.0.1:9/v1/chat/completions",
        headers={},
        body=b"{}",
        model=M,
        timeout=5,
        successor=successor,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "choices": []},
        {"id": "x", "choices": None},
        {"id": "x"},
        {"id": "x", "choices": ["text"]},
        {"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]},
    ],
    ids=["empty", "null", "missing", "not-a-dict", "no-message"],
)
def test_200_without_choices_is_a_retryable_api_error(body: dict[str, Any]) -> None:
    with pytest.raises(WandbAPIError, match="no usable choices") as info:
        _transport.post_json(_client(json.dumps(body).encode()), _req())
    assert M in str(info.value)
    assert RetryPolicy().is_retryable(info.value)


@pytest.mark.parametrize(("error", "cls", "status"), error_code_cases())
def test_200_error_bodies_are_typed_by_code(
    error: dict[str, Any], cls: type, status: int
) -> None:
    body = json.dumps({"error": error}).encode()
    with pytest.raises(cls) as info:
        _transport.post_json(_client(body), _req())
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert error["message"] in str(info.value)


def test_200_model_not_found_names_the_successor() -> None:
    body = b'{"error": {"message": "gone", "code": "model_not_found"}}'
    with pytest.raises(WandbModelNotFoundError, match=r"wandb/moonshotai/Kimi-K2\.5"):
        _transport.post_json(_client(body), _req(successor="moonshotai/Kimi-K2.5"))


def test_404_response_names_the_requests_successor() -> None:
    with pytest.raises(WandbModelNotFoundError, match=r"wandb/moonshotai/Kimi-K2\.5"):
        _transport.post_json(
            _client(b"{}", 404), _req(successor="moonshotai/Kimi-K2.5")
        )


# ------------------------------------------------------ streams: nothing lost


def _content(event: dict[str, Any]) -> str:
    return str(event["choices"][0]["delta"]["content"])


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def _delta(text: str) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]
    }


def test_events_before_a_bad_line_in_the_same_piece_reach_the_caller() -> None:
    piece = _sse(_delta("a"), _delta("b")) + b"data: {nope\n\n" + _sse(_delta("c"))
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="malformed stream line") as info:
        for event in _transport.stream_events(_client(iter([piece])), _req()):
            received.append(_content(event))
    assert received == ["a", "b"]
    assert isinstance(info.value.__cause__, WandbAPIError)
    assert not RetryPolicy().is_retryable(info.value)


def test_a_bad_line_before_any_output_raises_the_typed_error() -> None:
    with pytest.raises(WandbAPIError, match="malformed stream line") as info:
        list(_transport.stream_events(_client(iter([b"data: {nope\n\n"])), _req()))
    assert not isinstance(info.value, StreamInterruptedError)
    assert RetryPolicy().is_retryable(info.value)


def test_error_event_first_is_typed_and_retryable() -> None:
    piece = (
        b'data: {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}\n\n'
    )
    with pytest.raises(WandbRateLimitError) as info:
        list(_transport.stream_events(_client(iter([piece])), _req()))
    assert RetryPolicy().is_retryable(info.value)


def test_error_event_after_output_interrupts() -> None:
    pieces = iter(
        [_sse(_delta("a")), b'data: {"error": {"message": "boom", "code": 500}}\n\n']
    )
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="boom"):
        for event in _transport.stream_events(_client(pieces), _req()):
            received.append(_content(event))
    assert received == ["a"]


async def test_async_stream_yields_good_events_before_a_bad_line() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield _sse(_delta("a"), _delta("b")) + b"data: {nope\n\n"
        # and never another byte: the failure must not wait for one
        raise AssertionError("read past a failed event: the call would hang here")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())

    received: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(StreamInterruptedError, match="malformed stream line"):
            async for event in _transport.astream_events(client, _req()):
                received.append(_content(event))
    assert received == ["a", "b"]


def _stalls_after(*pieces: bytes) -> Iterator[bytes]:
    """A body that sends ``pieces`` and then never another byte."""
    yield from pieces
    raise AssertionError("read past a failed event: the call would hang here")


def test_a_failed_stream_raises_without_waiting_for_another_piece() -> None:
    error = b'data: {"error": {"message": "boom", "code": 500}}\n\n'
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="boom"):
        body = _stalls_after(_sse(_delta("a")) + error)
        for event in _transport.stream_events(_client(body), _req()):
            received.append(_content(event))
    assert received == ["a"]
    with pytest.raises(WandbAPIError, match="malformed stream line"):
        list(_transport.stream_events(_client(_stalls_after(b"data: {no\n\n")), _req()))


def test_stream_with_crlf_endings_split_anywhere() -> None:
    stream = (
        _sse(_delta("a"), _delta("b"), {"choices": [], "usage": {"total_tokens": 2}})
        + b"data: [DONE]\n\n"
    ).replace(b"\n", b"\r\n")
    pieces = iter([stream[i : i + 5] for i in range(0, len(stream), 5)])
    events = list(_transport.stream_events(_client(pieces), _req()))
    assert [_content(e) for e in events[:2]] == ["a", "b"]
    assert events[2]["usage"] == {"total_tokens": 2}
