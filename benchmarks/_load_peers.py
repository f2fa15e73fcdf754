"""The contenders of ``benchmarks/load.py``: how each one sends a chat call.

Every contender is built against the same emulator (its base URL and key, the
models it serves and their concurrency cap) and exposes one coroutine that
sends one chat call and returns when it has succeeded or failed for good. The
heavy imports (LangChain, LiteLLM) happen inside the builders, so the
emulator's process, which imports ``benchmarks/load.py`` to start, never pays
for them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENDERS",
    "Call",
    "Contender",
    "Target",
    "litellm_missing",
]

Call = Callable[[str], Awaitable[object]]
"""Send one chat call with this prompt; raise if it failed for good."""

RETRIES = 2
"""Retries per model for every contender that takes the figure (3 requests)."""


@dataclass(frozen=True)
class Target:
    """The emulator a contender talks to.

    Attributes:
        base_url: The emulator's ``…/v1`` URL.
        api_key: The only key the emulator accepts.
        models: The bare model ids to spread calls over, preferred first.
        cap: The emulator's concurrency cap per model (requests in flight).
    """

    base_url: str
    api_key: str
    models: tuple[str, ...]
    cap: int


@dataclass(frozen=True)
class Contender:
    """One way of sending the calls.

    Attributes:
        key: Short name for ``--contenders``.
        label: Name in the report (``{cap}`` is replaced by the cap).
        build: Makes the call coroutine for a target (a fresh client).
    """

    key: str
    label: str
    build: Callable[[Target], Call]

    def title(self, cap: int) -> str:
        """The label with the cap filled in."""
        return self.label.format(cap=cap)


def _router(target: Target, *, capped: bool) -> Call:
    """WandbRouter over every model, with its defaults or a hard cap per model."""
    from langchain_wandb_router import WandbRouter

    extra: dict[str, Any] = {"max_in_flight": target.cap} if capped else {}
    router = WandbRouter(
        models=list(target.models),
        api_key=target.api_key,
        base_url=target.base_url,
        **extra,
    )
    return router.ainvoke


def _router_defaults(target: Target) -> Call:
    return _router(target, capped=False)


def _router_capped(target: Target) -> Call:
    return _router(target, capped=True)


def _chat_openai(target: Target) -> Call:
    """What users write today: ChatOpenAI per model, chained with fallbacks.

    The openai SDK retries 429s itself (``max_retries``), with its own
    backoff; ``with_fallbacks`` moves to the next model once they are spent.
    """
    from langchain_openai import ChatOpenAI

    def one(model: str) -> ChatOpenAI:
        return ChatOpenAI(
            model=model,
            api_key=target.api_key,
            base_url=target.base_url,
            max_retries=RETRIES,
        )

    first, *rest = target.models
    chain = one(first).with_fallbacks([one(m) for m in rest]) if rest else one(first)
    return chain.ainvoke


def litellm_missing() -> str | None:
    """Why LiteLLM cannot run here, or ``None`` if it is installed."""
    if importlib.util.find_spec("litellm") is None:
        return "LiteLLM is not installed in this interpreter"
    return None


def quiet_litellm() -> Any:
    """LiteLLM imported offline and quiet (shared by the load and tail benchmarks)."""
    # LiteLLM fetches a price list from GitHub at import unless told not to;
    # the benchmark runs offline.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # type: ignore[import-not-found, unused-ignore]

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def litellm_deployments(target: Target, *, capped: bool) -> list[dict[str, Any]]:
    """One LiteLLM deployment per model of ``target``, in one group ("bench")."""
    return [
        {
            "model_name": "bench",
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": target.base_url,
                "api_key": target.api_key,
                **({"max_parallel_requests": target.cap} if capped else {}),
            },
        }
        for model in target.models
    ]


def _litellm(target: Target, *, capped: bool) -> Call:
    """LiteLLM's Router: one group of deployments, one per model.

    Load balancing over one group is LiteLLM's best case here (calls spread
    over every model from the start). With ``capped``, each deployment gets
    ``max_parallel_requests`` (LiteLLM's own cap on requests in flight);
    without, LiteLLM relies on its retries of W&B's 429s.
    """
    litellm = quiet_litellm()
    deployments = litellm_deployments(target, capped=capped)
    router = litellm.Router(model_list=deployments, num_retries=RETRIES)

    async def call(prompt: str) -> object:
        return await router.acompletion(
            model="bench", messages=[{"role": "user", "content": prompt}]
        )

    return call


def _litellm_capped(target: Target) -> Call:
    return _litellm(target, capped=True)


def _litellm_uncapped(target: Target) -> Call:
    return _litellm(target, capped=False)


CONTENDERS: tuple[Contender, ...] = (
    Contender("router", "WandbRouter (defaults)", _router_defaults),
    Contender("router-capped", "WandbRouter (max_in_flight={cap})", _router_capped),
    Contender(
        "chatopenai",
        f"ChatOpenAI(max_retries={RETRIES}).with_fallbacks",
        _chat_openai,
    ),
    Contender(
        "litellm", "LiteLLM Router (max_parallel_requests={cap})", _litellm_capped
    ),
    Contender(
        "litellm-uncapped",
        f"LiteLLM Router (num_retries={RETRIES}, no cap)",
        _litellm_uncapped,
    ),
)
"""Every contender, in report order."""
