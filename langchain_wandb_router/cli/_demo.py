"""``wandb-router demo``: a tour of the package, offline without a key.

Without ``WANDB_API_KEY`` it runs against the bundled emulator
(:func:`~langchain_wandb_router.testing.offline_unless_key`), so ``make demo``
needs no network: a streamed chain, tool calling, structured output, routing
by context, a fallback and the cost of it all.
"""

from __future__ import annotations

import argparse
import json
import sys

from langchain_wandb_router.cli._common import DEFAULT_MODEL, Style

__all__ = ["cmd_demo"]


def cmd_demo(args: argparse.Namespace) -> int:
    """A tour: streamed chain, tools, structured output, routing, fallback, cost."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.tools import tool
    from pydantic import BaseModel, Field

    from langchain_wandb_router import ChatWandb, WandbRouter, get_wandb_cost_callback
    from langchain_wandb_router.testing import offline_unless_key

    style = Style(sys.stdout)

    def section(title: str) -> None:
        print("\n" + style.bold(f"== {title} =="))

    @tool
    def get_weather(location: str) -> str:
        """Get the current weather for a location."""
        return f"It is 21°C and sunny in {location}."

    class Joke(BaseModel):
        """A joke."""

        setup: str = Field(description="the question")
        punchline: str = Field(description="the answer")

    with offline_unless_key() as emu, get_wandb_cost_callback() as cost:
        where = (
            "W&B Inference (WANDB_API_KEY is set)"
            if emu is None
            else f"the bundled W&B emulator at {emu.base_url} "
            "(set WANDB_API_KEY to use W&B)"
        )
        print(f"langchain-wandb-router demo against {where}")
        llm = ChatWandb(model=DEFAULT_MODEL, project=args.project)  # type: ignore[call-arg]

        section("1. A streamed chain (prompt | ChatWandb | parser)")
        chain = (
            ChatPromptTemplate.from_messages(
                [("system", "Answer in one sentence."), ("user", "{q}")]
            )
            | llm
            | StrOutputParser()
        )
        for piece in chain.stream({"q": "What is W&B Inference?"}):
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()

        section("2. Tool calling")
        call = llm.bind_tools([get_weather]).invoke("What is the weather in Tokyo?")
        for tc in call.tool_calls:
            print(
                f"tool call: {tc['name']}({json.dumps(tc['args'], ensure_ascii=False)})"
            )
            print(f"tool result: {get_weather.invoke(tc['args'])}")

        section("3. Structured output")
        joke = llm.with_structured_output(Joke).invoke("Tell me a joke about cats.")
        print(repr(joke))

        section("4. Dynamic routing by context (the Mastra example)")
        router = WandbRouter(
            models=lambda ctx: (
                "wandb/moonshotai/Kimi-K2.5"
                if ctx.get("task") == "complex"
                else "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
            ),
            project=args.project,
        )
        for task in ("simple", "complex"):
            msg = router.invoke(
                "Say hi in five words.", config={"configurable": {"task": task}}
            )
            reasoning = msg.additional_kwargs.get("reasoning_content")
            extra = f" (thought first: {len(reasoning)} chars)" if reasoning else ""
            print(
                f"task={task:<7} -> served by "
                f"{msg.response_metadata['model_name']}{extra}"
            )

        section("5. A fallback")
        fallback = WandbRouter(
            models=["wandb/acme/model-that-does-not-exist", DEFAULT_MODEL],
            project=args.project,
        )
        msg = fallback.invoke("Say hello.")
        routing = msg.response_metadata["routing"]
        for attempt in routing["attempts"]:
            print(f"  tried {attempt['model']}: {attempt['error'] or 'ok'}")
        print(f"served by {routing['model']}: {msg.text}")

        section("6. Cost")
        for model, usd in sorted(cost.cost_by_model.items()):
            print(f"  {model:<45} {'unknown' if usd is None else f'${usd:.6f}'}")
        print(
            f"  total: ${cost.total_cost_usd:.6f} over {cost.calls} calls, "
            f"{cost.input_tokens} input / {cost.output_tokens} output tokens"
        )
    return 0
