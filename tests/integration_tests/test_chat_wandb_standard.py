"""langchain-tests' standard integration suite for ChatWandb, against the emulator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import shared_emulator
from tests.helpers import tiny_png


class TestChatWandbIntegration(ChatModelIntegrationTests):
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

    @pytest.fixture(autouse=True)
    def _offline_image(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """test_image_inputs downloads a PNG; serve one made here instead."""
        png = tiny_png()
        monkeypatch.setattr(
            "langchain_tests.integration_tests.chat_models.httpx.get",
            lambda *a, **k: httpx.Response(200, content=png),
        )
