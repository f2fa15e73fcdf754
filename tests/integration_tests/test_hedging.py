"""Hedged requests against the emulator: a second attempt when the first is slow.

A hung route is given a delay far longer than any test waits (``LONG``), so a
request that ends early means the router hung up on it; fast routes answer in
a few hundredths of a second. Nothing here asserts how long a call took: the
recorded requests, the emulator's counters, the ``routing`` record, the
router's state and ``router.stats()`` say what happened.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_wandb_router import Hedge, Route, WandbRouter
from langchain_wandb_router.catalog._pricing import call_cost_usd
from langchain_wandb_router.chat._tokens import estimate_message_tokens
from langchain_wandb_router.errors import WandbAPIError
from langchain_wandb_router.router._budget import input_micro, to_micro
from langchain_wandb_router.router._strategy import _HEDGE_DELAY_FLOOR
from langchain_wandb_router.testing import Latency, WandbEmulator
from langchain_wandb_router.testing._latency import draw_latency
from tests.integration_tests.test_emulator_latency import await_until

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DSV31 = "deepseek-ai/DeepSeek-V3.1"
KIMI = "moonshotai/Kimi-K2.5"
LONG = 60.0  # a hung route: only the router hanging up ends its request sooner
FAST = Latency(ttft=0.02)
EVERY_CALL = Hedge(delay=0.1, max_extra=1.0)  # hedge any call slow for 0.1 s

Factory = Callable[..., WandbRouter]


def served(emulator: WandbEmulator) -> list[str]:
    return [r.model or "" for r in emulator.chat_requests()]


def pace(emulator: WandbEmulator, qwen: Latency, dsv31: Latency) -> None:
    """QWEN's and DSV31's timing."""
    emulator.set_latency(qwen, model=QWEN)
    emulator.set_latency(dsv31, model=DSV31)


def key(router: WandbRouter, model: str) -> str:
    return router._rt().key_for(Route(model))


def in_flight(router: WandbRouter, *models: str) -> list[int]:
    return [router._rt().state.in_flight(key(router, m)) for m in models]


async def settled(emulator: WandbEmulator) -> None:
    """Wait until the emulator has nothing in flight (abandoned requests ended)."""
    await await_until(lambda: emulator.stats().in_flight == 0, "nothing in flight")


class Runs(AsyncCallbackHandler):
    """Model runs as tracing sees them: start, then end or error, per run."""

    def __init__(self) -> None:
        self.names: dict[UUID, str] = {}
        self.ends: dict[UUID, str] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.names[run_id] = name or ""

    async def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends[run_id] = "end"

    async def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.ends[run_id] = type(error).__name__

    def outcomes(self) -> dict[str, str]:
        return {name: self.ends.get(run, "open") for run, name in self.names.items()}


# ------------------------------------------------------------ who wins


async def test_a_hung_first_attempt_is_hedged_and_the_hedge_wins(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=LONG), FAST)
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)

    message = await router.ainvoke("hi")

    routing = message.response_metadata["routing"]
    assert routing["model"] == DSV31 and routing["hedged"] is True
    attempts = routing["attempts"]
    assert [a["model"] for a in attempts] == [QWEN, DSV31]
    assert attempts[0]["error"].startswith("abandoned")
    assert attempts[1]["error"] is None
    assert "failed" not in routing["reason"]  # nothing failed: it was slow
    assert "hedge" in routing["reason"]
    assert served(emulator) == [QWEN, DSV31]
    # The loser was cancelled at once: its slot is free here and at W&B.
    assert in_flight(router, QWEN, DSV31) == [0, 0]
    await settled(emulator)
    stats = router.stats()
    assert stats[DSV31]["hedges"] == 1 and stats[DSV31]["hedges_won"] == 1
    assert stats[QWEN]["hedges"] == 0 and stats[QWEN]["requests"] == 1
    assert stats[QWEN]["errors"] == 0  # abandoned is not a server fault


async def test_the_first_attempt_still_wins_when_it_answers_before_the_hedge(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.5), Latency(ttft=LONG))
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)

    message = await router.ainvoke("hi")

    routing = message.response_metadata["routing"]
    assert routing["model"] == QWEN and routing["hedged"] is True
    assert [(a["model"], bool(a["error"])) for a in routing["attempts"]] == [
        (DSV31, True),
        (QWEN, False),
    ]
    assert routing["reason"] == "first choice"  # no failure to report
    assert served(emulator) == [QWEN, DSV31]
    assert in_flight(router, QWEN, DSV31) == [0, 0]
    await settled(emulator)
    stats = router.stats()
    assert stats[DSV31]["hedges"] == 1 and stats[DSV31]["hedges_won"] == 0
    assert stats[QWEN]["requests"] == 1 and stats[QWEN]["latency_p50"] is not None


async def test_a_fast_answer_is_never_hedged(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.set_latency(FAST)
    router = router_factory([QWEN, DSV31], hedge=Hedge(delay=1.0, max_extra=1.0))
    for _ in range(3):
        message = await router.ainvoke("hi")
        assert message.response_metadata["routing"]["hedged"] is False
    assert served(emulator) == [QWEN] * 3


def _tail_then_not(model: str, latency: Latency) -> int:
    """A seed whose first draw for ``model`` is in the tail and second is not."""
    for seed in range(1000):
        rng = random.Random(f"{seed}/{model}")
        if draw_latency(latency, rng).tail and not draw_latency(latency, rng).tail:
            return seed
    raise AssertionError("no such seed")  # pragma: no cover


async def test_a_single_model_hedges_on_itself(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    slow_now_and_then = Latency(ttft=0.02, tail_share=0.5, tail_factor=LONG / 0.02)
    seed = _tail_then_not(QWEN, slow_now_and_then)
    emulator.set_latency(slow_now_and_then, model=QWEN, seed=seed)
    router = router_factory([QWEN], hedge=EVERY_CALL)

    message = await router.ainvoke("hi")

    routing = message.response_metadata["routing"]
    assert routing["hedged"] is True and routing["model"] == QWEN
    assert [a["model"] for a in routing["attempts"]] == [QWEN, QWEN]
    draws = emulator.latencies()
    assert [d.tail for d in draws] == [True, False]
    # The answer is the second request's (its chatcmpl id).
    assert message.response_metadata["id"] == f"chatcmpl-{draws[1].request:06d}"
    assert in_flight(router, QWEN) == [0]
    await settled(emulator)


async def test_a_hedged_stream_commits_to_the_winner(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=LONG), Latency(ttft=0.02, per_token=0.002))
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)

    chunks = [chunk async for chunk in router.astream("tell me something")]

    routing = chunks[0].response_metadata["routing"]
    assert routing["model"] == DSV31 and routing["hedged"] is True
    assert len(chunks) > 2
    # One response, no splice: every chunk is the winner's.
    assert {c.id for c in chunks} == {chunks[0].id}
    text = "".join(str(c.content) for c in chunks)
    direct = await router.ainvoke("tell me something", model=DSV31)
    assert text == direct.content
    assert in_flight(router, QWEN, DSV31) == [0, 0]
    await settled(emulator)
    stats = router.stats()
    assert stats[DSV31]["hedges_won"] == 1 and stats[DSV31]["ttft_p50"] is not None


async def test_a_stream_whose_first_chunk_comes_first_wins_over_its_hedge(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.4, per_token=0.002), Latency(ttft=LONG))
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)

    chunks = [chunk async for chunk in router.astream("hi")]

    routing = chunks[0].response_metadata["routing"]
    assert routing["model"] == QWEN and routing["hedged"] is True
    assert {c.id for c in chunks} == {chunks[0].id}
    assert served(emulator) == [QWEN, DSV31]
    await settled(emulator)
    assert in_flight(router, QWEN, DSV31) == [0, 0]


async def test_a_failed_first_attempt_lets_the_running_hedge_answer(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    # QWEN fails (a 500) after the hedge has started; the hedge still runs.
    emulator.fault(status=500, delay=0.3, model=QWEN)
    emulator.set_latency(Latency(ttft=0.6), model=DSV31)
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL, max_retries=0)

    message = await router.ainvoke("hi")

    routing = message.response_metadata["routing"]
    assert routing["model"] == DSV31 and routing["hedged"] is True
    assert [a["model"] for a in routing["attempts"]] == [QWEN, DSV31]
    assert "500" in routing["attempts"][0]["error"] or routing["attempts"][0]["error"]
    assert served(emulator) == [QWEN, DSV31]  # the hedge was not sent again
    stats = router.stats()
    assert stats[QWEN]["errors"] == 1
    assert stats[DSV31]["hedges_won"] == 1
    assert in_flight(router, QWEN, DSV31) == [0, 0]


# ------------------------------------------------------------ sync calls


def test_sync_calls_are_never_hedged(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.4), FAST)
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)

    message = router.invoke("hi")
    assert message.response_metadata["routing"]["hedged"] is False
    chunks = list(router.stream("hi"))
    assert chunks[0].response_metadata["routing"]["hedged"] is False
    assert served(emulator) == [QWEN, QWEN]  # one request per call
    assert router.stats()[DSV31]["requests"] == 0


async def test_hedge_true_waits_for_the_routes_p95_before_hedging(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, FAST, FAST)
    router = router_factory([QWEN, DSV31], hedge=True)
    for _ in range(3):  # QWEN's figures: fast, so the delay is the floor
        message = await router.ainvoke("hi")
        assert message.response_metadata["routing"]["hedged"] is False
    emulator.set_latency(Latency(ttft=LONG), model=QWEN)

    message = await router.ainvoke("hi")

    routing = message.response_metadata["routing"]
    assert routing["model"] == DSV31 and routing["hedged"] is True
    # QWEN ran at least the floor delay before the hedge started.
    assert routing["attempts"][0]["seconds"] >= _HEDGE_DELAY_FLOOR
    await settled(emulator)


# ------------------------------------------------------------ limits


async def test_no_hedge_without_a_free_slot(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.5), FAST)
    # One slot each: QWEN's is the first attempt's, DSV31's is taken here.
    router = router_factory(
        [QWEN, DSV31], hedge=EVERY_CALL, max_in_flight={QWEN: 1, DSV31: 1}
    )
    state = router._rt().state
    lease = state.try_acquire(key(router, DSV31), 1)
    assert lease is not None
    try:
        message = await router.ainvoke("hi")
    finally:
        state.release(lease, "ok")

    routing = message.response_metadata["routing"]
    assert routing["model"] == QWEN and routing["hedged"] is False
    assert served(emulator) == [QWEN]
    # The refused hedge used none of the allowance: the next slow call hedges.
    message = await router.ainvoke("hi")
    assert message.response_metadata["routing"]["hedged"] is True


async def test_hedges_never_exceed_the_limits(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.3), Latency(ttft=0.05))
    caps = {QWEN: 2, DSV31: 2}
    emulator.set_concurrency_limit(caps)
    router = router_factory(
        [QWEN, DSV31],
        hedge=Hedge(delay=0.05, max_extra=1.0),
        max_in_flight=caps,
        max_retries=0,
    )

    async def call(i: int) -> Any:
        await asyncio.sleep(0.04 * i)  # calls arrive over time, slots free up
        return await router.ainvoke(f"hi {i}")

    answers = await asyncio.gather(*(call(i) for i in range(12)))

    hedged = [a.response_metadata["routing"]["hedged"] for a in answers]
    assert any(hedged)
    stats = emulator.stats()
    assert stats.rejected == 0  # no hedge ever caused a concurrency 429
    assert stats.peak_in_flight_by_model[QWEN] <= 2
    assert stats.peak_in_flight_by_model[DSV31] <= 2
    assert in_flight(router, QWEN, DSV31) == [0, 0]
    await settled(emulator)


async def test_max_extra_caps_hedges_as_a_share_of_calls(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=0.15), FAST)
    router = router_factory([QWEN, DSV31], hedge=Hedge(delay=0.02, max_extra=0.25))

    hedged = []
    for i in range(8):  # every call is slow enough to want a hedge
        message = await router.ainvoke(f"hi {i}")
        hedged.append(message.response_metadata["routing"]["hedged"])

    assert 1 <= sum(hedged) <= 0.25 * 8
    assert hedged[0] is True  # a cold router may hedge its first slow call
    assert router.stats()[DSV31]["hedges"] == sum(hedged)


# ------------------------------------------------------------ costs, tracing


def _prompt() -> tuple[str, int]:
    text = "word " * 3000  # a prompt whose input cost is plain to see
    return text, estimate_message_tokens([HumanMessage(text)])


@pytest.mark.parametrize("winner", ["hedge", "first"])
async def test_both_attempts_count_under_a_budget(
    emulator: WandbEmulator, router_factory: Factory, winner: str
) -> None:
    slow, fast = (KIMI, DSV31) if winner == "hedge" else (DSV31, KIMI)
    first, second = (KIMI, DSV31)
    emulator.set_latency(Latency(ttft=LONG), model=slow)
    emulator.set_latency(Latency(ttft=0.3 if winner == "first" else 0.02), model=fast)
    router = router_factory(
        [first, second],
        hedge=EVERY_CALL,
        budget_usd=5.0,
        budget_scope=f"hedge-{uuid.uuid4().hex}",
    )
    text, tokens = _prompt()

    message = await router.ainvoke(text)

    routing = message.response_metadata["routing"]
    assert routing["model"] == fast and routing["hedged"] is True
    answer = to_micro(call_cost_usd(fast, message.usage_metadata) or 0.0)
    loser = input_micro(slow, tokens)  # cancelled: its input at its price
    assert loser > 0 and answer > 0
    state = router._rt().state
    spent = state.spent(router._budget_scope())
    assert spent == answer + loser
    # Nothing is still reserved: a budget of exactly this much is used up.
    assert router.spent_usd == pytest.approx(spent / 1e6)
    await settled(emulator)


async def test_both_attempts_appear_in_tracing(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    pace(emulator, Latency(ttft=LONG), FAST)
    router = router_factory([QWEN, DSV31], hedge=EVERY_CALL)
    runs = Runs()

    await router.ainvoke("hi", config={"callbacks": [runs]})
    outcomes = runs.outcomes()
    assert set(outcomes) == {QWEN, DSV31}  # a model run per attempt
    assert outcomes[DSV31] == "end" and outcomes[QWEN] != "end"

    runs = Runs()
    chunks = [c async for c in router.astream("hi", config={"callbacks": [runs]})]
    assert chunks
    assert runs.outcomes() == {QWEN: "CancelledError", DSV31: "end"}
    await settled(emulator)


async def test_a_cancelled_hedged_call_cancels_both_attempts(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.set_latency(Latency(ttft=LONG))
    router = router_factory(
        [QWEN, DSV31],
        hedge=EVERY_CALL,
        budget_usd=5.0,
        budget_scope=f"hedge-{uuid.uuid4().hex}",
    )
    call = asyncio.ensure_future(router.ainvoke("hi"))
    await await_until(lambda: emulator.stats().in_flight == 2, "both attempts sent")

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert in_flight(router, QWEN, DSV31) == [0, 0]
    await settled(emulator)
    # Both requests may have been billed: the reservations were settled.
    spent = router._rt().state.spent(router._budget_scope())
    assert spent > 0


async def test_a_hedged_call_that_fails_everywhere_costs_nothing(
    emulator: WandbEmulator, router_factory: Factory
) -> None:
    emulator.fault(status=500, delay=0.3, model=QWEN)
    emulator.fault(status=500, delay=0.4, model=DSV31)
    router = router_factory(
        [QWEN, DSV31],
        hedge=EVERY_CALL,
        max_retries=0,
        budget_usd=5.0,
        budget_scope=f"hedge-{uuid.uuid4().hex}",
    )
    with pytest.raises(WandbAPIError):
        await router.ainvoke("hi")
    assert served(emulator) == [QWEN, DSV31]  # both raced, both failed
    # Failed attempts are not billed: every reservation settled at 0.
    assert router._rt().state.spent(router._budget_scope()) == 0
    stats = router.stats()
    assert stats[QWEN]["errors"] == 1 and stats[DSV31]["errors"] == 1
    assert stats[DSV31]["hedges"] == 1 and stats[DSV31]["hedges_won"] == 0
    assert in_flight(router, QWEN, DSV31) == [0, 0]
