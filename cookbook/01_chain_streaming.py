"""A prompt | model | parser chain, streamed token by token.

Runs against W&B when WANDB_API_KEY is set, else against the bundled emulator.
"""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import offline_unless_key

with offline_unless_key():
    llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507", temperature=0.3)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a concise assistant."), ("user", "{question}")]
    )
    chain = prompt | llm | StrOutputParser()

    for piece in chain.stream({"question": "Tell me a story about a lighthouse."}):
        print(piece, end="", flush=True)
    print()

    # The Mastra page's agent example, in Python: generate, then stream.
    print(llm.invoke("Hello!").content)
    for chunk in llm.stream("Tell me a story"):
        print(chunk.text, end="", flush=True)
    print()
