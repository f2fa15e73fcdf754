"""langchain-tests' standard integration suite for ChatWandb, against the emulator."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import shared_emulator
from tests.helpers import WandbSuiteSettings


class TestChatWandbIntegration(WandbSuiteSettings, ChatModelIntegrationTests):
    """A tool-calling, non-reasoning model."""

    @property
    def chat_model_class(self) -> type[ChatWandb]:
        return ChatWandb

    @property
    def chat_model_params(self) -> dict[str, Any]:
        emu = shared_emulator()
        return {
            "model": "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
            "api_key": emu.api_key,
            "base_url": emu.base_url,
        }


class TestChatWandbVisionReasoningIntegration(TestChatWandbIntegration):
    """A vision model that always reasons (reasoning arrives in a separate field)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "model": "wandb/moonshotai/Kimi-K2.5"}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True
