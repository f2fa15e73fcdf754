"""WandbDecisions and DecisionSelector against the emulator, in agents and the router.

The emulator answers decision requests by word overlap with the state
(``testing/_decide.py``): a choice whose description shares words with the
user's message is stated at 0.8, no shared word gives every option the same
share; its logprobs never list another option, so probabilities are the stated
ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain_core.decisions")

from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.decisions import Box, Choice, Noul, NoulCriteria, Score
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage

from langchain_wandb_router import (
    DecisionInputError,
    DecisionSelector,
    WandbAuthenticationError,
    WandbDecisions,
    get_wandb_cost_callback,
)
from langchain_wandb_router.testing import WandbEmulator

DECIDER = "Qwen/Qwen3-235B-A22B-Instruct-2507"
CHEAP = "meta-llama/Llama-3.1-8B-Instruct"
STRONG = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
TEAM = Choice(
    instructions="Which team should handle this request?",
    criteria={
        "technical": "Bugs, crashes and integration failures.",
        "billing": "Invoices, refunds and payments.",
    },
)
QUESTIONS = {
    "team": TEAM,
    "refund": Noul(
        instructions="Does the customer ask for a refund?",
        criteria=NoulCriteria(true="A refund is requested.", false="No money back."),
    ),
    "severity": Score(
        instructions="How severe is the problem?",
        criteria=["Cosmetic issue.", "Broken feature.", "Complete outage."],
    ),
}
STATE = "My invoice charged me twice, I want a refund."


@pytest.fixture
def decisions(emulator: WandbEmulator) -> Callable[..., WandbDecisions]:
    def make(**kwargs: Any) -> WandbDecisions:
        kwargs.setdefault("model", DECIDER)
        return WandbDecisions(
            api_key=emulator.api_key, base_url=emulator.base_url, **kwargs
        )

    return make


def _decision_requests(emulator: WandbEmulator) -> list[dict[str, Any]]:
    bodies = [r.json or {} for r in emulator.chat_requests()]
    return [
        b
        for b in bodies
        if ((b.get("response_format") or {}).get("json_schema") or {}).get("name")
        == "wandb_decisions"
    ]


def _check_answers(response: Any) -> None:
    team = response.choices["team"]
    assert team.choice == "billing"
    assert team.probabilities == pytest.approx({"billing": 0.8, "technical": 0.2})
    assert team.confidence == pytest.approx(0.8)
    assert response.nouls["refund"].noul == pytest.approx(0.9)
    severity = response.scores["severity"]
    # No level's words are in the state: the middle one, stated at 0.7.
    assert severity.probabilities == pytest.approx({0: 0.15, 1: 0.7, 2: 0.15})
    assert severity.score == pytest.approx(1.0)
    assert severity.legend[2] == "Complete outage."
    assert response.model == DECIDER
    assert response.usage["input_tokens"] > 0
    assert response.usage["output_tokens"] > 0
    meta = response.response_metadata
    assert meta["probability_source"] == dict.fromkeys(QUESTIONS, "stated")
    assert meta["cost_usd"] > 0
    assert response.request_id.startswith("chatcmpl-")


# ------------------------------------------------------------- WandbDecisions


def test_answers_choice_noul_and_score_in_one_strict_request(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    response = decisions().invoke({"state": STATE, "questions": QUESTIONS})
    _check_answers(response)
    [body] = _decision_requests(emulator)
    fmt = body["response_format"]["json_schema"]
    assert fmt["strict"] is True
    assert fmt["schema"]["required"] == list(QUESTIONS)
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 10
    assert body["temperature"] == 0.0
    assert body["messages"][-1] == {"role": "user", "content": STATE}


async def test_answers_async(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    response = await decisions().ainvoke({"state": STATE, "questions": QUESTIONS})
    _check_answers(response)
    assert len(_decision_requests(emulator)) == 1


def test_messages_and_json_state(decisions: Callable[..., WandbDecisions]) -> None:
    state = {
        "messages": [HumanMessage("The app crashes with an integration failure.")],
        "attempts": 3,
    }
    response = decisions(logprobs=False).invoke(
        {"state": state, "questions": {"team": TEAM}}
    )
    assert response.choices["team"].choice == "technical"


class _Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.llm_parents: list[UUID | None] = []
        self.chains: dict[UUID, str] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self.llm_parents.append(kw.get("parent_run_id"))

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        self.chains[kw["run_id"]] = kw.get("name") or ""


def test_one_llm_run_carries_usage_and_cost(
    decisions: Callable[..., WandbDecisions],
) -> None:
    runs = _Runs()
    with get_usage_metadata_callback() as usage, get_wandb_cost_callback() as cost:
        response = decisions().invoke(
            {"state": STATE, "questions": QUESTIONS}, {"callbacks": [runs]}
        )
    [parent] = runs.llm_parents  # one LLM run: ChatWandb's, in the chain run
    assert parent is not None
    assert runs.chains == {parent: "WandbDecisions"}
    assert usage.usage_metadata[DECIDER]["total_tokens"] == response.usage[
        "total_tokens"
    ]
    assert cost.calls == 1
    assert cost.total_cost_usd == pytest.approx(response.response_metadata["cost_usd"])


@pytest.mark.parametrize(
    "request_",
    [
        {"state": "hi", "questions": {}},
        {"state": "hi"},
        "just text",
        {"state": "hi", "questions": {"where": Box(instructions="Find the cat.")}},
        {"state": "hi", "questions": {"x": {"type": "nope"}}},
        {"state": {"blob": object()}, "questions": {"team": TEAM}},
        {"state": {1: "int key"}, "questions": {"team": TEAM}},
        {
            "state": HumanMessage(
                [{"type": "image", "url": "https://example.com/a.png"}]
            ),
            "questions": {"team": TEAM},
        },
        {
            "state": "hi",
            "questions": {"n": Noul(instructions={"type": "image", "base64": "AA"})},
        },
    ],
)
async def test_bad_input_fails_typed_before_any_request(
    emulator: WandbEmulator,
    decisions: Callable[..., WandbDecisions],
    request_: Any,
) -> None:
    model = decisions()
    with pytest.raises(DecisionInputError):
        model.invoke(request_)
    with pytest.raises(DecisionInputError):
        await model.ainvoke(request_)
    assert emulator.chat_requests() == []


def test_missing_key_fails_at_construction() -> None:
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        WandbDecisions(model=DECIDER)


def test_key_stays_out_of_repr_and_dumps(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    model = decisions()
    assert emulator.api_key not in repr(model)
    text = dumps(model)
    assert emulator.api_key not in text
    assert "WANDB_API_KEY" in text


def test_refused_logprobs_are_not_asked_again(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    emulator.fault(
        status=400,
        body={"error": {"message": "logprobs is not supported for this model"}},
    )
    model = decisions()
    first = model.invoke({"state": STATE, "questions": {"team": TEAM}})
    second = model.invoke({"state": STATE, "questions": {"team": TEAM}})
    assert first.choices["team"].choice == second.choices["team"].choice == "billing"
    bodies = _decision_requests(emulator)
    assert ["logprobs" in b for b in bodies] == [True, False, False]


def test_other_invalid_requests_surface_and_logprobs_can_be_off(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    from langchain_wandb_router import WandbInvalidRequestError

    emulator.fault(status=400, body={"error": {"message": "temperature is invalid"}})
    with pytest.raises(WandbInvalidRequestError, match="temperature"):
        decisions().invoke({"state": STATE, "questions": {"team": TEAM}})
    decisions(logprobs=False).invoke({"state": STATE, "questions": {"team": TEAM}})
    first, second = _decision_requests(emulator)
    assert first["logprobs"] is True
    assert "logprobs" not in second
    assert "top_logprobs" not in second


def test_an_answer_off_the_schema_is_a_typed_error(
    emulator: WandbEmulator, decisions: Callable[..., WandbDecisions]
) -> None:
    from langchain_wandb_router import WandbAPIError

    emulator.respond_with(content='{"team": {"answer": "sales"}}')
    with pytest.raises(WandbAPIError, match="no valid answer"):
        decisions().invoke({"state": STATE, "questions": {"team": TEAM}})


# ------------------------------------------------------------ in LangChain agents


def _agents() -> Any:
    middleware = pytest.importorskip("langchain.agents.middleware")
    if not hasattr(middleware, "ModelRouterMiddleware"):
        pytest.skip("this langchain has no ModelRouterMiddleware/AutoModeMiddleware")
    return middleware


def _router_agent(
    chat_factory: Callable[..., Any], decisions: Callable[..., WandbDecisions]
) -> Any:
    from langchain.agents import create_agent

    mw = _agents()
    router = mw.ModelRouterMiddleware(
        choices={
            "cheap": mw.ModelChoice(
                model=chat_factory(CHEAP), criteria="Greetings and small talk."
            ),
            "strong": mw.ModelChoice(
                model=chat_factory(STRONG), criteria="Writing code and algorithms."
            ),
        },
        instructions="Choose the least costly model suited to the task.",
        classifier=decisions(),
    )
    return create_agent(chat_factory(CHEAP), middleware=[router])


def test_model_router_middleware_routes_with_wandb_decisions(
    chat_factory: Callable[..., Any], decisions: Callable[..., WandbDecisions]
) -> None:
    agent = _router_agent(chat_factory, decisions)
    result = agent.invoke(
        {"messages": [HumanMessage("Write code for a sorting algorithm.")]},
        config={"recursion_limit": 10},
    )
    assert result["model_route"].choice == "strong"
    assert result["messages"][-1].response_metadata["model_name"] == STRONG


async def test_model_router_middleware_async(
    chat_factory: Callable[..., Any], decisions: Callable[..., WandbDecisions]
) -> None:
    agent = _router_agent(chat_factory, decisions)
    result = await agent.ainvoke(
        {"messages": [HumanMessage("Greetings! Just some small talk.")]},
        config={"recursion_limit": 10},
    )
    assert result["model_route"].choice == "cheap"
    assert result["messages"][-1].response_metadata["model_name"] == CHEAP


def _auto_mode_agent(
    chat_factory: Callable[..., Any],
    decisions: Callable[..., WandbDecisions],
    ran: list[str],
) -> Any:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        ran.append("read")
        return f"contents of {path}"

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append("delete")
        return f"deleted {path}"

    auto = _agents().AutoModeMiddleware(
        tools=[delete_file, read_file],
        criteria=NoulCriteria(
            true="The call deletes or removes data.", false="The call only reads data."
        ),
        classifier=decisions(),
    )
    return create_agent(
        chat_factory(), tools=[read_file, delete_file], middleware=[auto]
    )


@pytest.mark.parametrize(
    ("ask", "ran_tools", "blocked"),
    [("Please read the file 'notes.txt'.", ["read"], False),
     ("Please delete the file 'notes.txt'.", [], True)],
)  # fmt: skip
def test_auto_mode_middleware_blocks_risky_calls(
    chat_factory: Callable[..., Any],
    decisions: Callable[..., WandbDecisions],
    ask: str,
    ran_tools: list[str],
    blocked: bool,
) -> None:
    ran: list[str] = []
    agent = _auto_mode_agent(chat_factory, decisions, ran)
    result = agent.invoke(
        {"messages": [HumanMessage(ask)]}, config={"recursion_limit": 10}
    )
    assert ran == ran_tools
    [tool_message] = [m for m in result["messages"] if m.type == "tool"]
    assert (tool_message.status == "error") is blocked
    assert isinstance(result["messages"][-1], AIMessage)


async def test_auto_mode_middleware_async(
    chat_factory: Callable[..., Any], decisions: Callable[..., WandbDecisions]
) -> None:
    ran: list[str] = []
    agent = _auto_mode_agent(chat_factory, decisions, ran)
    result = await agent.ainvoke(
        {"messages": [HumanMessage("Please delete the file 'notes.txt'.")]},
        config={"recursion_limit": 10},
    )
    assert ran == []
    assert "blocked" in next(m for m in result["messages"] if m.type == "tool").text


# ------------------------------------------------------------- DecisionSelector


@dataclass
class Rig:
    """A test's emulator, and routers on DecisionSelectors that ask it."""

    emulator: WandbEmulator
    router_factory: Callable[..., Any]
    decisions: Callable[..., WandbDecisions]

    def selector(self, **kwargs: Any) -> DecisionSelector:
        kwargs.setdefault("decisions", self.decisions(logprobs=False, max_retries=0))
        return DecisionSelector(
            choices={"cheap": CHEAP, "strong": [STRONG, CHEAP]},
            criteria={
                "cheap": "Greetings and small talk.",
                "strong": "Writing code and algorithms.",
            },
            default="strong",
            threshold=0.6,
            **kwargs,
        )

    def router(self, models: Any) -> Any:
        return self.router_factory(models)

    def asked(self) -> int:
        return len(_decision_requests(self.emulator))


