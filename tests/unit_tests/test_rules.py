"""Rules defined once and shared: prices, micro-dollars, images in a request."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_wandb_router.catalog._models import Pricing
from langchain_wandb_router.catalog._pricing import (
    PER_MILLION,
    cache_read_price,
    call_cost_usd,
    tokens_cost_usd,
)
from langchain_wandb_router.chat._tokens import (
    estimate_message_tokens,
    has_image_input,
    has_image_part,
    is_image_part,
)
from langchain_wandb_router.router._budget import estimate_micro, to_micro, to_usd

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"  # $0.10 / $0.10, no cache price


def test_cached_input_costs_the_cache_read_price_else_the_input_price() -> None:
    assert cache_read_price(Pricing(0.14, 0.28, 0.07)) == 0.07
    assert cache_read_price(Pricing(0.14, 0.28, None)) == 0.14
    assert cache_read_price(Pricing(0.14, 0.28, 0.0)) == 0.0  # free, not unknown
    assert cache_read_price(Pricing()) is None


def test_tokens_cost_splits_cached_input_and_is_none_without_prices() -> None:
    price = Pricing(0.2, 1.0, 0.05)
    cost = tokens_cost_usd(price, 1_000, 500, cached_tokens=400)
    assert cost == pytest.approx((600 * 0.2 + 400 * 0.05 + 500 * 1.0) / 1e6)
    # More cached tokens than input tokens count as all input cached.
    assert tokens_cost_usd(price, 10, 0, 50) == pytest.approx(10 * 0.05 / 1e6)
    assert tokens_cost_usd(Pricing(0.2, None), 1, 1) is None
    assert tokens_cost_usd(Pricing(None, 1.0, 0.05), 1, 1) is None


def test_call_cost_reads_usage_metadata() -> None:
    usage: dict[str, Any] = {
        "input_tokens": 1_000,
        "output_tokens": 1_000,
        "input_token_details": {"cache_read": 500},
    }
    assert call_cost_usd(QWEN, usage) == pytest.approx(2_000 * 0.1 / 1e6)
    assert call_cost_usd(QWEN, None) is None
    assert call_cost_usd("no-such/model", usage) is None


def test_micro_dollars_round_up_and_back() -> None:
    assert PER_MILLION == 1_000_000
    assert to_micro(0.000_001) == 1
    assert to_micro(0.000_001_5) == 2  # never undercounted
    assert to_usd(1_500_000) == 1.5
    assert estimate_micro("no-such/model", 100, 10) == 0
    # 1,000 input and 1,000 output tokens at $0.10/1M each: 200 micro-dollars.
    assert estimate_micro(QWEN, 1_000, 1_000) == to_micro(2_000 * 0.1 / PER_MILLION)


@pytest.mark.parametrize(
    ("part", "image"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}, True),
        ({"type": "image", "base64": "AA", "mime_type": "image/png"}, True),
        ({"type": "text", "text": "hi"}, False),
        ("image_url", False),
        ({"image_url": "x"}, False),
    ],
)
def test_what_counts_as_an_image_part(part: object, image: bool) -> None:
    assert is_image_part(part) is image
    assert has_image_part([[part]]) is image
    assert has_image_input([HumanMessage(content=[part])]) is image


def test_images_are_found_in_messages_and_in_openai_dicts_alike() -> None:
    picture = {"type": "image_url", "image_url": {"url": "https://x/a.png"}}
    messages = [AIMessage(content="text only"), HumanMessage(content=["look", picture])]
    assert has_image_input(messages)
    assert not has_image_input(messages[:1])
    dicts = [{"role": "user", "content": "hi"}, {"role": "user", "content": [picture]}]
    assert has_image_part(d.get("content") for d in dicts)
    assert not has_image_part(d.get("content") for d in dicts[:1])
    # An image costs a fixed estimate, text about four characters a token.
    with_image = estimate_message_tokens([HumanMessage(content=[picture])])
    assert with_image > estimate_message_tokens([HumanMessage(content="look")])
