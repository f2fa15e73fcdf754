"""Small helpers shared by the test modules."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import httpx
import pytest


def tiny_png() -> bytes:
    """A valid 1x1 white PNG, built here so no test downloads an image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


class WandbSuiteSettings:
    """What the W&B models in our standard-suite classes share (put it first in the bases)."""

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "Qwen/Qwen3-30B-A3B-Instruct-2507"

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}

    @pytest.fixture(autouse=True)
    def _offline_image(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """test_image_inputs downloads a PNG; serve one made here instead."""
        png = tiny_png()
        monkeypatch.setattr(
            "langchain_tests.integration_tests.chat_models.httpx.get",
            lambda *a, **k: httpx.Response(200, content=png),
        )


def error_code_cases() -> list[tuple[dict[str, Any], type, int]]:
    """W&B error objects by ``code``, the typed error each gives, and its status.

    Shared by the SSE error-event and the 200-error-body tests: one table,
    two wire paths.
    """
    from langchain_wandb_router.errors import (
        WandbAPIError,
        WandbAuthenticationError,
        WandbContextOverflowError,
        WandbModelNotFoundError,
        WandbQuotaError,
        WandbRateLimitError,
    )

    return [
        ({"message": "overloaded", "code": 503}, WandbAPIError, 503),
        ({"message": "slow down", "code": "rate_limit_exceeded"}, WandbRateLimitError, 429),
        ({"message": "bad key", "code": "invalid_api_key"}, WandbAuthenticationError, 401),
        ({"message": "no money", "code": "insufficient_quota"}, WandbQuotaError, 402),
        ({"message": "spent", "code": "quota_exceeded"}, WandbQuotaError, 402),
        ({"message": "who?", "code": "model_not_found"}, WandbModelNotFoundError, 404),
        ({"message": "big", "code": "context_length_exceeded"}, WandbContextOverflowError, 400),
        ({"message": "oops", "code": "server_error"}, WandbAPIError, 500),
        ({"message": "odd", "code": "something_new"}, WandbAPIError, 500),
        ({"message": "no code"}, WandbAPIError, 500),
    ]
