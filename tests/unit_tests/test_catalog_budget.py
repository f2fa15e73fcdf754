"""A budget refuses a route whose price is unknown, and accepts a priced one."""

from __future__ import annotations

import pytest

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.catalog import UNKNOWN, ModelInfo, Pricing, register_model
from langchain_wandb_router.catalog._pricing import call_cost_usd, tokens_cost_usd

KEY = "k" * 40
BASE = "http://127.0.0.1:9/v1"  # never called: these routers are only built


def test_kimi_k25_with_a_budget_is_accepted() -> None:
    router = WandbRouter(models=["wandb/moonshotai/Kimi-K2.5"], budget_usd=5.0, api_key=KEY, base_url=BASE)
    assert router.budget_usd == 5.0
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert call_cost_usd("moonshotai/Kimi-K2.5", usage) == pytest.approx(3.60)


@pytest.mark.parametrize("pricing", [Pricing(), Pricing(input=0.5), Pricing(output=0.5)])
def test_a_budget_over_an_unknown_price_is_refused(pricing: Pricing) -> None:
    model_id = f"test-org/unpriced-{pricing.input}-{pricing.output}"
    register_model(ModelInfo(id=model_id, pricing=pricing))
    info = ModelInfo(id=model_id, pricing=pricing)
    assert UNKNOWN in (info.figure("input"), info.figure("output"))
    assert not pricing.known
    assert tokens_cost_usd(pricing, 10, 10) is None  # unknown, never 0.0
    with pytest.raises(ValueError, match="no known price"):
        WandbRouter(models=[model_id], budget_usd=1.0, api_key=KEY, base_url=BASE)
    WandbRouter(models=[model_id], budget_usd=1.0, allow_unpriced=True, api_key=KEY, base_url=BASE)


def test_registering_a_price_lifts_the_refusal() -> None:
    model_id = "test-org/priced-later"
    register_model(ModelInfo(id=model_id))
    with pytest.raises(ValueError, match="no known price"):
        WandbRouter(models=[model_id], budget_usd=1.0, api_key=KEY, base_url=BASE)
    register_model(ModelInfo(id=model_id, pricing=Pricing(0.1, 0.2)))
    WandbRouter(models=[model_id], budget_usd=1.0, api_key=KEY, base_url=BASE)
