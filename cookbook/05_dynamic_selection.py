"""Pick the model per call from the runtime context (the Mastra page's example)."""

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.testing import offline_unless_key

with offline_unless_key():
    router = WandbRouter(
        models=lambda ctx: (
            "wandb/moonshotai/Kimi-K2.5"
            if ctx.get("task") == "complex"
            else "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
        )
    )
    for task in ("simple", "complex"):
        msg = router.invoke(
            "Plan a three-city trip.", config={"configurable": {"task": task}}
        )
        print(f"{task:>7}: {msg.response_metadata['model_name']}")

    # Force a model for one call.
    forced = router.invoke(
        "hi", config={"configurable": {"wandb_model": "wandb/openai/gpt-oss-120b"}}
    )
    print(" forced:", forced.response_metadata["model_name"])

    # Custom URL and headers, as in the Mastra page's advanced example.
    from langchain_wandb_router import ChatWandb

    custom = ChatWandb(
        model="Qwen/Qwen3-235B-A22B-Instruct-2507",
        default_headers={"X-Custom-Header": "value"},
    )
    print(" custom:", custom.invoke("hi").response_metadata["model_name"])
