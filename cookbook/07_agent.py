"""An agent whose model is chosen per call: create_agent and a LangGraph graph.

Needs the agents extra: pip install "langchain-wandb-router[agents]".
"""

from dataclasses import dataclass

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.middleware import WandbRoutingMiddleware
from langchain_wandb_router.testing import offline_unless_key


@tool
def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"It is 21°C and sunny in {location}."


@dataclass
class Context:
    task: str = "simple"


def choose(ctx):
    if ctx.get("task") == "complex":
        return "wandb/moonshotai/Kimi-K2.5"
    return [
        "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
        "wandb/deepseek-ai/DeepSeek-V3.1",
    ]


with offline_unless_key():
    agent = create_agent(
        model=WandbRouter(models=choose),
        tools=[get_weather],
        system_prompt="You are a helpful assistant.",
        context_schema=Context,
    )
    result = agent.invoke(
        {"messages": [("user", "What is the weather in Lisbon?")]},
        context=Context(task="complex"),
    )
    for message in result["messages"]:
        model = message.response_metadata.get("model_name", "")
        print(f"{message.type:>6} {model:<36} {message.text[:60]}")

    # The same choice made by middleware, which also sees the agent's state.
    def by_state(ctx):
        done_tools = any(m.type == "tool" for m in ctx.state["messages"])
        return (
            "wandb/openai/gpt-oss-120b"
            if done_tools
            else "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
        )

    agent = create_agent(
        model=WandbRouter(models="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"),
        tools=[get_weather],
        middleware=[WandbRoutingMiddleware(by_state)],
    )
    result = agent.invoke({"messages": [("user", "What is the weather in Oslo?")]})
    print(
        [
            m.response_metadata["model_name"]
            for m in result["messages"]
            if m.type == "ai"
        ]
    )
