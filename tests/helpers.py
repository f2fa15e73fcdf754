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
