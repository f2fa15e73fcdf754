"""langchain-tests' standard unit suite for ChatWandb."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_wandb_router import ChatWandb
from tests.helpers import WandbSuiteSettings

MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class TestChatWandbUnit(WandbSuiteSettings, ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatWandb]:
        return ChatWandb

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": "test-key-not-real"}

    @property
    def init_from_env_params(
        self,
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "WANDB_API_KEY": "env-key",
                "WANDB_INFERENCE_BASE_URL": "https://wandb.example/v1",
                "WANDB_INFERENCE_PROJECT": "team/project",
            },
            {"model": MODEL},
            {
                "openai_api_key": "env-key",
                "openai_api_base": "https://wandb.example/v1",
                "project": "team/project",
            },
        )

    @pytest.mark.xfail(
        reason=(
            "langchain-core's load(allowed_objects='all') admits only classes listed "
            "in langchain_core.load.mapping, which no third-party package is; the "
            "snapshot half passes, and test_serialization.py loads ChatWandb with "
            "allowed_objects=[ChatWandb]"
        ),
        strict=True,
        raises=ValueError,
    )
    def test_serdes(self, model: Any, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)
