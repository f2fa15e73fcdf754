"""Cost of one call from its usage and the catalog's prices.

The pricing rules live here once, for ChatWandb's ``cost_usd``, the router's
budget and the Weave price table alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_wandb_router.catalog._models import Pricing, get_model_info

__all__ = ["PER_MILLION", "cache_read_price", "call_cost_usd", "tokens_cost_usd"]

PER_MILLION = 1_000_000
"""Catalog prices are USD per this many tokens (and a micro-dollar, the unit of
the router's spend counters, is one of this many parts of a dollar)."""


def cache_read_price(pricing: Pricing) -> float | None:
    """USD per million cached input tokens.

    W&B bills cached prompt tokens at the cache-read price where it publishes
    one, else at the full input price.
    """
    return pricing.cache_read if pricing.cache_read is not None else pricing.input


def tokens_cost_usd(
    pricing: Pricing, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> float | None:
    """USD for these token counts at ``pricing``; ``None`` if a price is unknown.

    Args:
        pricing: The model's prices.
        input_tokens: Prompt tokens, cached ones included.
        output_tokens: Completion tokens.
        cached_tokens: How many of the prompt tokens were read from W&B's cache
            (at most ``input_tokens`` count).
    """
    cache_price = cache_read_price(pricing)
    if pricing.input is None or pricing.output is None or cache_price is None:
        return None
    cached = min(cached_tokens, input_tokens)
    return (
        (input_tokens - cached) * pricing.input
        + cached * cache_price
        + output_tokens * pricing.output
    ) / PER_MILLION


def call_cost_usd(model: str, usage: Mapping[str, Any] | None) -> float | None:
    """USD cost of one call, or ``None`` when a price or the usage is unknown.

    Cached prompt tokens are billed at :func:`cache_read_price`. Unknown prices
    give ``None``, never ``0.0``: a free-looking call that was in fact billed is
    worse than an honest unknown.

    Args:
        model: The served model id (prefixes accepted).
        usage: LangChain ``UsageMetadata`` (``input_tokens``, ``output_tokens``,
            ``input_token_details.cache_read``).
    """
    if not usage:
        return None
    try:
        info = get_model_info(model)
    except (TypeError, ValueError):
        return None
    if info is None:
        return None
    price = info.pricing
    if price.input is None or price.output is None:
        return None
    details = usage.get("input_token_details") or {}
    cost = tokens_cost_usd(
        price,
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(details.get("cache_read") or 0),
    )
    return None if cost is None else round(cost, 12)
