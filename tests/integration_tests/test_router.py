"""WandbRouter behaviour against the emulator: selection, filters, retries,
fallbacks, cooldown, streaming without splices, tools, structured output,
usage, budget."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_wandb_router import Route, RoutingContext, WandbRouter
from langchain_wandb_router.catalog._models import ModelInfo, register_model
from langchain_wandb_router.errors import (
    BudgetExceededError,
    NoRouteAvailableError,
    StreamInterruptedError,
    WandbAPIError,
    WandbAuthenticationError,
    WandbInvalidRequestError,
    WandbRateLimitError,
)
from langchain_wandb_router.state._interface import (
    HealthSettings,
    account_fingerprint,
    route_key,
)
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
KIMI = "moonshotai/Kimi-K2.5"
GEMMA = "google/gemma-4-31B-it"
# Registered below: a model that cannot call tools, and one with a tiny window.
NO_TOOLS = "acme/no-tools-1"
TINY = "acme/tiny-window-1"

Factory = Callable[..., WandbRouter]


@pytest.fixture(autouse=True)
def _extra_models(emulator: WandbEmulator) -> None:
    register_model(ModelInfo(id=NO_TOOLS, tool_calling=False, context_window=100_000))
    register_model(ModelInfo(id=TINY, context_window=50))
    emulator.add_model(NO_TOOLS)
    emulator.add_model(TINY)


@pytest.fixture
def make(router_factory: Factory) -> Factory:
    return router_factory



def served(emulator: WandbEmulator) -> list[str]:
    return [r.model or "" for r in emulator.chat_requests()]


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


class Joke(BaseModel):
    setup: str
    punchline: str


# ------------------------------------------------------------ selection


def test_mastra_dynamic_example_reads_naturally(make: Factory) -> None:
    router = make(
        lambda ctx: "wandb/moonshotai/Kimi-K2.5"
        if ctx.get("task") == "complex"
        else "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
    )
    assert router.invoke("hi").response_metadata["model_name"] == QWEN
    complex_cfg = {"configurable": {"task": "complex"}}
    assert router.invoke("hi", config=complex_cfg).response_metadata["model_name"] == KIMI
    assert router.invoke("hi", config={"metadata": {"task": "complex"}}).response_metadata["model_name"] == KIMI


def test_selector_sees_the_request(make: Factory) -> None:
    seen: list[RoutingContext] = []

    def select(ctx: RoutingContext) -> str:
        seen.append(ctx)
        return QWEN

    make(select).bind_tools([get_weather]).invoke("weather in Paris?", config={"tags": ["t1"]})
    ctx = seen[-1]
    assert ctx.needs_tools and ctx.tools[0]["function"]["name"] == "get_weather"
    assert not ctx.needs_images and not ctx.needs_structured_output
    assert ctx.estimated_input_tokens > 0
    assert ctx.messages[-1].content == "weather in Paris?"
    assert "t1" in ctx.config["tags"]  # type: ignore[operator]


def test_selector_may_return_a_fallback_list(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    msg = make(lambda ctx: [QWEN, Route(DSV31)], max_retries=0).invoke("hi")
    assert msg.response_metadata["model_name"] == DSV31


def test_configurable_forces_a_model(make: Factory) -> None:
    router = make([QWEN, DSV31])
    msg = router.invoke("hi", config={"configurable": {"wandb_model": "wandb/openai/gpt-oss-120b"}})
    assert msg.response_metadata["model_name"] == "openai/gpt-oss-120b"
    assert msg.response_metadata["routing"]["reason"] == "forced for this call"


def test_async_selector_needs_async_call(make: Factory) -> None:
    async def select(ctx: RoutingContext) -> str:
        return KIMI

    router = make(select)
    with pytest.raises(TypeError, match="ainvoke"):
        router.invoke("hi")


async def test_async_selector(make: Factory) -> None:
    async def select(ctx: RoutingContext) -> str:
        return KIMI

    msg = await make(select).ainvoke("hi")
    assert msg.response_metadata["model_name"] == KIMI


def test_bad_selector_results_are_typed_errors(make: Factory) -> None:
    with pytest.raises(TypeError, match="models must be"):
        make(lambda ctx: 42).invoke("hi")
    with pytest.raises(ValueError, match="Malformed"):
        make(lambda ctx: "not-a-model").invoke("hi")
    with pytest.raises(ValueError, match="empty"):
        make([])


# ------------------------------------------------------------ capabilities


def test_tools_skip_models_that_cannot_call_tools(emulator: WandbEmulator, make: Factory) -> None:
    router = make([NO_TOOLS, QWEN])
    msg = router.bind_tools([get_weather]).invoke("weather in Paris?")
    assert msg.response_metadata["model_name"] == QWEN
    assert msg.response_metadata["routing"]["excluded"] == {NO_TOOLS: "does not call tools"}
    assert served(emulator) == [QWEN]
    assert router.invoke("hi").response_metadata["model_name"] == NO_TOOLS  # no tools: fine


def test_images_go_to_vision_models(emulator: WandbEmulator, make: Factory) -> None:
    image = HumanMessage(
        content=[
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    msg = make([QWEN, GEMMA]).invoke([image])
    assert msg.response_metadata["model_name"] == GEMMA
    assert served(emulator) == [GEMMA]


def test_context_window_filter(make: Factory) -> None:
    long_text = "word " * 200
    msg = make([TINY, QWEN]).invoke(long_text)
    assert msg.response_metadata["model_name"] == QWEN
    assert "context window" in msg.response_metadata["routing"]["excluded"][TINY]


def test_nothing_left_explains_every_exclusion(emulator: WandbEmulator, make: Factory) -> None:
    router = make([NO_TOOLS, "wandb/moonshotai/Kimi-K2-Instruct"])
    with pytest.raises(NoRouteAvailableError) as info:
        router.bind_tools([get_weather]).invoke("weather?")
    assert info.value.reasons[NO_TOOLS] == "does not call tools"
    assert "2026-03-04" in info.value.reasons["moonshotai/Kimi-K2-Instruct"]
    assert "does not call tools" in str(info.value)
    assert emulator.chat_requests() == []


def test_retired_routes_are_skipped_with_a_warning_or_upgraded(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_wandb_router")
    retired = "wandb/deepseek-ai/DeepSeek-V3-0324"
    msg = make([retired, QWEN]).invoke("hi")
    assert msg.response_metadata["model_name"] == QWEN
    assert "retired on 2026-03-04" in caplog.text
    upgraded = make([retired, QWEN], upgrade_retired=True).invoke("hi")
    assert upgraded.response_metadata["model_name"] == DSV31
    assert upgraded.response_metadata["routing"]["reason"].startswith("upgraded from retired")


# ------------------------------------------------------------ retries and fallbacks


def test_single_failing_route_gets_exactly_three_requests(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=503, times=None)
    with pytest.raises(WandbAPIError) as info:
        make(QWEN, max_retries=2).invoke("hi")
    assert len(emulator.chat_requests()) == 3  # routes have transport retries off
    assert len(sleeps) == 2
    assert any("WandbRouter attempts" in note for note in info.value.__notes__)


def test_retry_then_fallback_with_retry_after(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    # A ready fallback is used at once instead of sleeping out the hint.
    emulator.fault(status=429, headers={"Retry-After": "0.75"}, times=None, model=QWEN)
    msg = make([QWEN, DSV31], max_retries=1).invoke("hi")
    assert served(emulator) == [QWEN, DSV31]
    assert sleeps == []
    routing = msg.response_metadata["routing"]
    assert routing["model"] == DSV31
    assert [a["model"] for a in routing["attempts"]] == [QWEN, DSV31]
    assert "ConcurrencyLimitError" in routing["attempts"][0]["error"]
    assert routing["attempts"][-1]["error"] is None


def test_retry_after_is_waited_only_when_nothing_else_can_serve(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    emulator.fault(status=503, headers={"Retry-After": "0.75"}, times=1, model=QWEN)
    msg = make(QWEN, max_retries=1).invoke("hi")
    assert served(emulator) == [QWEN, QWEN]
    assert sleeps == [pytest.approx(0.75, abs=0.05)]
    assert msg.response_metadata["model_name"] == QWEN


def test_per_route_retries(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=500, times=None, model=QWEN)
    make([Route(QWEN, max_retries=0), DSV31], max_retries=5).invoke("hi")
    assert served(emulator) == [QWEN, DSV31]


@pytest.mark.parametrize("status", [400, 401, 402, 403])
def test_non_retryable_errors_surface_at_once(
    emulator: WandbEmulator, make: Factory, sleeps: list[float], status: int
) -> None:
    emulator.fault(status=status, model=QWEN)
    with pytest.raises(Exception) as info:  # noqa: PT011 - type checked below
        make([QWEN, DSV31]).invoke("hi")
    assert getattr(info.value, "status_code", None) == status
    assert served(emulator) == [QWEN]
    assert sleeps == []


def test_fallback_statuses_make_400_fall_back(emulator: WandbEmulator, make: Factory) -> None:
    emulator.fault(status=400, body={"detail": "response_format not supported"}, model=QWEN)
    msg = make([QWEN, DSV31], fallback_statuses={400}).invoke("hi")
    assert msg.response_metadata["model_name"] == DSV31
    assert served(emulator) == [QWEN, DSV31]


async def test_async_retries_and_fallback(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    msg = await make([QWEN, DSV31]).ainvoke("hi")
    assert msg.response_metadata["model_name"] == DSV31
    assert served(emulator) == [QWEN, DSV31]  # the fallback was ready: no backoff
    emulator.reset()
    emulator.fault(status=401, model=QWEN)
    with pytest.raises(WandbAuthenticationError):
        await make([QWEN, DSV31]).ainvoke("hi")
    assert served(emulator) == [QWEN]


def test_non_wandb_fallback_model(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None)
    backup = FakeListChatModel(responses=["from the backup"])
    msg = make([QWEN, backup]).invoke("hi")
    assert msg.content == "from the backup"
    assert msg.response_metadata["routing"]["model"] == "FakeListChatModel"


# ------------------------------------------------------------ cooldown


def test_cooldown_moves_a_failing_model_last_then_recovers(
    emulator: WandbEmulator, make: Factory, sleeps: list[float]
) -> None:
    clock = [1000.0]
    state = InProcessState(
        health=HealthSettings(failures=2, cooldown_seconds=60), clock=lambda: clock[0]
    )
    emulator.fault(status=503, times=2, model=QWEN)
    router = make([QWEN, DSV31], max_retries=0, state=state)
    router.invoke("hi")  # QWEN fails (1), DSV31 answers
    router.invoke("hi")  # QWEN fails (2) -> cooling; DSV31 answers
    emulator.reset()
    msg = router.invoke("hi")
    assert served(emulator) == [DSV31]  # QWEN is tried last while cooling
    assert "cooling down" in msg.response_metadata["routing"]["excluded"][QWEN]
    # Cooling never costs availability: with DSV31 failing, QWEN still serves.
    emulator.fault(status=503, times=None, model=DSV31)
    assert router.invoke("hi").response_metadata["model_name"] == QWEN
    emulator.reset()
    clock[0] += 61
    assert router.invoke("hi").response_metadata["model_name"] == QWEN
    assert served(emulator) == [QWEN]


def test_all_cooling_still_tries_something(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=1, model=QWEN)
    router = make(QWEN, max_retries=0, cooldown_failures=1, cooldown_seconds=600)
    with pytest.raises(WandbAPIError):
        router.invoke("hi")
    assert router.invoke("hi").text  # cooling, but the only route: tried anyway


def test_cooldown_counts_are_thread_safe(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    state = InProcessState(health=HealthSettings(failures=40, window_seconds=600, cooldown_seconds=60))
    router = make([QWEN, DSV31], max_retries=0, state=state)
    threads = [threading.Thread(target=lambda: [router.invoke("hi") for _ in range(5)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Exactly the 40th failure trips the cooldown: no report was lost.
    assert served(emulator).count(QWEN) == 40
    key = route_key(emulator.base_url, None, QWEN, account_fingerprint(emulator.api_key))
    assert set(state.cooling([key])) == {key}


# ------------------------------------------------------------ streaming


def test_stream_falls_back_before_first_chunk(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    chunks = list(make([QWEN, DSV31], max_retries=0).stream("hi"))
    text = "".join(c.text for c in chunks)
    assert DSV31 in text
    routing = [c.response_metadata["routing"] for c in chunks if "routing" in c.response_metadata]
    assert routing[0]["model"] == DSV31


def test_stream_drop_before_data_falls_back(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(drop_after=0, model=QWEN, times=None)
    full = None
    for c in make([QWEN, DSV31], max_retries=0).stream("hi"):
        full = c if full is None else full + c
    assert full is not None and full.response_metadata["model_name"] == DSV31


def test_stream_never_splices_after_first_chunk(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(drop_after=4, model=QWEN)
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in make([QWEN, DSV31]).stream("tell me a story"):
            received.append(chunk.text)
    assert served(emulator) == [QWEN]  # no retry, no fallback after output
    assert info.value.partial_text == "".join(received)
    assert DSV31 not in "".join(received)


async def test_astream_never_splices(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, model=QWEN, times=3)
    emulator.fault(drop_after=4, model=DSV31)
    with pytest.raises(StreamInterruptedError):
        async for _ in make([QWEN, DSV31]).astream("tell me a story"):
            pass
    assert served(emulator) == [QWEN, DSV31]


# ------------------------------------------------------------ tools and structured output


def test_tools_follow_the_fallback(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    msg = make([QWEN, DSV31], max_retries=0).bind_tools([get_weather], tool_choice="any").invoke("Paris?")
    assert msg.tool_calls[0]["name"] == "get_weather"
    fallback_body = emulator.chat_requests()[-1].json
    assert fallback_body is not None and fallback_body["model"] == DSV31
    assert fallback_body["tools"][0]["function"]["name"] == "get_weather"
    assert fallback_body["tool_choice"] == "required"


def test_structured_output_through_the_router(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    joke = make([QWEN, DSV31], max_retries=0).with_structured_output(Joke).invoke("a joke about cats")
    assert isinstance(joke, Joke)
    sent = emulator.chat_requests()[-1].json
    assert sent is not None and sent["response_format"]["type"] == "json_schema"


def test_include_raw_keeps_the_raw_message_when_parsing_fails(emulator: WandbEmulator, make: Factory) -> None:
    emulator.respond_with(content="not json at all")
    out = make(QWEN).with_structured_output(Joke, include_raw=True).invoke("a joke")
    assert out["parsed"] is None
    assert out["parsing_error"] is not None
    assert out["raw"].content == "not json at all"


# ------------------------------------------------------------ truth, usage, budget


def test_usage_counted_once_keyed_by_served_model(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    router = make([QWEN, DSV31], max_retries=0)
    with get_usage_metadata_callback() as cb:
        msg = router.invoke("hi")
        list(router.stream("hi"))
    assert set(cb.usage_metadata) == {DSV31}
    assert msg.usage_metadata is not None
    assert cb.usage_metadata[DSV31]["input_tokens"] == 2 * msg.usage_metadata["input_tokens"]


def test_ls_params_name_the_planned_model(make: Factory) -> None:
    router = make([QWEN, DSV31], temperature=0.3)
    params = router._get_ls_params()
    assert params["ls_provider"] == "wandb"
    assert params["ls_model_name"] == QWEN
    assert router._get_ls_params(model="wandb/openai/gpt-oss-20b")["ls_model_name"] == "openai/gpt-oss-20b"


class _StartMeta(BaseCallbackHandler):
    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.metadata.append(kwargs.get("metadata") or {})


def test_tracing_names_the_selected_model_and_selector_runs_once(make: Factory) -> None:
    calls: list[int] = []

    def select(ctx: RoutingContext) -> str:
        calls.append(1)
        return KIMI if ctx.get("task") == "complex" else QWEN

    router = make(select)
    seen = _StartMeta()
    cfg: dict[str, Any] = {"callbacks": [seen], "configurable": {"task": "complex"}}
    msg = router.invoke("hi", config=cfg)
    list(router.stream("hi", config=cfg))
    assert [m["ls_model_name"] for m in seen.metadata] == [KIMI, KIMI]
    assert all(m["ls_provider"] == "wandb" for m in seen.metadata)
    assert msg.response_metadata["model_name"] == KIMI
    assert len(calls) == 2  # once per call, not once for tracing and once for routing
    # Tools bound: the traced model is the first one that can serve the call.
    tools_router = make([NO_TOOLS, QWEN]).bind_tools([get_weather])
    tools_router.invoke("weather?", config={"callbacks": [seen]})
    assert seen.metadata[-1]["ls_model_name"] == QWEN


def test_profile_is_the_intersection(make: Factory) -> None:
    profile = make([QWEN, KIMI, DSV31]).profile
    assert profile is not None
    assert profile["max_input_tokens"] == 161000
    assert profile["image_inputs"] is False  # only KIMI sees images
    assert profile["tool_calling"] is True
    # A selector's profile: its candidates', else what every catalog model can do.
    chosen = make(lambda ctx: QWEN, candidates=[QWEN, DSV31]).profile
    assert chosen is not None and chosen["max_input_tokens"] == 161000
    assert chosen["tool_calling"] is True and chosen["structured_output"] is True
    anything = make(lambda ctx: QWEN).profile  # the whole catalog's intersection
    assert anything is not None and anything["text_inputs"] is True


def test_budget_refuses_calls_before_any_request(emulator: WandbEmulator, make: Factory) -> None:
    router = make("wandb/meta-llama/Llama-3.3-70B-Instruct", budget_usd=0.00002)
    router.invoke("hello")
    assert router.spent_usd > 0
    while router.spent_usd < 0.00002:
        router.invoke("hello")
    before = len(emulator.chat_requests())
    with pytest.raises(BudgetExceededError, match="budget_usd"):
        router.invoke("hello")
    with pytest.raises(BudgetExceededError):
        list(router.stream("hello"))
    assert len(emulator.chat_requests()) == before


def test_stream_cost_counts_toward_budget(make: Factory) -> None:
    router = make("wandb/meta-llama/Llama-3.3-70B-Instruct", budget_usd=1.0)
    list(router.stream("hello"))
    assert router.spent_usd > 0


def test_callers_messages_are_never_mutated(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    messages = [HumanMessage("hi")]
    snapshot = [m.model_copy(deep=True) for m in messages]
    make([QWEN, DSV31], max_retries=1).invoke(messages)
    emulator.fault(status=400)
    with pytest.raises(WandbInvalidRequestError):
        make([QWEN, DSV31]).invoke(messages)
    assert messages == snapshot


def test_batch_sync_and_async(make: Factory) -> None:
    router = make(lambda ctx: KIMI if ctx.get("task") == "complex" else QWEN)
    results = router.batch(["a", "b"], config=[{"configurable": {"task": "complex"}}, {}])
    assert [r.response_metadata["model_name"] for r in results] == [KIMI, QWEN]


async def test_abatch(make: Factory) -> None:
    router = make(lambda ctx: KIMI if ctx.get("task") == "complex" else QWEN)
    results = await router.abatch(["a", "b"], config=[{"configurable": {"task": "complex"}}, {}])
    assert [r.response_metadata["model_name"] for r in results] == [KIMI, QWEN]


def test_rate_limit_error_type_preserved(emulator: WandbEmulator, make: Factory, sleeps: list[float]) -> None:
    emulator.fault(status=429, times=None)
    with pytest.raises(WandbRateLimitError):
        make(QWEN, max_retries=1).invoke("hi")
