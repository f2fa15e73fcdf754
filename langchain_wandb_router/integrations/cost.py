"""Cost tracking: per-call cost in USD from usage and the catalog's prices."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_wandb_router.catalog._models import strip_prefix
from langchain_wandb_router.catalog._pricing import call_cost_usd

__all__ = ["WandbCostCallbackHandler", "call_cost_usd", "get_wandb_cost_callback"]


class WandbCostCallbackHandler(BaseCallbackHandler):
    """Adds up cost and tokens per served model across calls.

    Works for invoke and stream, sync and async, through ChatWandb, WandbRouter
    and agents (each model call reports once). Cost comes from the call's
    ``response_metadata["cost_usd"]``, else from the catalog's prices; calls to
    models without known prices are counted as *unpriced*, never as free.

    Attributes:
        total_cost_usd: The cost of every priced call.
        cost_by_model: Cost per served model; ``None`` when some of that
            model's calls had no known price.
        unpriced_models: Models whose prices are unknown.
        input_tokens, output_tokens, total_tokens: Token totals.
        calls: Model calls seen.
    """

    raise_error = True  # a bug here should not be silently swallowed

    def __init__(self) -> None:
        """Start from zero."""
        super().__init__()
        self._lock = threading.Lock()
        self.total_cost_usd = 0.0
        self.cost_by_model: dict[str, float | None] = {}
        self.tokens_by_model: dict[str, dict[str, int]] = {}
        self.unpriced_models: set[str] = set()
        self.input_tokens = 0
        self.output_tokens = 0
        self.total_tokens = 0
        self.calls = 0

    @property
    def complete(self) -> bool:
        """Whether every call had a known price (so the total is the whole cost)."""
        return not self.unpriced_models

    def __repr__(self) -> str:
        unknown = (
            f", unpriced: {sorted(self.unpriced_models)}"
            if self.unpriced_models
            else ""
        )
        return (
            f"Cost: ${self.total_cost_usd:.6f} over {self.calls} call(s), "
            f"{self.input_tokens} input / {self.output_tokens} output tokens{unknown}"
        )

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add one model call's usage and cost."""
        default_model = (response.llm_output or {}).get("model_name")
        for generations in response.generations:
            for generation in generations:
                if isinstance(generation, ChatGeneration) and isinstance(
                    generation.message, AIMessage
                ):
                    self._add(generation.message, default_model)

    def _add(self, message: AIMessage, default_model: str | None) -> None:
        usage = message.usage_metadata
        if not usage:
            return
        meta = message.response_metadata
        model = strip_prefix(str(meta.get("model_name") or default_model or "unknown"))
        cost = meta.get("cost_usd")
        if cost is None:
            cost = call_cost_usd(model, usage)
        with self._lock:
            self.calls += 1
            self.input_tokens += usage.get("input_tokens", 0)
            self.output_tokens += usage.get("output_tokens", 0)
            self.total_tokens += usage.get("total_tokens", 0)
            tokens = self.tokens_by_model.setdefault(model, {"input": 0, "output": 0})
            tokens["input"] += usage.get("input_tokens", 0)
            tokens["output"] += usage.get("output_tokens", 0)
            if cost is None:
                self.unpriced_models.add(model)
                self.cost_by_model[model] = None
                return
            self.total_cost_usd += cost
            if model not in self.unpriced_models:
                self.cost_by_model[model] = (
                    self.cost_by_model.get(model) or 0.0
                ) + cost


_cost_callback: ContextVar[WandbCostCallbackHandler | None] = ContextVar(
    "wandb_cost_callback", default=None
)
register_configure_hook(_cost_callback, inheritable=True)


@contextmanager
def get_wandb_cost_callback() -> Iterator[WandbCostCallbackHandler]:
    """Track the cost of every model call made inside the ``with`` block.

    Example:
        .. code-block:: python

            from langchain_wandb_router import ChatWandb, get_wandb_cost_callback

            llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")
            with get_wandb_cost_callback() as cb:
                llm.invoke("Hello")
            print(cb.total_cost_usd, cb.cost_by_model)
    """
    handler = WandbCostCallbackHandler()
    token = _cost_callback.set(handler)
    try:
        yield handler
    finally:
        _cost_callback.reset(token)
