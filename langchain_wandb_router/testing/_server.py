"""WandbEmulator: a local HTTP server that speaks W&B Inference's wire.

The emulator's API and state (models, faults, forced replies, the record of
requests); its load controls (caps, service time, latency, outages) are
``_pressure``'s; the HTTP side is ``_handler``, the bodies on the wire
``_bodies``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from langchain_wandb_router.catalog._models import ModelInfo, list_models
from langchain_wandb_router.testing._cache import (
    CacheSettings,
    PrefixCache,
    PrefixCacheControls,
)
from langchain_wandb_router.testing._handler import make_server
from langchain_wandb_router.testing._latency import (
    LatencySetting,
    LatencyState,
)
from langchain_wandb_router.testing._load import (
    DEFAULT_PROJECT,
    ConcurrencyLimit,
    LoadState,
    ServiceTime,
)
from langchain_wandb_router.testing._pressure import PressureControls
from langchain_wandb_router.testing._responder import Reply, build_reply
from langchain_wandb_router.testing._types import Fault, Forced, RecordedRequest

__all__ = ["WandbEmulator"]


class WandbEmulator(PressureControls, PrefixCacheControls):
    """A W&B Inference look-alike on 127.0.0.1, for tests, demos and benchmarks.

    It checks the bearer key and ``OpenAI-Project`` like W&B, serves
    ``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON and SSE), puts
    reasoning in ``reasoning`` (current) or ``reasoning_content`` (2025), sends
    tool calls as fragments, closes streams with a usage chunk whose
    ``choices`` is empty, honours ``response_format``, ``stop``,
    ``max_tokens``, ``n`` and ``logprobs``/``top_logprobs``, answers tool
    results (so agents, ``ToolStrategy`` ones included, end), ignores query
    strings when routing, answers 404 for unknown or retired models, and
    misbehaves on request (:meth:`fault`, :meth:`chaos`). Replies are
    deterministic.

    For load and routing tests it also behaves like W&B under pressure: a cap
    on requests in flight per ``(project, model)`` answered with W&B's 429
    (:meth:`set_concurrency_limit`), a service time that holds each request in
    flight (:meth:`set_service_time`), seeded per-model latency: time to
    first token, time per token and a heavy tail (:meth:`set_latency`),
    outages that last a while (:meth:`outage`), and counters of it all
    (:meth:`stats`).

    Like W&B it caches prompt prefixes per ``(model, cache_salt)`` on models
    with a cache-read price and reports reuse in
    ``usage.prompt_tokens_details.cached_tokens``, in whole blocks, forgotten
    after a TTL (:meth:`set_prefix_cache`, :meth:`cache_lookups`).

    A chat request goes through these steps, stopping at the first answer: key
    and project check (401), body check (422), ``n``/``logprobs``/``cache_salt``
    check (400),
    the concurrency cap (429, at once), an outage (its status, at once), a
    scripted :class:`Fault`, the model lookup (404), the service time, then
    the reply, paced by the model's :class:`Latency` if it has one.

    Example:
        .. code-block:: python

            with WandbEmulator() as emu:
                llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507",
                                api_key=emu.api_key, base_url=emu.base_url)
                emu.fault(status=503, times=1)  # the next call fails once
                llm.invoke("hi")                # ...and the retry succeeds

        Under load:

        .. code-block:: python

            with WandbEmulator(concurrency_limit=3, service_time=0.2) as emu:
                ...  # 10 calls at once: 3 are admitted, the rest get W&B's 429
                stats = emu.stats()
                assert stats.peak_in_flight_by_model[model] <= 3
                assert stats.rejected_by_model[model] == stats.responses[429]
    """

    def __init__(
        self,
        *,
        api_key: str = "emulator-key-0123456789abcdef0123456789abcdef",
        projects: Iterable[str] | None = None,
        reasoning_field: Literal["reasoning", "reasoning_content"] = "reasoning",
        extra_models: Iterable[ModelInfo | str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        concurrency_limit: ConcurrencyLimit = None,
        service_time: ServiceTime = 0.0,
        rate_limit_retry_after: float | None = None,
        default_project: str = DEFAULT_PROJECT,
        latency: LatencySetting = None,
        latency_seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        prefix_cache: bool | CacheSettings = True,
    ) -> None:
        """Create an emulator (call :meth:`start` or use it as a context manager).

        Args:
            api_key: The only bearer key accepted.
            projects: If given, the only ``OpenAI-Project`` values accepted.
            reasoning_field: Where reasoning goes: ``reasoning`` as W&B does
                now, or ``reasoning_content`` as it did in 2025.
            extra_models: More models to serve (LoRA ids, new models).
            host: Interface to bind; loopback by default.
            port: Port to bind; 0 picks a free one.
            concurrency_limit: Most chat requests in flight per
                ``(project, model)``: one cap for every model, a mapping of
                model id to cap (``"*"`` for the others), or ``None`` for no
                cap. See :meth:`set_concurrency_limit`.
            service_time: Seconds each chat request is held before its reply:
                one figure, or a mapping of model id to seconds (``"*"`` for
                the others). See :meth:`set_service_time`.
            rate_limit_retry_after: If set, cap 429s carry ``Retry-After``
                with this many seconds. W&B documents none, so off by default.
                The attribute of the same name can be changed at any time.
            default_project: The project counted for requests without an
                ``OpenAI-Project`` header (W&B uses the key's default entity
                and a project named ``inference``).
            latency: Time to first token and per token: one
                :class:`Latency` for every model, a mapping of model id to
                latency (``"*"`` for the others), or ``None`` to answer at
                once. See :meth:`set_latency`.
            latency_seed: The seed the latency draws start from.
            clock: Monotonic seconds; outages and the prefix cache's TTL are
                timed on it (inject a fake clock to end them without waiting).
            sleep: How the service time is waited out, in the handling thread
                (inject a function that blocks on an event to hold requests in
                flight for as long as a test needs).
            prefix_cache: Cache prompt prefixes and report reuse: ``True``
                (the defaults of :class:`CacheSettings`), ``False``, or the
                settings. See :meth:`set_prefix_cache`.
        """
        self.api_key = api_key
        self.projects = set(projects) if projects is not None else None
        self.reasoning_field = reasoning_field
        # A fixed cached_tokens for every reply, overriding the prefix cache.
        self.cached_tokens = 0
        self.live_models: list[str] | None = None
        self.models_by_id: dict[str, ModelInfo] = {
            m.id: m for m in list_models(include_retired=False)
        }
        for extra in extra_models:
            info = extra if isinstance(extra, ModelInfo) else ModelInfo(id=extra)
            self.models_by_id[info.id] = info
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._forced: list[Forced] = []
        self._chaos: tuple[float, tuple[int, ...], random.Random, str] | None = None
        self._requests: list[RecordedRequest] = []
        self._counter = 0
        self.rate_limit_retry_after = rate_limit_retry_after
        self.default_project = default_project
        self._clock = clock
        self.sleep_for = sleep
        self.load = LoadState(concurrency_limit, service_time, clock)
        self.latency = LatencyState(latency, latency_seed)
        if not isinstance(prefix_cache, CacheSettings):
            prefix_cache = CacheSettings(enabled=prefix_cache)
        self.prefix_cache = PrefixCache(prefix_cache, clock)
        self._server = make_server((host, port), self)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The base URL to give ChatWandb/WandbRouter (``…/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> WandbEmulator:
        """Serve in a background thread."""
        if self._thread is None:
            # A short poll interval makes stop() quick; tests start many emulators.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="wandb-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WandbEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- scripting

    def fault(self, **kwargs: Any) -> Fault:
        """Queue a :class:`Fault` (same keyword arguments); returns it."""
        fault = Fault(**kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def chaos(
        self,
        rate: float,
        statuses: Iterable[int] = (429, 500, 503),
        *,
        seed: int = 0,
        model: str = "*",
    ) -> None:
        """Fail a seeded-random ``rate`` of requests with one of ``statuses``."""
        with self._lock:
            self._chaos = (rate, tuple(statuses), random.Random(seed), model)  # noqa: S311

    def respond_with(
        self,
        *,
        content: str | None = None,
        reasoning: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        times: int | None = 1,
        model: str = "*",
    ) -> None:
        """Force the next reply(s); ``tool_calls`` items are ``{"name", "arguments"}``.

        ``arguments`` is sent verbatim, so invalid JSON can be scripted.
        """
        with self._lock:
            self._forced.append(Forced(content, reasoning, tool_calls, times, model))

    def add_model(self, info: ModelInfo | str) -> None:
        """Serve one more model id."""
        info = info if isinstance(info, ModelInfo) else ModelInfo(id=info)
        with self._lock:
            self.models_by_id[info.id] = info

    def remove_model(self, model_id: str) -> None:
        """Stop serving ``model_id`` (it answers 404 from now on)."""
        with self._lock:
            self.models_by_id.pop(model_id, None)

    def reset(self) -> None:
        """Forget faults, forced replies, chaos, outages and recorded requests.

        Load counters start again: counts go to zero and peaks to what is in
        flight now. Caps, service times, latencies and the prefix cache's
        setting stay; latency draws are forgotten and start again from their
        seeds, and the prefix cache is emptied.
        """
        with self._lock:
            self._faults.clear()
            self._forced.clear()
            self._chaos = None
            self._requests.clear()
        self.load.reset()
        self.latency.reset()
        self.prefix_cache.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """Only the chat-completions requests."""
        return [
            r
            for r in self.requests
            if urlsplit(r.path).path.endswith("/chat/completions")
        ]

    # -------------------------------------------------------------- internals

    def take_fault(self, model: str | None) -> Fault | None:
        with self._lock:
            fault = _take_first(self._faults, model)
            if fault is None and self._chaos is not None:
                rate, statuses, rng, target = self._chaos
                if target in ("*", model) and rng.random() < rate:
                    return Fault(status=rng.choice(statuses))
        return fault

    def _take_forced(self, model: str) -> Forced | None:
        with self._lock:
            return _take_first(self._forced, model)

    def record_request(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            self._counter += 1
            return self._counter

    def _reasoning_on(self, info: ModelInfo, body: dict[str, Any]) -> bool:
        toggle = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
        if info.reasoning == "always":
            return True
        if info.reasoning == "default_on":
            return toggle is not False
        if info.reasoning == "default_off":
            return toggle is True
        return False

    def reply_for(self, info: ModelInfo, body: dict[str, Any], n: int) -> Reply:
        reply = build_reply(body, self._reasoning_on(info, body), f"call_{n:06d}")
        forced = self._take_forced(info.id)
        if forced is not None:
            if forced.content is not None:
                reply.content, reply.finish_reason = forced.content, "stop"
            if forced.reasoning is not None:
                reply.reasoning = forced.reasoning
            if forced.tool_calls is not None:
                reply.content = ""
                reply.tool_calls = [
                    {
                        "id": f"call_{n:06d}_{i}",
                        "type": "function",
                        "function": {"name": tc["name"], "arguments": tc["arguments"]},
                    }
                    for i, tc in enumerate(forced.tool_calls)
                ]
                reply.finish_reason = "tool_calls"
            reply.completion_tokens = max(1, (len(reply.content) + 3) // 4)
        return reply


_Queued = TypeVar("_Queued", Fault, Forced)


def _take_first(queue: list[_Queued], model: str | None) -> _Queued | None:
    """The first scripted item for ``model``, counting one use off its ``times``.

    Call with the emulator's lock held.
    """
    for item in queue:
        if item.model in ("*", model):
            if item.times is not None:
                item.times -= 1
                if item.times <= 0:
                    queue.remove(item)
            return item
    return None
