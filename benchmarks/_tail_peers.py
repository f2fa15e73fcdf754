"""The contenders of ``benchmarks/tail.py``: how each one sends a timed chat call.

Each contender is built against an emulator (``_load_peers.Target``: its URL,
key, models in the user's order, and the concurrency cap) for one mode,
``invoke`` or ``stream``, and returns a coroutine that sends one call and
reports an :class:`Answer`: when it started, when its first chunk came (streams),
when it ended, which model served it and the usage it reported. Streams are
read to the end, usage included. The heavy imports (LangChain, LiteLLM) happen
inside the builders, so the emulator's process never pays for them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from _load_peers import RETRIES, Target, litellm_deployments, quiet_litellm

__all__ = ["Answer", "Peer", "TimedCall", "peers"]


@dataclass(frozen=True)
class Answer:
    """One successful call as the client saw it (``time.perf_counter`` readings).

    Attributes:
        start: When the call was sent.
        first: When its first chunk arrived (streams only).
        end: When the answer was complete.
        model: The model that served it, as the answer says.
        input_tokens: Prompt tokens reported.
        output_tokens: Completion tokens reported.
    """

    start: float
    first: float | None
    end: float
    model: str
    input_tokens: int
    output_tokens: int

    @property
    def seconds(self) -> float:
        """Time to first token for a stream, whole latency for an invoke."""
        return (self.first if self.first is not None else self.end) - self.start


TimedCall = Callable[[str], Awaitable[Answer]]
"""Send one chat call with this prompt; raise if it failed for good."""


@dataclass(frozen=True)
class Peer:
    """One way of sending the calls.

    Attributes:
        key: Short name for ``--contenders``.
        label: Name in the report.
        build: Makes the call coroutine for a target and a mode (``stream``).
        router: A WandbRouter row (the goals compare these with the others).
    """

    key: str
    label: str
    build: Callable[[Target, bool], TimedCall]
    router: bool = True


# ----------------------------------------------------------------- LangChain


def _langchain(runnable: Any, stream: bool) -> TimedCall:
    """Timed ``ainvoke``/``astream`` of a LangChain runnable of chat models."""

    async def invoke(prompt: str) -> Answer:
        start = time.perf_counter()
        message = await runnable.ainvoke(prompt)
        usage = message.usage_metadata or {}
        return Answer(
            start,
            None,
            time.perf_counter(),
            str(message.response_metadata.get("model_name", "")),
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
        )

    async def astream(prompt: str) -> Answer:
        start = time.perf_counter()
        first: float | None = None
        model, usage = "", dict[str, Any]()
        async for chunk in runnable.astream(prompt):
            if first is None:
                first = time.perf_counter()
            usage = chunk.usage_metadata or usage
            model = chunk.response_metadata.get("model_name") or model
        return Answer(
            start,
            first,
            time.perf_counter(),
            str(model),
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
        )

    return astream if stream else invoke


def _router(strategy: str, hedge: object) -> Callable[[Target, bool], TimedCall]:
    """A WandbRouter over the target's models, capped at the emulator's cap.

    ``hedge`` is passed as is: ``False``, ``True`` or a ``Hedge``.
    """

    def build(target: Target, stream: bool) -> TimedCall:
        from langchain_wandb_router import WandbRouter

        router = WandbRouter(
            models=list(target.models),
            api_key=target.api_key,
            base_url=target.base_url,
            strategy=strategy,
            hedge=hedge,
            max_in_flight=target.cap,
        )
        return _langchain(router, stream)

    return build


def _chat_openai(target: Target, stream: bool) -> TimedCall:
    """ChatOpenAI per model, chained with fallbacks (they only act on errors)."""
    from langchain_openai import ChatOpenAI

    first, *rest = (
        ChatOpenAI(
            model=model,
            api_key=target.api_key,
            base_url=target.base_url,
            max_retries=RETRIES,
            stream_usage=True,
        )
        for model in target.models
    )
    return _langchain(first.with_fallbacks(rest), stream)


# ------------------------------------------------------------------- LiteLLM


def _litellm_latency(target: Target, stream: bool) -> TimedCall:
    """LiteLLM's Router with ``routing_strategy="latency-based-routing"``.

    One group of deployments, one per model; LiteLLM ranks them by recent
    latency (time to first token for streams).
    """
    litellm = quiet_litellm()
    router = litellm.Router(
        model_list=litellm_deployments(target, capped=False),
        routing_strategy="latency-based-routing",
        num_retries=RETRIES,
    )

    async def call(prompt: str) -> Answer:
        start = time.perf_counter()
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            reply = await router.acompletion(model="bench", messages=messages)
            end, usage, model = time.perf_counter(), reply.usage, reply.model
        else:
            first: float | None = None
            usage, model = None, ""
            chunks = await router.acompletion(
                model="bench",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in chunks:
                if first is None:
                    first = time.perf_counter()
                usage = getattr(chunk, "usage", None) or usage
                model = chunk.model or model
            end = time.perf_counter()
        return Answer(
            start,
            first if stream else None,
            end,
            _served(str(model or ""), target.models),
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        )

    return call


def _served(name: str, models: tuple[str, ...]) -> str:
    """The target's model id that LiteLLM's ``model`` names (it may drop the vendor)."""
    for model in models:
        if name in (model, f"openai/{model}") or model.endswith(f"/{name}"):
            return model
    return name


def peers(hedge: object = True) -> tuple[Peer, ...]:
    """Every contender, in report order; hedged rows get ``hedge``."""
    shown = "True" if hedge is True else repr(hedge)
    return (
        Peer("ordered", 'WandbRouter `"ordered"`', _router("ordered", False)),
        Peer("latency", 'WandbRouter `"latency"`', _router("latency", False)),
        Peer("least_busy", 'WandbRouter `"least_busy"`', _router("least_busy", False)),
        Peer("weighted", 'WandbRouter `"weighted"`', _router("weighted", False)),
        Peer(
            "ordered+hedge",
            f'WandbRouter `"ordered"`, `hedge={shown}`',
            _router("ordered", hedge),
        ),
        Peer(
            "latency+hedge",
            f'WandbRouter `"latency"`, `hedge={shown}`',
            _router("latency", hedge),
        ),
        Peer(
            "litellm",
            'LiteLLM `Router(routing_strategy="latency-based-routing")`',
            _litellm_latency,
            router=False,
        ),
        Peer(
            "chatopenai",
            f"`ChatOpenAI(max_retries={RETRIES}).with_fallbacks(...)`",
            _chat_openai,
            router=False,
        ),
    )
