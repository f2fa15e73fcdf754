"""Cost of one call from its usage and the catalog's prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_wandb_router.catalog._models import get_model_info

_PER = 1_000_000


def call_cost_usd(model: str, usage: Mapping[str, Any] | None) -> float | None:
    """USD cost of one call, or ``None`` when a price or the usage is unknown.

    Cached prompt tokens are billed at the cache-read price where the catalog has
    one, else at the input price. Unknown prices give ``None``, never ``0.0``:
    a free-looking call that was in fact billed is worse than an honest unknown.

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
    input_tokens = int(usage.get("input_tokens") or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    details = usage.get("input_token_details") or {}
    cached = min(int(details.get("cache_read") or 0), input_tokens)
    cache_price = price.cache_read if price.cache_read is not None else price.input
    cost = (
        (input_tokens - cached) * price.input
        + cached * cache_price
        + output_tokens * price.output
    ) / _PER
    return round(cost, 12)
