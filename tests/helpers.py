"""Small helpers shared by the test modules."""

from __future__ import annotations

import os
import struct
import zlib
from typing import TYPE_CHECKING, Any
from unittest import mock
from uuid import UUID

import httpx
import pytest
from langchain_core.load import dumpd, load
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from syrupy.assertion import SnapshotAssertion


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


class AllowlistedSerdes:
    """The standard unit suite's ``test_serdes``, for a class outside core's list.

    Put it before ``ChatModelUnitTests`` in the bases. The standard test
    loads with ``allowed_objects="all"``, which admits only the class paths
    in ``langchain_core.load.mapping``; ``test_serdes_round_trip`` is the
    same check with an explicit allowlist.
    """

    if TYPE_CHECKING:  # the suite's, read at run time
        chat_model_class: Any
        init_from_env_params: Any

    @pytest.mark.xfail(
        reason=(
            "langchain-core's loader rule, not our model: load(..., "
            "allowed_objects='all') admits only the class paths listed in "
            "langchain_core.load.mapping (SERIALIZABLE_MAPPING and friends), and "
            "Reviver raises ValueError('Deserialization of (...) is not allowed') "
            "for any other id before it even looks at valid_namespaces. A "
            "third-party class gets in only through allowed_objects=[...] or "
            "additional_import_mappings, which this standard test does not pass. "
            "The snapshot half runs first and must pass; test_serdes_round_trip "
            "is the same check with the class allowed."
        ),
        strict=True,
        raises=ValueError,
    )
    def test_serdes(self, model: Any, snapshot: SnapshotAssertion) -> None:
        try:
            super().test_serdes(model, snapshot)  # type: ignore[misc]
        except ValueError as exc:
            # Only the allowlist refusal is expected; anything else must fail.
            if "is not allowed" not in str(exc):
                pytest.fail(f"test_serdes failed for another reason: {exc}")
            raise

    def test_serdes_round_trip(self, model: Any) -> None:
        """The standard test_serdes assertion, loading with an explicit allowlist."""
        env_params, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            loaded = load(
                dumpd(model),
                allowed_objects=[self.chat_model_class],
                valid_namespaces=model.get_lc_namespace()[:1],
                secrets_from_env=True,
            )
        assert isinstance(loaded, self.chat_model_class)
        assert loaded.asdict() == model.asdict()


class FinishedRuns(BaseTracer):
    """Collects every finished model run, as LangSmith or Weave would receive it."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        pass

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> Run:
        run = super().on_llm_end(response, run_id=run_id, **kwargs)
        self.runs.append(run)
        return run

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Run:
        run = super().on_llm_error(error, run_id=run_id, **kwargs)
        self.runs.append(run)
        return run
