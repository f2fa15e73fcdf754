"""The shipped catalog and its lifecycle rules."""

from __future__ import annotations

from datetime import date

import pytest

from langchain_wandb_router.catalog._models import (
    ModelInfo,
    Pricing,
    get_model_info,
    list_models,
    normalize_model_id,
    register_model,
)

MASTRA_TEN = {
    "moonshotai/Kimi-K2-Instruct": (128000, 16384, 1.35, 4.00),
    "microsoft/Phi-4-mini-instruct": (128000, 4096, 0.08, 0.35),
    "meta-llama/Llama-3.1-8B-Instruct": (128000, 32768, 0.22, 0.22),
    "meta-llama/Llama-3.3-70B-Instruct": (128000, 32768, 0.71, 0.71),
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": (64000, 8192, 0.17, 0.66),
    "Qwen/Qwen3-235B-A22B-Instruct-2507": (262144, 131072, 0.10, 0.10),
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": (262144, 66536, 1.00, 1.50),
    "Qwen/Qwen3-235B-A22B-Thinking-2507": (262144, 131072, 0.10, 0.10),
    "deepseek-ai/DeepSeek-R1-0528": (161000, 163840, 1.35, 5.40),
    "deepseek-ai/DeepSeek-V3-0324": (161000, 8192, 1.14, 2.75),
}


@pytest.mark.parametrize(("model_id", "facts"), sorted(MASTRA_TEN.items()))
def test_all_ten_mastra_models_are_kept_with_their_data(
    model_id: str, facts: tuple
) -> None:
    info = get_model_info(f"wandb/{model_id}")
    assert info is not None
    assert (
        info.context_window,
        info.max_output_tokens,
        info.pricing.input,
        info.pricing.output,
    ) == facts
    assert info.tool_calling


def test_retired_models_name_dates_and_successors() -> None:
    expected = {
        "meta-llama/Llama-4-Scout-17B-16E-Instruct": (
            "2026-04-21",
            "Qwen/Qwen3.5-35B-A3B",
        ),
        "moonshotai/Kimi-K2-Instruct": ("2026-03-04", "moonshotai/Kimi-K2.5"),
        "deepseek-ai/DeepSeek-V3-0324": ("2026-03-04", "deepseek-ai/DeepSeek-V3.1"),
        "deepseek-ai/DeepSeek-R1-0528": ("2026-03-04", None),
    }
    for model_id, (when, successor) in expected.items():
        info = get_model_info(model_id)
        assert info is not None
        assert info.is_retired(date(2026, 11, 24))
        assert info.retirement_date == date.fromisoformat(when)
        assert info.successor == successor
        message = info.retirement_message()
        assert when in message
        assert (successor or "no successor") in message


def test_status_follows_the_dates() -> None:
    phi = get_model_info("microsoft/Phi-4-mini-instruct")
    assert phi is not None
    assert (
        phi.status(date(2026, 6, 1)) == "deprecated"
    )  # announced, not yet deprecated date
    assert phi.status(date(2026, 7, 1)) == "deprecated"
    assert phi.status(date(2026, 7, 20)) == "retired"
    qwen = get_model_info("Qwen/Qwen3-235B-A22B-Instruct-2507")
    assert qwen is not None
    assert qwen.status(date(2030, 1, 1)) == "active"


def test_reasoning_modes_match_wandb() -> None:
    modes = {
        "Qwen/Qwen3-235B-A22B-Thinking-2507": "always",
        "openai/gpt-oss-120b": "always",
        "moonshotai/Kimi-K2.5": "always",
        "zai-org/GLM-5.1": "default_on",
        "Qwen/Qwen3.5-35B-A3B": "default_on",
        "deepseek-ai/DeepSeek-V4-Flash": "default_off",
        "google/gemma-4-31B-it": "default_off",
        "Qwen/Qwen3-235B-A22B-Instruct-2507": "none",
        "meta-llama/Llama-3.3-70B-Instruct": "none",
        "microsoft/Phi-4-mini-instruct": "none",
    }
    for model_id, mode in modes.items():
        info = get_model_info(model_id)
        assert info is not None and info.reasoning == mode, model_id


def test_vision_models() -> None:
    vision = {m.id for m in list_models(include_retired=True) if m.vision}
    assert {
        "moonshotai/Kimi-K2.5",
        "Qwen/Qwen3.5-35B-A3B",
        "google/gemma-4-31B-it",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    } <= vision
    assert "Qwen/Qwen3-235B-A22B-Instruct-2507" not in vision


def test_list_models_hides_retired_by_default() -> None:
    active = {m.id for m in list_models()}
    everything = {m.id for m in list_models(include_retired=True)}
    assert "moonshotai/Kimi-K2-Instruct" not in active
    assert "moonshotai/Kimi-K2-Instruct" in everything
    assert "Qwen/Qwen3-235B-A22B-Instruct-2507" in active
    assert len(everything) >= 27


def test_unknown_ids_pass_through() -> None:
    assert get_model_info("some-org/brand-new-model") is None
    assert get_model_info("wandb-artifact:///team/proj/lora:v1") is None


def test_profile_shape() -> None:
    info = get_model_info("deepseek-ai/DeepSeek-V4-Flash")
    assert info is not None
    profile = info.to_profile()
    assert profile["max_input_tokens"] == 1048576
    assert profile["tool_calling"] is True
    assert profile["reasoning_output"] is True
    assert profile["image_inputs"] is False
    assert profile["max_output_tokens"] == 1048576
    glm = get_model_info("zai-org/GLM-5.1")
    assert glm is not None
    assert "max_output_tokens" not in glm.to_profile()  # unknown stays absent, not zero


def test_register_model_for_lora() -> None:
    lora = "wandb-artifact:///team/proj/my-lora:v2"
    register_model(
        ModelInfo(id=f"wandb/{lora}", context_window=32000, pricing=Pricing(0.1, 0.2))
    )
    info = get_model_info(lora)
    assert info is not None and info.context_window == 32000


def test_to_dict_has_stable_keys() -> None:
    info = get_model_info("openai/gpt-oss-20b")
    assert info is not None
    data = info.to_dict()
    assert data["input_cost_per_million"] == 0.03
    assert data["output_cost_per_million"] == 0.13
    assert data["model"] == "wandb/openai/gpt-oss-20b"


@pytest.mark.parametrize("bad", [None, 3, ["Qwen/x"]])
def test_non_string_ids_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        normalize_model_id(bad)  # type: ignore[arg-type]
