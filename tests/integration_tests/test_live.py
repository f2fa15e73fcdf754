"""The same standard suite, and a few checks, against the real W&B Inference.

Runs only when WANDB_API_KEY is set; otherwise every test here is skipped and
no name is even resolved. These are the only tests allowed past loopback.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wandb_router import ChatWandb, WandbRouter
from tests.conftest import LIVE_API_KEY

_W_AND_B_HOST = "api.inference.wandb.ai"

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LIVE_API_KEY, reason="WANDB_API_KEY is not set; live W&B tests skipped"),
]
if LIVE_API_KEY:
    pytestmark.append(pytest.mark.allow_hosts(["127.0.0.1", "::1", _W_AND_B_HOST]))

MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class TestChatWandbLive(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatWandb]:
        return ChatWandb

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": LIVE_API_KEY}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}


def test_live_reasoning_stream() -> None:
    llm = ChatWandb(model="wandb/openai/gpt-oss-20b", api_key=LIVE_API_KEY)
    full = None
    for chunk in llm.stream("What is 17 * 23? Answer with the number."):
        full = chunk if full is None else full + chunk
    assert full is not None
    assert full.additional_kwargs.get("reasoning_content")
    assert "391" in full.text
    assert full.response_metadata.get("cost_usd", 0) > 0


def test_live_router_falls_back_from_unknown_model() -> None:
    router = WandbRouter(
        models=["wandb/acme/model-that-does-not-exist", MODEL],
        fallback_statuses={404},
        api_key=LIVE_API_KEY,
    )
    msg = router.invoke("Say hello.")
    assert msg.response_metadata["model_name"] == MODEL.removeprefix("wandb/")
    assert "NotFound" in msg.response_metadata["routing"]["attempts"][0]["error"]
