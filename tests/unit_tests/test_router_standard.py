"""langchain-tests' standard unit suite for WandbRouter."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from langchain_core.load import dumpd, load
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_wandb_router import WandbRouter
from tests.helpers import WandbSuiteSettings

MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class TestWandbRouterUnit(WandbSuiteSettings, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[WandbRouter]:
        return WandbRouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "models": [MODEL, "wandb/deepseek-ai/DeepSeek-V3.1"],
            "api_key": "test-key-not-real",
        }

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"WANDB_API_KEY": "env-key", "WANDB_INFERENCE_PROJECT": "team/project"},
            {"models": MODEL},
            {"api_key": "env-key", "project": "team/project"},
        )

    @pytest.mark.xfail(
        reason=(
            "langchain-core's loader rule, not WandbRouter: load(..., "
            "allowed_objects='all') admits only the class paths listed in "
            "langchain_core.load.mapping, and Reviver raises ValueError('... is "
            "not allowed') for any other id. The snapshot half runs first and "
            "must pass; test_serdes_round_trip is the same check with "
            "allowed_objects=[WandbRouter]."
        ),
        strict=True,
        raises=ValueError,
    )
    def test_serdes(self, model: Any, snapshot: SnapshotAssertion) -> None:
        try:
            super().test_serdes(model, snapshot)
        except ValueError as exc:
            # Only the allowlist refusal is expected; anything else must fail.
            if "is not allowed" not in str(exc):
                pytest.fail(f"test_serdes failed for another reason: {exc}")
            raise

    def test_serdes_round_trip(self, model: WandbRouter) -> None:
        """The standard test_serdes assertion, loading with an explicit allowlist."""
        env_params, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            loaded = load(
                dumpd(model),
                allowed_objects=[WandbRouter],
                valid_namespaces=model.get_lc_namespace()[:1],
                secrets_from_env=True,
            )
        assert isinstance(loaded, WandbRouter)
        assert loaded.asdict() == model.asdict()
