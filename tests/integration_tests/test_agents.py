"""The router in real agents: create_agent tool loops and a hand-built LangGraph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from typing_extensions import TypedDict

from langchain_wandb_router import ChatWandb, RetryPolicy, RoutingContext, WandbRouter
from langchain_wandb_router.router.middleware import WandbRoutingMiddleware
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
KIMI = "moonshotai/Kimi-K2.5"
GPT_OSS = "openai/gpt-oss-120b"


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


@dataclass
class Ctx:
    task: str = "simple"


def pick(ctx: RoutingContext) -> str:
    return f"wandb/{KIMI}" if ctx.get("task") == "complex" else f"wandb/{QWEN}"


def _check_loop(messages: list[AnyMessage], model: str) -> None:
    kinds = [type(m) for m in messages]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    call, result, final = messages[1], messages[2], messages[3]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["args"] == {"location": "Paris"}
    assert result.content == "It is sunny in Paris."
    assert "It is sunny in Paris." in str(final.content)
    assert call.response_metadata["model_name"] == model
    assert final.response_metadata["model_name"] == model


@pytest.fixture
def creds(emulator: WandbEmulator) -> dict[str, Any]:
    return {"api_key": emulator.api_key, "base_url": emulator.base_url}


@pytest.mark.parametrize(("task", "model"), [("complex", KIMI), ("simple", QWEN)])
def test_create_agent_tool_loop_with_context_selection(creds: dict[str, Any], task: str, model: str) -> None:
    agent = create_agent(model=WandbRouter(models=pick, **creds), tools=[get_weather], context_schema=Ctx)
    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, context=Ctx(task=task))
    _check_loop(out["messages"], model)


async def test_create_agent_async_tool_loop(creds: dict[str, Any]) -> None:
    agent = create_agent(model=WandbRouter(models=pick, **creds), tools=[get_weather], context_schema=Ctx)
    out = await agent.ainvoke({"messages": [HumanMessage("What is the weather in Paris?")]}, context=Ctx(task="complex"))
    _check_loop(out["messages"], KIMI)


def test_create_agent_falls_back_mid_loop(
    emulator: WandbEmulator, creds: dict[str, Any], retry_policy: RetryPolicy
) -> None:
    router = WandbRouter(models=[QWEN, GPT_OSS], cooldown_failures=1, retry_policy=retry_policy, **creds)
    agent = create_agent(model=router, tools=[get_weather])
    emulator.fault(status=503, times=None, model=QWEN)  # the first model call falls back
    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    ai = [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert ai[0].response_metadata["model_name"] == GPT_OSS
    assert ai[0].tool_calls[0]["name"] == "get_weather"
    # QWEN's failure put it in cooldown: the next call asks GPT_OSS first.
    assert ai[1].response_metadata["model_name"] == GPT_OSS
    assert "cooling down" in ai[1].response_metadata["routing"]["excluded"][QWEN]
    assert [r.model for r in emulator.chat_requests()] == [QWEN, GPT_OSS, GPT_OSS]


def test_middleware_chooses_per_model_call_from_state(creds: dict[str, Any]) -> None:
    def by_state(ctx: RoutingContext) -> str:
        # First call: a fast model; once a tool result is in, a reasoning model.
        return GPT_OSS if any(m.type == "tool" for m in ctx.state["messages"]) else QWEN

    agent = create_agent(
        model=ChatWandb(model="meta-llama/Llama-3.1-8B-Instruct", **creds),
        tools=[get_weather],
        middleware=[WandbRoutingMiddleware(by_state, **creds)],
    )
    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    ai = [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert [m.response_metadata["model_name"] for m in ai] == [QWEN, GPT_OSS]


async def test_middleware_async_with_context(creds: dict[str, Any]) -> None:
    router = WandbRouter(models=pick, **creds)
    agent = create_agent(
        model=ChatWandb(model="meta-llama/Llama-3.1-8B-Instruct", **creds),
        tools=[get_weather],
        context_schema=Ctx,
        middleware=[WandbRoutingMiddleware(router)],
    )
    out = await agent.ainvoke({"messages": [HumanMessage("What is the weather in Paris?")]}, context=Ctx(task="complex"))
    _check_loop(out["messages"], KIMI)


def test_middleware_rejects_router_kwargs_with_a_router(creds: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        WandbRoutingMiddleware(WandbRouter(models=QWEN, **creds), max_retries=1)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _graph(router: WandbRouter) -> Any:
    model = router.bind_tools([get_weather])

    def agent_node(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(State, context_schema=Ctx)
    graph.add_node("agent", agent_node)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    graph.add_edge("agent", END)
    return graph.compile()


def test_router_as_node_model_in_a_state_graph(creds: dict[str, Any]) -> None:
    app = _graph(WandbRouter(models=pick, **creds))
    out = app.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, context=Ctx(task="complex"))
    _check_loop(out["messages"], KIMI)
    out = app.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, context=Ctx())
    _check_loop(out["messages"], QWEN)


def _selector(ctx: RoutingContext) -> str:
    return KIMI if ctx.get("task") == "complex" else QWEN


def test_selector_router_profile_serves_agent_structured_output(creds: dict[str, Any]) -> None:
    from pydantic import BaseModel

    class Weather(BaseModel):
        location: str
        forecast: str

    router = WandbRouter(models=_selector, candidates=[QWEN, KIMI], **creds)
    assert router.profile is not None and router.profile["structured_output"] is True
    agent = create_agent(model=router, tools=[], response_format=Weather)
    out = agent.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    assert isinstance(out["structured_response"], Weather)


def test_selector_router_profile_serves_fractional_summarization(creds: dict[str, Any]) -> None:
    from langchain.agents.middleware import SummarizationMiddleware

    router = WandbRouter(models=_selector, candidates=[QWEN, KIMI], **creds)
    # Fractional limits need the model's max_input_tokens: the profile has it.
    middleware = SummarizationMiddleware(model=router, trigger=("fraction", 0.8))
    agent = create_agent(model=router, tools=[get_weather], middleware=[middleware])
    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    assert out["messages"][-1].response_metadata["model_name"] == QWEN
