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

import threading

from langchain_wandb_router.testing._server import Fault, RecordedRequest, WandbEmulator

__all__ = ["Fault", "RecordedRequest", "WandbEmulator", "shared_emulator"]

_shared: WandbEmulator | None = None
_shared_lock = threading.Lock()


def shared_emulator() -> WandbEmulator:
    """One emulator for the whole process, started on first use.

    Handy where a fixture cannot reach, such as the class properties of
    langchain-tests' standard suites. It lives until the process exits; do not
    script faults on it from tests that may run in parallel.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WandbEmulator().start()
        return _shared
