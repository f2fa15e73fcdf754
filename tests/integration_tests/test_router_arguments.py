"""WandbRouter takes what a ChatOpenAI user writes, serializes, and names its attempts.

Issue 16: the sampling and request arguments of ChatOpenAI/ChatWandb are
defaults for the W&B routes the router builds (``model_settings`` overrides
them, typos still raise), W&B's extras never trigger langchain-openai's
warnings, ``disable_streaming`` is honoured, ``dumps``/``loads`` round-trip a
router with static routes, attempts are traced under their model's name, and
``bind_tools(strict=True)`` sends ``strict``.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest
from langchain_core.load import dumps, loads
from pydantic import BaseModel

from langchain_wandb_router import ChatWandb, Route, WandbRouter
from langchain_wandb_router.testing import WandbEmulator
from tests.helpers import FinishedRuns

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
GPT_OSS = "openai/gpt-oss-120b"


def bodies(emulator: WandbEmulator) -> list[dict[str, Any]]:
    return [r.json or {} for r in emulator.chat_requests()]


# ------------------------------------------------------------------ arguments


def test_chat_openai_arguments_are_defaults_for_every_w_and_b_route(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "top_k is not default parameter"
        router = router_factory(
            [f"wandb/{QWEN}"],
            temperature=0.3,
            top_p=0.9,
            seed=7,
            max_completion_tokens=64,
            stop=["END"],
            top_k=5,
            repetition_penalty=1.1,
            presence_penalty=0.2,
            model_kwargs={"min_p": 0.05},
            extra_body={"cache_salt": "tenant-a"},
        )
        assert router.invoke("hi").text
    body = bodies(emulator)[0]
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["seed"] == 7
    assert body["max_tokens"] == 64
    assert "max_completion_tokens" not in body
    assert body["stop"] == ["END"]
    assert body["top_k"] == 5
    assert body["repetition_penalty"] == 1.1
    assert body["presence_penalty"] == 0.2
    assert body["min_p"] == 0.05
    assert body["cache_salt"] == "tenant-a"


def test_reasoning_arguments_reach_a_reasoning_route(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    router = router_factory([f"wandb/{GPT_OSS}"], reasoning_effort="low")
    router.invoke("hi")
    assert bodies(emulator)[0]["reasoning_effort"] == "low"
    emulator.reset()
    glm = router_factory(["wandb/zai-org/GLM-5.1"], enable_thinking=False)
    glm.invoke("hi")
    assert bodies(emulator)[0]["chat_template_kwargs"] == {"enable_thinking": False}


def test_route_settings_override_the_routers_and_merge_body_fields(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    router = router_factory(
        [
            Route(
                f"wandb/{QWEN}",
                model_settings={
                    "temperature": 0.9,
                    "top_k": 2,
                    "extra_body": {"b": 2},
                },
            )
        ],
        temperature=0.1,
        top_k=40,
        extra_body={"a": 1},
        model_settings={"seed": 3},
    )
    router.invoke("hi")
    body = bodies(emulator)[0]
    assert (body["temperature"], body["top_k"], body["seed"]) == (0.9, 2, 3)
    assert (body["a"], body["b"]) == (1, 2)


def test_a_misspelt_argument_still_raises() -> None:
    with pytest.raises(TypeError, match="did you mean 'top_p'"):
        WandbRouter(models=f"wandb/{QWEN}", api_key="k" * 40, top_pp=0.5)


def test_chat_wandb_takes_w_and_b_extras_without_warnings(
    emulator: WandbEmulator, chat_factory: Any
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm = chat_factory(top_k=5, repetition_penalty=1.2, max_completion_tokens=9)
        llm.invoke("hi")
    assert llm.max_tokens == 9
    assert llm.model_kwargs == {"top_k": 5, "repetition_penalty": 1.2}
    body = bodies(emulator)[0]
    assert (body["top_k"], body["repetition_penalty"]) == (5, 1.2)
    assert body["max_tokens"] == 9


# ------------------------------------------------------------ disable_streaming


def test_disable_streaming_makes_stream_one_request_without_streaming(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    router = router_factory([f"wandb/{QWEN}"], disable_streaming=True)
    chunks = list(router.stream("hi"))
    assert len(chunks) == 1
    assert chunks[0].text
    assert not bodies(emulator)[0].get("stream")


async def test_disable_streaming_async(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    router = router_factory([f"wandb/{QWEN}"], disable_streaming=True)
    chunks = [chunk async for chunk in router.astream("hi")]
    assert len(chunks) == 1
    assert not bodies(emulator)[0].get("stream")


def test_disable_streaming_for_tool_calls_only(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    router = router_factory([f"wandb/{QWEN}"], disable_streaming="tool_calling")
    list(router.stream("hi"))
    assert bodies(emulator)[-1].get("stream") is True
    list(router.bind_tools([get_weather]).stream("weather in Paris?"))
    assert not bodies(emulator)[-1].get("stream")


# ---------------------------------------------------------------- serialization


def test_dumps_and_loads_round_trip_static_routes_without_the_key(
    emulator: WandbEmulator,
) -> None:
    key = emulator.api_key
    router = WandbRouter(
        models=[
            f"wandb/{QWEN}",
            Route(f"wandb/{DSV31}", max_retries=1, model_settings={"top_k": 3}),
            ChatWandb(
                model=GPT_OSS, api_key=key, base_url=emulator.base_url, temperature=0.2
            ),
        ],
        api_key=key,
        base_url=emulator.base_url,
        temperature=0.4,
        fallback_statuses={400},
        max_in_flight={QWEN: 2},
    )
    text = dumps(router)
    assert key not in text
    data = json.loads(text)
    assert data["id"] == ["langchain_wandb_router", "router", "WandbRouter"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loads is beta in langchain-core
        again = loads(
            text,
            allowed_objects=[WandbRouter, ChatWandb],
            valid_namespaces=["langchain_wandb_router"],
            secrets_map={"WANDB_API_KEY": key},
        )
    assert isinstance(again, WandbRouter)
    assert again._static_routes() == router._static_routes()
    assert again.fallback_statuses == frozenset({400})
    assert again.max_in_flight == {QWEN: 2}
    assert again.temperature == 0.4
    assert again.api_key is not None and again.api_key.get_secret_value() == key
    assert again.invoke("hi").text
    assert bodies(emulator)[0]["temperature"] == 0.4


def _load(text: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loads is beta in langchain-core
        return loads(
            text,
            allowed_objects=[WandbRouter, ChatWandb],
            valid_namespaces=["langchain_wandb_router"],
            secrets_map={"WANDB_API_KEY": "k" * 40},
        )


def test_a_selector_cannot_be_serialized(emulator: WandbEmulator) -> None:
    router = WandbRouter(
        models=lambda ctx: f"wandb/{QWEN}",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
    )
    # dumps works as for any object LangChain cannot serialize (tracing
    # serializes the model on every call); loading says what was missing.
    text = dumps(router)
    assert json.loads(text)["type"] == "not_implemented"
    with pytest.raises(NotImplementedError, match="model selector '<lambda>'"):
        _load(text)


def test_a_foreign_route_cannot_be_serialized() -> None:
    from langchain_core.language_models import GenericFakeChatModel

    fake = GenericFakeChatModel(messages=iter([]))
    router = WandbRouter(models=[f"wandb/{QWEN}", fake], api_key="k" * 40)
    with pytest.raises(NotImplementedError, match="GenericFakeChatModel"):
        _load(dumps(router))


def test_a_state_url_with_a_password_is_not_written_down() -> None:
    router = WandbRouter(
        models=f"wandb/{QWEN}",
        api_key="k" * 40,
        state="redis://:hunter22secret@127.0.0.1:1/0",
    )
    text = dumps(router)
    assert "hunter22secret" not in text
    with pytest.raises(NotImplementedError, match="credentials"):
        _load(text)


def test_routes_may_be_given_as_dicts() -> None:
    router = WandbRouter(
        models=[{"model": f"wandb/{QWEN}", "max_retries": 0}], api_key="k" * 40
    )
    assert router._static_routes() == [Route(f"wandb/{QWEN}", max_retries=0)]
    with pytest.raises(TypeError, match="needs 'model'"):
        WandbRouter(models=[{"modle": f"wandb/{QWEN}"}], api_key="k" * 40)


# -------------------------------------------------------------- traced attempts


_Runs = FinishedRuns



@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream", "astream"])
def test_attempt_runs_are_named_after_their_model(
    emulator: WandbEmulator, router_factory: Any, how: str
) -> None:
    emulator.fault(status=500, model=QWEN, times=None)
    router = router_factory([f"wandb/{QWEN}", f"wandb/{DSV31}"], max_retries=0)
    tracer = _Runs()
    config: Any = {"callbacks": [tracer], "run_name": "my-router"}
    if how == "invoke":
        router.invoke("hi", config)
    elif how == "stream":
        list(router.stream("hi", config))
    else:

        async def run() -> None:
            if how == "ainvoke":
                await router.ainvoke("hi", config)
            else:
                [c async for c in router.astream("hi", config)]

        asyncio.run(run())
    assert [run.name for run in tracer.runs] == [QWEN, DSV31]
    assert tracer.runs[0].error and not tracer.runs[1].error


# ------------------------------------------------------------------ strict tools


class Weather(BaseModel):
    """Weather in a city."""

    city: str


def test_bind_tools_strict_sends_strict(
    emulator: WandbEmulator, router_factory: Any
) -> None:
    router = router_factory([f"wandb/{QWEN}"])
    router.bind_tools([Weather], strict=True).invoke("weather in Paris?")
    function = bodies(emulator)[0]["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False
    emulator.reset()
    router.bind_tools([Weather]).invoke("weather in Paris?")
    assert "strict" not in bodies(emulator)[0]["tools"][0]["function"]
