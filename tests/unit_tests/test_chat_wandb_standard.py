"""langchain-tests' standard unit suite for ChatWandb."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_wandb_router import ChatWandb
from tests.helpers import AllowlistedSerdes, WandbSuiteSettings

MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class TestChatWandbUnit(AllowlistedSerdes, WandbSuiteSettings, ChatModelUnitTests):
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