@pytest.fixture
def rig(
    emulator: WandbEmulator,
    router_factory: Callable[..., Any],
    decisions: Callable[..., WandbDecisions],
) -> Rig:
    return Rig(emulator, router_factory, decisions)


def _thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def _served(message: Any) -> str:
    return str(message.response_metadata["model_name"])


def test_selector_routes_and_asks_once_per_conversation(rig: Rig) -> None:
    chooser = rig.selector()
    router = rig.router(chooser)
    first = router.invoke("Greetings, some small talk?", _thread("a"))
    assert _served(first) == CHEAP
    reason = first.response_metadata["routing"]["reason"]
    assert reason == "decision: decided 'cheap' at confidence 0.80"
    # Later turns of the same conversation ask nothing, whatever they say.
    later = router.invoke("Now write code for an algorithm.", _thread("a"))
    assert _served(later) == CHEAP
    assert rig.asked() == 1
    assert later.response_metadata["routing"]["reason"] == (
        "decision: decided 'cheap' at confidence 0.80 (this conversation's decision)"
    )
    other = router.invoke("Now write code for an algorithm.", _thread("b"))
    assert _served(other) == STRONG
    assert rig.asked() == 2
    explained = chooser.explain([HumanMessage("x")], _thread("a"))
    assert explained == {
        "label": "cheap",
        "reason": "decided 'cheap' at confidence 0.80",
        "confidence": pytest.approx(0.8),
    }


