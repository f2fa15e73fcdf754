"""DecisionSelector: a WandbRouter model selector that asks a decision model.

Cheap-vs-strong routing: a ``Choice`` over labels, asked once per conversation
(cached under :func:`~langchain_wandb_router.router._affinity.conversation_key`
in a bounded in-process LRU with a TTL), with a confidence threshold and a
default label for failures and doubt. The cache is per process; a cache shared
by a fleet would live in ``RouterState``.

Needs ``langchain_core.decisions``; imported only when ``DecisionSelector`` is
used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import JsonValue

from langchain_wandb_router.errors import DecisionInputError

# Through _decisions: its ImportError says what to upgrade on an old langchain-core.
from langchain_wandb_router.integrations._decisions import (
    BaseDecisionModel,
    Choice,
    ClassifierResponse,
)
from langchain_wandb_router.router._affinity import conversation_key
from langchain_wandb_router.router._routing import (
    Route,
    RouteLike,
    RoutingContext,
    as_routes,
)

__all__ = ["DecisionSelector"]

logger = logging.getLogger("langchain_wandb_router")

_QUESTION_ID = "model_route"
_DEFAULT_INSTRUCTIONS = (
    "Choose the least costly model that can do the task in the user's message well."
)


@dataclass(frozen=True)
class _Decision:
    """One conversation's label, and why."""

    label: str
    reason: str
    confidence: float | None
    expires: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "reason": self.reason,
            "confidence": self.confidence,
        }


