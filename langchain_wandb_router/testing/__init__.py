"""A local W&B Inference emulator for tests, demos and benchmarks.

Use it in your own tests to exercise code built on ChatWandb or WandbRouter
without a key or a network:

.. code-block:: python

    from langchain_wandb_router import ChatWandb
    from langchain_wandb_router.testing import WandbEmulator

    with WandbEmulator() as emu:
        llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
                        api_key=emu.api_key, base_url=emu.base_url)
        assert llm.invoke("hi").content
"""

from langchain_wandb_router.testing._server import Fault, RecordedRequest, WandbEmulator

__all__ = ["Fault", "RecordedRequest", "WandbEmulator"]
