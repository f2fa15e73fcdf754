"""langchain-tests' standard unit suite for WandbRouter."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_wandb_router import WandbRouter
from tests.helpers import AllowlistedSerdes, WandbSuiteSettings

MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class TestWandbRouterUnit(AllowlistedSerdes, WandbSuiteSettings, ChatModelUnitTests):
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

