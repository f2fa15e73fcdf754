"""Structured output: a pydantic object back, not text."""

from pydantic import BaseModel, Field

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import offline_unless_key


class Joke(BaseModel):
    """A joke with its punchline."""

    setup: str = Field(description="the question")
    punchline: str = Field(description="the answer")


with offline_unless_key():
    llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")
    joke = llm.with_structured_output(Joke).invoke("Tell me a joke about cats.")
    print(type(joke).__name__, joke.setup, "/", joke.punchline)

    # include_raw keeps the model's message even if parsing fails.
    result = llm.with_structured_output(Joke, include_raw=True).invoke(
        "A joke about dogs."
    )
    print(result["parsed"], result["parsing_error"])