def test_selector_without_thread_keys_on_the_opening_messages(rig: Rig) -> None:
    router = rig.router(rig.selector())
    opening = HumanMessage("Write code for an algorithm.")
    router.invoke([opening])
    router.invoke([opening, AIMessage("def f(): ..."), HumanMessage("Thanks!")])
    assert rig.asked() == 1


def test_selector_falls_back_below_threshold(rig: Rig) -> None:
    chooser = rig.selector()
    # No option's words in the message: 0.5 each, under the 0.6 threshold.
    reply = rig.router(chooser).invoke("Hmm.", _thread("t"))
    assert _served(reply) == STRONG
    explained = chooser.explain([], _thread("t"))
    assert explained is not None
    assert explained["label"] == "strong"
    assert "< threshold 0.60" in explained["reason"]


def test_selector_falls_back_when_the_decision_fails(rig: Rig) -> None:
    chooser = rig.selector()
    router = rig.router(chooser)
    rig.emulator.fault(status=500, model=DECIDER)
    failed = router.invoke("Greetings, some small talk?", _thread("f"))
    assert _served(failed) == STRONG
    assert chooser.explain([], _thread("f")) is None
    # A failure is not kept: the next turn asks again and is routed by it.
    again = router.invoke("Greetings, some small talk?", _thread("f"))
    assert _served(again) == CHEAP
    assert rig.asked() == 2


