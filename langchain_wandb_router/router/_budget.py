"""Budget arithmetic: micro-dollar integers, prices known or not, estimates.

Spend is kept in integer micro-dollars (millionths of a dollar) so that shared
counters (Redis) add exactly and parallel workers compare against one number.
"""

from __future__ import annotations

from langchain_wandb_router.catalog._models import get_model_info
from langchain_wandb_router.catalog._pricing import PER_MILLION, tokens_cost_usd

__all__ = ["estimate_micro", "input_micro", "priced", "to_micro", "to_usd"]

# Reserving a model's whole max output (often 131k tokens) would let a small
# budget admit one call at a time; a call that asks for no max_tokens is
# reserved at this size and settled at its real cost afterwards.
_DEFAULT_OUTPUT_ESTIMATE = 4_096


def to_micro(usd: float) -> int:
    """USD as whole micro-dollars, rounded up so spend is never undercounted."""
    micro = usd * PER_MILLION
    whole = int(micro)
    return whole + 1 if micro > whole else whole


def to_usd(micro: int) -> float:
    """Micro-dollars as USD."""
    return micro / PER_MILLION


def priced(label: str) -> bool:
    """Whether a route's cost can be counted (input and output prices known)."""
    try:
        info = get_model_info(label)
    except (TypeError, ValueError):
        info = None
    return (
        info is not None
        and info.pricing.input is not None
        and info.pricing.output is not None
    )


def estimate_micro(model_id: str, input_tokens: int, max_tokens: int | None) -> int:
    """An upper estimate of one call's cost, to reserve before sending it."""
    info = get_model_info(model_id)
    if info is None:
        return 0
    output = max_tokens or min(
        info.max_output_tokens or _DEFAULT_OUTPUT_ESTIMATE, _DEFAULT_OUTPUT_ESTIMATE
    )
    usd = tokens_cost_usd(info.pricing, input_tokens, output)
    return 0 if usd is None else to_micro(usd)


def input_micro(model_id: str, input_tokens: int) -> int:
    """The cost of ``input_tokens`` of prompt on ``model_id`` (0 if unpriced)."""
    info = get_model_info(model_id)
    if info is None:
        return 0
    usd = tokens_cost_usd(info.pricing, input_tokens, 0)
    return 0 if usd is None else to_micro(usd)
