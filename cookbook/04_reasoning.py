"""A reasoning model: the thinking arrives separately from the answer."""

from langchain_wandb_router import ChatWandb
from langchain_wandb_router.testing import offline_unless_key

with offline_unless_key():
    thinker = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Thinking-2507")
    msg = thinker.invoke("Is 9.11 larger than 9.9?")
    print("reasoning:", msg.additional_kwargs.get("reasoning_content"))
    print("answer:   ", msg.text)
    print("blocks:   ", [block["type"] for block in msg.content_blocks])

    # Models that think by default can be told not to.
    quick = ChatWandb(model="wandb/zai-org/GLM-5.1", enable_thinking=False)
    print(
        "GLM without thinking:",
        "reasoning_content" in quick.invoke("Hi").additional_kwargs,
    )
