"""WandbRouter as a LangChain citizen: public-API routes, traces, cache, copies, input checks."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    trim_messages,
)
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.tracers.schemas import Run

from langchain_wandb_router import (
    NoRouteAvailableError,
    RoutingContext,
    WandbAuthenticationError,
    WandbRouter,
)
from langchain_wandb_router.testing import WandbEmulator
from tests.helpers import FinishedRuns

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
GPT_OSS = "openai/gpt-oss-120b"


@pytest.fixture
def make(router_factory: Any) -> Any:
    return router_factory


def served(emulator: WandbEmulator) -> list[str]:
    return [r.model or "" for r in emulator.chat_requests()]


_Runs = FinishedRuns



def _usage_of(run: Run) -> dict[str, Any] | None:
    for generations in (run.outputs or {}).get("generations", []):
        for gen in generations:
            usage = (gen.get("message") or {}).get("kwargs", {}).get("usage_metadata")
            if usage:
                return usage  # type: ignore[no-any-return]
    return None


# ------------------------------------------------------------------ foreign routes


class _CountingLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True


class _Seen(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append("start")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append("end")


def _backup(limiter: BaseRateLimiter, seen: _Seen) -> GenericFakeChatModel:
    return GenericFakeChatModel(
        messages=iter([AIMessage("from the backup")] * 4), rate_limiter=limiter, callbacks=[seen]
    )


def test_foreign_route_keeps_its_rate_limiter_and_callbacks(emulator: WandbEmulator, make: Any) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    limiter, seen = _CountingLimiter(), _Seen()
    router = make([QWEN, _backup(limiter, seen)], max_retries=0)
    assert router.invoke("hi").text == "from the backup"
    assert "".join(c.text for c in router.stream("hi"))
    assert limiter.acquired == 2
    assert seen.events == ["start", "end", "start", "end"]


async def test_foreign_route_async(emulator: WandbEmulator, make: Any) -> None:
    emulator.fault(status=503, times=None, model=QWEN)
    limiter, seen = _CountingLimiter(), _Seen()
    router = make([QWEN, _backup(limiter, seen)], max_retries=0)
    assert (await router.ainvoke("hi")).text == "from the backup"
    assert limiter.acquired == 1
    assert seen.events == ["start", "end"]


# ------------------------------------------------------------------ tracing


@pytest.mark.parametrize("streamed", [False, True])
def test_traces_name_the_model_that_produced_each_usage(
    emulator: WandbEmulator, make: Any, streamed: bool
) -> None:
    emulator.fault(status=500, times=1, model=QWEN)
    router = make([QWEN, DSV31], max_retries=0)
    tracer = _Runs()
    with get_usage_metadata_callback() as usage:
        if streamed:
            msg: Any = None
            for chunk in router.stream("hi", config={"callbacks": [tracer]}):
                msg = chunk if msg is None else msg + chunk
        else:
            msg = router.invoke("hi", config={"callbacks": [tracer]})
    failed = [r for r in tracer.runs if r.error]
    ok = [r for r in tracer.runs if not r.error]
    # The failed attempt is visible, as a run of the model that failed.
    assert [r.extra["metadata"]["ls_model_name"] for r in failed] == [QWEN]
    assert "WandbAPIError" in (failed[0].error or "")
    # Every run that carries usage is labelled with the model that produced it.
    with_usage = [r for r in ok if _usage_of(r)]
    assert [r.extra["metadata"]["ls_model_name"] for r in with_usage] == [DSV31]
    # Counted once, keyed by the served model.
    assert set(usage.usage_metadata) == {DSV31}
    assert msg.usage_metadata is not None
    assert usage.usage_metadata[DSV31]["total_tokens"] == msg.usage_metadata["total_tokens"]


def test_router_callbacks_see_the_attempts(emulator: WandbEmulator, make: Any) -> None:
    seen = _Seen()
    make(QWEN, callbacks=[seen]).invoke("hi")
    assert seen.events == ["start", "end"]


class _Starts(BaseCallbackHandler):
    """Records the tags and metadata each model run starts with."""

    def __init__(self) -> None:
        self.starts: list[tuple[list[str], dict[str, Any]]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts.append((list(kwargs.get("tags") or []), dict(kwargs.get("metadata") or {})))


@pytest.mark.parametrize("with_handler_on_router", [False, True])
def test_router_tags_and_metadata_reach_the_attempts(
    emulator: WandbEmulator, make: Any, with_handler_on_router: bool
) -> None:
    starts = _Starts()
    own: dict[str, Any] = {"callbacks": [starts]} if with_handler_on_router else {}
    router = make(QWEN, tags=["router-tag"], metadata={"team": "search", "who": "router"}, **own)
    config: dict[str, Any] = {"tags": ["call-tag"], "metadata": {"who": "call", "run": 7}}
    if not with_handler_on_router:
        config["callbacks"] = [starts]
    router.invoke("hi", config)
    [(tags, metadata)] = starts.starts
    assert {"router-tag", "call-tag"} <= set(tags)
    # The router's own metadata wins over the call's, as a model's does in core.
    assert metadata["team"] == "search"
    assert metadata["who"] == "router"
    assert metadata["run"] == 7
    assert metadata["ls_model_name"] == QWEN


# ------------------------------------------------------------------ cache


@pytest.fixture
def llm_cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


def test_cache_is_keyed_by_the_routed_model(
    emulator: WandbEmulator, make: Any, llm_cache: InMemoryCache
) -> None:
    router = make(lambda ctx: GPT_OSS if ctx.get("task") == "b" else QWEN)
    first = router.invoke("same question")
    assert router.invoke("same question").text == first.text  # cached
    assert served(emulator) == [QWEN]
    routed_b = router.invoke("same question", config={"configurable": {"task": "b"}})
    forced = router.invoke("same question", config={"configurable": {"wandb_model": DSV31}})
    assert served(emulator) == [QWEN, GPT_OSS, DSV31]
    assert routed_b.response_metadata["model_name"] == GPT_OSS
    assert forced.response_metadata["model_name"] == DSV31


# ------------------------------------------------------------------ copies


def test_model_copy_after_a_call_sends_the_new_setting(emulator: WandbEmulator, make: Any) -> None:
    router = make(QWEN, temperature=0.7)
    router.invoke("hi")
    cooler = router.model_copy(update={"temperature": 0.1})
    cooler.invoke("hi")
    router.invoke("hi")
    temps = [r.json["temperature"] for r in emulator.chat_requests() if r.json]
    assert temps == [0.7, 0.1, 0.7]


def test_copies_do_not_share_health_or_spend(emulator: WandbEmulator, make: Any) -> None:
    emulator.fault(status=503, times=1, model=QWEN)
    router = make([QWEN, DSV31], max_retries=0, cooldown_failures=1, budget_usd=1.0)
    router.invoke("hi")  # QWEN fails once: cooling in this router
    spent = router.spent_usd
    assert spent > 0
    twin = router.model_copy()
    assert twin.spent_usd == 0
    emulator.reset()
    twin.invoke("hi")
    assert served(emulator) == [QWEN]  # the copy does not inherit the cooldown
    assert router.invoke("hi").response_metadata["routing"]["excluded"][QWEN].startswith("cooling")


def _pick(ctx: RoutingContext) -> str:
    return DSV31 if ctx.get("task") == "b" else QWEN


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickle_and_deepcopy_before_and_after_calls(emulator: WandbEmulator, make: Any, how: str) -> None:
    def clone(router: WandbRouter) -> WandbRouter:
        if how == "pickle":
            return pickle.loads(pickle.dumps(router))  # type: ignore[no-any-return]
        return copy.deepcopy(router)

    router = WandbRouter(models=_pick, api_key=emulator.api_key, base_url=emulator.base_url, temperature=0.2)
    before = clone(router)
    router.invoke("hi")
    after = clone(router)
    for twin in (before, after):
        msg = twin.invoke("hi", config={"configurable": {"task": "b"}})
        assert msg.response_metadata["model_name"] == DSV31
        assert twin.temperature == 0.2


# ------------------------------------------------------------------ token counting


def test_token_counting_without_transformers(make: Any) -> None:
    router = make([QWEN, DSV31])
    assert router.get_num_tokens("hello world, how are you?") > 0
    history = [SystemMessage("be brief")] + [HumanMessage("x" * 400) for _ in range(10)]
    trimmed = trim_messages(history, max_tokens=350, token_counter=router, strategy="last", include_system=True)
    assert 1 < len(trimmed) < len(history)
    assert router.get_num_tokens_from_messages(history) > router.get_num_tokens_from_messages(trimmed)


# ------------------------------------------------------------------ bad input


def test_unknown_constructor_arguments_are_refused(emulator: WandbEmulator) -> None:
    with pytest.raises(TypeError, match=r"'max_retires'.*did you mean 'max_retries'"):
        WandbRouter(models=QWEN, api_key=emulator.api_key, max_retires=5)


async def test_empty_input_is_refused_before_the_network(emulator: WandbEmulator, make: Any) -> None:
    router = make(QWEN)
    with pytest.raises(ValueError, match="No messages"):
        router.invoke([])
    with pytest.raises(ValueError, match="No messages"):
        list(router.stream([]))
    with pytest.raises(ValueError, match="No messages"):
        router.batch([[]])
    with pytest.raises(ValueError, match="No messages"):
        await router.ainvoke([])
    with pytest.raises(ValueError, match="No messages"):
        async for _ in router.astream([]):
            pass
    assert emulator.chat_requests() == []


# ------------------------------------------------------------------ fallback defaults


def test_404_falls_back_by_default_but_401_surfaces(emulator: WandbEmulator, make: Any) -> None:
    router = make(["wandb/acme/not-served", QWEN])
    msg = router.invoke("hi")
    assert msg.response_metadata["model_name"] == QWEN
    assert "ModelNotFound" in msg.response_metadata["routing"]["attempts"][0]["error"]
    emulator.fault(status=401, model=QWEN)
    with pytest.raises(WandbAuthenticationError):
        make([QWEN, DSV31]).invoke("hi")


# ------------------------------------------------------------------ budget and prices

LORA = "wandb-artifact:///team/project/my-lora:v1"


def test_budget_with_an_unpriced_route_is_refused_unless_allowed(emulator: WandbEmulator, make: Any) -> None:
    with pytest.raises(ValueError, match=r"no known price.*my-lora.*allow_unpriced=True"):
        make([QWEN, LORA], budget_usd=1.0)
    emulator.add_model(LORA)
    emulator.fault(status=503, times=None, model=QWEN)
    router = make([QWEN, LORA], budget_usd=1.0, allow_unpriced=True, max_retries=0)
    assert router.invoke("hi").response_metadata["model_name"] == LORA
    assert router.spent_usd == 0  # uncounted, as the user allowed


def test_budget_excludes_unpriced_models_a_selector_picks(make: Any) -> None:
    router = make(lambda ctx: LORA, budget_usd=1.0)
    with pytest.raises(NoRouteAvailableError, match="no known price"):
        router.invoke("hi")
