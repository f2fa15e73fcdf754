"""Fallbacks with one retry loop, the routing record, and what it all cost."""

from langchain_wandb_router import Route, WandbRouter, get_wandb_cost_callback
from langchain_wandb_router.testing import offline_unless_key

with offline_unless_key() as emulator:
    if emulator is not None:
        # Offline: make the first model overloaded, as W&B sometimes is.
        emulator.fault(status=503, times=None, model="openai/gpt-oss-120b")
    router = WandbRouter(
        models=[
            Route("wandb/openai/gpt-oss-120b", max_retries=1),
            "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
            "wandb/deepseek-ai/DeepSeek-V3.1",
        ],
        budget_usd=1.00,
    )
    with get_wandb_cost_callback() as cost:
        msg = router.invoke("Summarise the water cycle in one line.")
        routing = msg.response_metadata["routing"]
        print("served by:", routing["model"], "-", routing["reason"])
        for attempt in routing["attempts"]:
            print(f"  {attempt['model']}: {attempt['error'] or 'ok'}")
        for chunk in router.stream("And the carbon cycle?"):
            print(chunk.text, end="", flush=True)
        print()
    print(cost)
    print(f"router spent ${router.spent_usd:.6f} of its $1.00 budget")