class _TTLCache:
    """A thread-safe LRU of decisions that forgets them after ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float]) -> None:
        self._items: OrderedDict[str, _Decision] = OrderedDict()
        self._size, self._ttl, self._clock = size, ttl, clock
        self._lock = threading.Lock()

    def get(self, key: str) -> _Decision | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found.expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return found

    def put(self, key: str, label: str, reason: str, confidence: float | None) -> None:
        decision = _Decision(label, reason, confidence, self._clock() + self._ttl)
        with self._lock:
            self._items[key] = decision
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class DecisionSelector:
    """Route each conversation by asking a decision model which label fits it.

    A model selector for ``WandbRouter(models=...)``: on a conversation's
    first call it asks ``decisions`` one ``Choice`` question (the labels of
    ``choices``, described by ``criteria``) about the latest user message, and
    routes to that label's models. The answer is kept for the conversation
    (its LangGraph ``thread_id``, session id, else its opening messages), so
    later turns ask nothing and stay on the same models. When the decision
    fails or its confidence is under ``threshold``, the ``default`` label's
    models serve; an unsure answer is kept like a sure one, a failure is not
    (the next turn asks again). Two first calls of one conversation at once
    may both ask.

    Usage:
        .. code-block:: python

            from langchain_wandb_router import (
                DecisionSelector, WandbDecisions, WandbRouter,
            )

            selector = DecisionSelector(
                choices={
                    "cheap": "wandb/openai/gpt-oss-20b",
                    "strong": ["wandb/zai-org/GLM-5.1", "wandb/moonshotai/Kimi-K2.6"],
                },
                criteria={
                    "cheap": "Short, simple, well-scoped requests.",
                    "strong": "Multi-step reasoning, code, or long documents.",
                },
                decisions=WandbDecisions(model="wandb/openai/gpt-oss-20b"),
                threshold=0.6,
                default="strong",
            )
            router = WandbRouter(models=selector)

    Each label's models are a route list as ``WandbRouter(models=...)`` takes
    it: the first serves, the rest are fallbacks; the capability filter,
    health and limits apply as to any selector's answer.

    Async:
        ``WandbRouter`` calls a selector as a plain function, so ``ainvoke``
        and ``astream`` run the decision's sync request on the event loop
        (once per conversation). For async applications pass the async method
        instead, ``WandbRouter(models=selector.acall)``, which awaits
        ``decisions.ainvoke`` (sync ``invoke`` then refuses the selector).

    Why a label: :meth:`explain` gives ``{"label", "reason", "confidence"}``
    for a conversation (``None`` before its first decision or after its TTL);
    decisions are logged at debug level on the ``langchain_wandb_router``
    logger, failures at warning level. The routing record's ``reason`` reads
    "chosen by selector".

    Args:
        choices: Label to a model id, Route, chat model, or a list of those.
        decisions: The decision model (e.g. :class:`WandbDecisions`).
        default: The label that serves when the decision fails or is unsure.
        criteria: Label to what its models are for; labels left out are
            described by their name alone.
        instructions: The question the decision model answers.
        threshold: The least confidence that picks a label (0 to 1).
        cache_size: Conversations remembered (least recently used forgotten).
        ttl_seconds: How long a conversation's label is kept.
        clock: Seconds now, for the TTL (injectable for tests).

    Raises:
        DecisionInputError: ``choices`` is empty, ``default`` or a
            ``criteria`` label is not one of its labels, or a number is out
            of range.
    """

    def __init__(
        self,
        *,
        choices: Mapping[str, RouteLike | Sequence[RouteLike]],
        decisions: BaseDecisionModel,
        default: str,
        criteria: Mapping[str, JsonValue] | None = None,
        instructions: str | dict[str, JsonValue] | list[JsonValue] = (
            _DEFAULT_INSTRUCTIONS
        ),
        threshold: float = 0.5,
        cache_size: int = 10_000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_settings(choices, default, criteria, threshold, cache_size, ttl_seconds)
        self.routes: dict[str, list[Route]] = {
            label: as_routes(models) for label, models in choices.items()
        }
        self.decisions = decisions
        self.default = default
        self.threshold = threshold
        self.question = Choice(
            instructions=instructions,
            criteria={label: (criteria or {}).get(label) for label in choices},
        )
        self._cache = _TTLCache(cache_size, ttl_seconds, clock)

    def __repr__(self) -> str:
        return (
            f"DecisionSelector(labels={list(self.routes)}, default={self.default!r}, "
            f"threshold={self.threshold}, decisions={type(self.decisions).__name__})"
        )

    # ---------------------------------------------------------- selection

    def __call__(self, ctx: RoutingContext) -> list[Route]:
        """The routes of this conversation's label, asking once if needed."""
        key, message = self._lookup(ctx)
        if isinstance(message, list):
            return message
        try:
            response = self.decisions.invoke(self._request(message), ctx.config)
        except Exception as exc:
            return self._failed(exc)
        return self._decided(key, response)

    async def acall(self, ctx: RoutingContext) -> list[Route]:
        """Async :meth:`__call__`: awaits the decision model's ``ainvoke``."""
        key, message = self._lookup(ctx)
        if isinstance(message, list):
            return message
        try:
            response = await self.decisions.ainvoke(self._request(message), ctx.config)
        except Exception as exc:
            return self._failed(exc)
        return self._decided(key, response)

    def explain(
        self, messages: Sequence[BaseMessage], config: RunnableConfig | None = None
    ) -> dict[str, Any] | None:
        """The cached decision for a conversation: label, reason, confidence."""
        key = conversation_key(messages, config)
        found = None if key is None else self._cache.get(key)
        return None if found is None else found.as_dict()

    # ------------------------------------------------------------ helpers

    def _lookup(
        self, ctx: RoutingContext
    ) -> tuple[str | None, HumanMessage | list[Route]]:
        """The cache key and the message to ask about, or the routes already known."""
        key = conversation_key(ctx.messages, ctx.config)
        if key is not None and (found := self._cache.get(key)) is not None:
            why = f"{found.reason} (this conversation's decision)"
            return key, _explained(self.routes[found.label], why)
        message = next(
            (m for m in reversed(ctx.messages) if isinstance(m, HumanMessage)), None
        )
        if message is None:
            logger.debug("DecisionSelector: no user message; default %r", self.default)
            return key, self.routes[self.default]
        return key, message

    def _request(self, message: HumanMessage) -> Any:
        return {"state": message, "questions": {_QUESTION_ID: self.question}}

    def _failed(self, exc: BaseException) -> list[Route]:
        # A warning: every call of the conversation pays for a lost decision
        # (the default's models, and a new attempt next turn).
        logger.warning(
            "DecisionSelector: decision failed (%s: %s); default %r",
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            self.default,
        )
        why = f"decision failed ({type(exc).__name__}); default {self.default!r}"
        return _explained(self.routes[self.default], why)

    def _decided(self, key: str | None, response: ClassifierResponse) -> list[Route]:
        answer = response.choices.get(_QUESTION_ID)
        if answer is None or answer.choice not in self.routes:
            got = None if answer is None else answer.choice
            return self._failed(ValueError(f"no usable label (got {got!r})"))
        label = answer.choice
        reason = f"decided {label!r} at confidence {answer.confidence:.2f}"
        if answer.confidence < self.threshold:
            label = self.default
            reason += f" < threshold {self.threshold:.2f}; default {label!r}"
        logger.debug("DecisionSelector: %s", reason)
        if key is not None:
            self._cache.put(key, label, reason, answer.confidence)
        return _explained(self.routes[label], reason)


def _explained(routes: list[Route], reason: str) -> list[Route]:
    """``routes`` with the first one saying why it was chosen (routing's reason)."""
    return [replace(routes[0], reason=f"decision: {reason}"), *routes[1:]]


def _check_settings(
    choices: Mapping[str, Any],
    default: str,
    criteria: Mapping[str, Any] | None,
    threshold: float,
    cache_size: int,
    ttl_seconds: float,
) -> None:
    if not choices:
        msg = "DecisionSelector needs at least one label in choices."
        raise DecisionInputError(msg)
    if default not in choices:
        msg = f"default {default!r} is not one of the labels {sorted(choices)}."
        raise DecisionInputError(msg)
    unknown = sorted(set(criteria or {}) - set(choices))
    if unknown:
        msg = f"criteria names labels that are not in choices: {unknown}."
        raise DecisionInputError(msg)
    if not 0.0 <= threshold <= 1.0:
        msg = f"threshold must be from 0 to 1, got {threshold!r}."
        raise DecisionInputError(msg)
    if cache_size < 1 or ttl_seconds <= 0:
        msg = "cache_size must be >= 1 and ttl_seconds > 0."
        raise DecisionInputError(msg)