async def test_selector_async_path_asks_once(rig: Rig) -> None:
    router = rig.router(rig.selector().acall)
    first = await router.ainvoke("Write code for an algorithm.", _thread("x"))
    chunks = [c async for c in router.astream("And more code.", _thread("x"))]
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert _served(first) == _served(streamed) == STRONG
    assert rig.asked() == 1


async def test_sync_selector_also_serves_async_calls(rig: Rig) -> None:
    # The router calls it as a function: the decision's sync request runs on
    # the loop, once per conversation (README: pass selector.acall instead).
    router = rig.router(rig.selector())
    reply = await router.ainvoke("Greetings, some small talk?", _thread("s"))
    assert _served(reply) == CHEAP
    await router.ainvoke("More small talk.", _thread("s"))
    assert rig.asked() == 1


async def test_selector_failure_async(rig: Rig) -> None:
    rig.emulator.fault(status=503, model=DECIDER)
    reply = await rig.router(rig.selector().acall).ainvoke("Greetings!", _thread("y"))
    assert _served(reply) == STRONG


def test_selector_ttl_and_lru_bound(rig: Rig) -> None:
    now = [0.0]
    router = rig.router(rig.selector(cache_size=1, ttl_seconds=10.0, clock=lambda: now[0]))
    router.invoke("Greetings!", _thread("1"))
    router.invoke("Greetings!", _thread("1"))
    assert rig.asked() == 1
    now[0] = 11.0  # past the TTL: asked again
    router.invoke("Greetings!", _thread("1"))
    router.invoke("Greetings!", _thread("2"))  # evicts thread 1 (size 1)
    router.invoke("Greetings!", _thread("1"))
    assert rig.asked() == 4


@pytest.mark.parametrize(
    "settings",
    [
        {"choices": {}, "default": "a"},
        {"choices": {"a": CHEAP}, "default": "b"},
        {"choices": {"a": CHEAP}, "default": "a", "criteria": {"z": "?"}},
        {"choices": {"a": CHEAP}, "default": "a", "threshold": 1.5},
        {"choices": {"a": CHEAP}, "default": "a", "cache_size": 0},
    ],
)
def test_selector_settings_are_checked(
    decisions: Callable[..., WandbDecisions], settings: dict[str, Any]
) -> None:
    with pytest.raises(DecisionInputError):
        DecisionSelector(decisions=decisions(), **settings)
