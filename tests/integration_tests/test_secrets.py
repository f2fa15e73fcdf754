"""Secret hygiene with everything turned up: the key goes to base_url and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumps

from langchain_wandb_router import ChatWandb, RetryPolicy, WandbRouter
from langchain_wandb_router.catalog import refresh_models
from langchain_wandb_router.errors import WandbAuthenticationError, WandbError
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
SECRET = "wb-secret-0123456789abcdef0123456789abcdef"


class _Capture(BaseCallbackHandler):
    """Everything a tracer would be handed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        self.seen.append(repr(serialized) + repr(kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(repr(response) + repr(kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(repr(error) + str(error) + repr(kwargs))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("langchain_wandb_router", "httpx", "httpcore", "langchain_core", "langchain_openai"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def test_key_appears_nowhere(debug_logs: pytest.LogCaptureFixture, retry_policy: RetryPolicy) -> None:
    seen: list[str] = []
    with WandbEmulator(api_key=SECRET) as emu:
        creds = {"api_key": SECRET, "base_url": emu.base_url, "retry_policy": retry_policy}
        llm = ChatWandb(model=QWEN, **creds)
        router = WandbRouter(models=[QWEN, "deepseek-ai/DeepSeek-V3.1"], **creds)
        capture = _Capture()
        cfg = {"callbacks": [capture]}

        emu.fault(status=503)  # a logged retry
        msgs = [llm.invoke("hi", config=cfg)]
        msgs.append(next(iter(llm.stream("hi", config=cfg))))
        emu.fault(status=503, times=3, model=QWEN)  # a fallback with a routing record
        msgs.append(router.invoke("hi", config=cfg))
        emu.fault(status=401)
        with pytest.raises(WandbAuthenticationError) as auth:
            llm.invoke("hi", config=cfg)
        emu.fault(status=500, times=None)
        with pytest.raises(WandbError) as server:
            router.invoke("hi", config=cfg)
        refresh_models(api_key=SECRET, base_url=emu.base_url)

        for exc in (auth.value, server.value):
            seen += [str(exc), repr(exc), *getattr(exc, "__notes__", [])]
        for m in msgs:
            seen += [repr(m), str(m.response_metadata)]
        seen += [repr(llm), str(llm), repr(router), str(router), dumps(llm), dumps(router), str(llm.model_dump()), str(router.model_dump())]
        seen += capture.seen
        seen.append(debug_logs.text)
        # Sanity: the logs really are verbose, and the key really was used.
        assert "send_request_headers.started" in debug_logs.text  # httpcore, DEBUG
        assert "retry 1/2" in debug_logs.text
        assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in emu.requests)
    for text in seen:
        assert SECRET not in text


def test_openai_key_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    openai_key = "sk-openai-must-never-leave-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", openai_key)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-must-not-be-sent")
    with WandbEmulator() as emu:
        creds = {"api_key": emu.api_key, "base_url": emu.base_url}
        ChatWandb(model=QWEN, **creds).invoke("hi")
        list(ChatWandb(model=QWEN, **creds).stream("hi"))
        WandbRouter(models=QWEN, **creds).invoke("hi")
        for req in emu.requests:
            blob = repr(req.headers) + repr(req.json)
            assert openai_key not in blob
            assert "org-must-not-be-sent" not in blob
            assert "openai-organization" not in req.headers
            assert req.headers["authorization"] == f"Bearer {emu.api_key}"


def test_missing_key_does_not_fall_back_to_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        ChatWandb(model=QWEN)
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        WandbRouter(models=QWEN)
