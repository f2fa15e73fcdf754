"""Transport pieces: SSE decoding, error mapping, retry timing."""

from __future__ import annotations

import json

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

from langchain_wandb_router import RetryPolicy, _transport
from langchain_wandb_router.errors import (
    WandbAPIError,
    WandbAuthenticationError,
    WandbContextOverflowError,
    WandbInvalidRequestError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbRateLimitError,
)

M = "Qwen/Qwen3-235B-A22B-Instruct-2507"


def test_sse_decoder_handles_split_lines_comments_and_done() -> None:
    decoder = _transport._SSEDecoder(M)
    events = []
    stream = (
        b': keep-alive\n\ndata: {"a": 1}\n\ndata: {"b"'
        + b": 2}\r\n\r\nevent: x\ndata: [DONE]\n\n"
    )
    for i in range(0, len(stream), 7):
        events += decoder.feed(stream[i : i + 7])
    assert events == [{"a": 1}, {"b": 2}]
    assert decoder.done


def test_sse_decoder_raises_typed_error_on_malformed_line() -> None:
    with pytest.raises(WandbAPIError, match="malformed stream line"):
        _transport._SSEDecoder(M).feed(b"data: {nope\n\n")


def test_sse_decoder_raises_on_error_event() -> None:
    event = json.dumps({"error": {"message": "overloaded", "code": 503}}).encode()
    with pytest.raises(WandbAPIError, match="overloaded"):
        _transport._SSEDecoder(M).feed(b"data: " + event + b"\n\n")


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


def test_404_names_successor_of_retired_model() -> None:
    err = _transport.error_from_status(404, b"{}", {}, "moonshotai/Kimi-K2-Instruct")
    assert "moonshotai/Kimi-K2.5" in str(err)


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
    assert policy.delay(1, _transport.error_from_status(429, b"", {"retry-after": "2"}, M)) == 2.0
    assert policy.delay(1, _transport.error_from_status(429, b"", {"retry-after": "9999"}, M)) == 60.0
    for attempt in range(1, 10):
        assert 0.1 <= policy.delay(attempt) <= 8.0


def test_backoff_has_a_floor_and_grows() -> None:
    # Equal jitter: even the unluckiest draw waits half the ceiling, so a
    # policy's retries are not all spent within a fraction of a second.
    low = RetryPolicy(jitter=lambda lo, hi: lo)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    tiny = RetryPolicy(backoff_base=0.01, jitter=lambda lo, hi: lo)
    assert tiny.delay(1) == 0.1


def test_retryability() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(_transport.error_from_status(503, b"", {}, M))
    assert policy.is_retryable(_transport.error_from_status(429, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(400, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(401, b"", {}, M))
    assert not policy.is_retryable(_transport.error_from_status(402, b"", {}, M))


def test_2025_style_429s_that_waiting_cannot_fix() -> None:
    quota = _transport.error_from_status(
        429, b'{"error":{"message":"You exceeded your current quota, please check your plan"}}', {}, M
    )
    assert isinstance(quota, WandbQuotaError)
    assert not RetryPolicy().is_retryable(quota)
    personal = _transport.error_from_status(
        429, b'{"error":{"message":"W&B Inference isn\'t available for personal accounts."}}', {}, M
    )
    assert isinstance(personal, WandbPermissionError)
    assert "WANDB_INFERENCE_PROJECT" in str(personal)
    assert not RetryPolicy().is_retryable(personal)
    busy = _transport.error_from_status(429, b'{"error":{"message":"concurrency limit reached"}}', {}, M)
    assert isinstance(busy, WandbRateLimitError)
    assert RetryPolicy().is_retryable(busy)
