"""langchain-tests' standard integration suite for WandbRouter, against the emulator."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.testing import shared_emulator
from tests.helpers import WandbSuiteSettings


class TestWandbRouterIntegration(WandbSuiteSettings, ChatModelIntegrationTests):
    """A fallback list of two tool-calling models."""

    @property
    def chat_model_class(self) -> type[WandbRouter]:
        return WandbRouter

    @property
    def chat_model_params(self) -> dict[str, Any]:
        emu = shared_emulator()
        return {
            "models": [
                "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
                "wandb/deepseek-ai/DeepSeek-V3.1",
            ],
            "api_key": emu.api_key,
            "base_url": emu.base_url,
        }


class TestWandbRouterSelectorIntegration(TestWandbRouterIntegration):
    """A selector that sends images to a vision model and the rest elsewhere."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        def select(ctx: Any) -> str:
            if ctx.needs_images:
                return "wandb/google/gemma-4-31B-it"
            return "wandb/openai/gpt-oss-120b"

        return {**super().chat_model_params, "models": select}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True
