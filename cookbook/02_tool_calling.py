"""Tool calling: the model asks for a tool, we run it, the model answers."""

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import offline_unless_key


@tool
def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"It is 21°C and sunny in {location}."


with offline_unless_key():
    llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507").bind_tools(
        [get_weather]
    )
    messages = [HumanMessage("What is the weather in Paris?")]
    ai = llm.invoke(messages)
    messages.append(ai)
    for call in ai.tool_calls:
        print(f"model asked for {call['name']}({call['args']})")
        messages.append(get_weather.invoke(call))
    print(llm.invoke(messages).content)
