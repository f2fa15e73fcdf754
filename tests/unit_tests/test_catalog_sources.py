"""The catalog states every figure or says "unknown", and data/ cites each one."""

from __future__ import annotations

import csv
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_router.catalog import (
    UNKNOWN,
    catalog_date,
    catalog_source,
)
from langchain_wandb_router.catalog._models import (
    FIGURES,
    ModelInfo,
    get_model_info,
    list_models,
)

SOURCES = Path(__file__).resolve().parents[2] / "data" / "catalog-sources.csv"
TODAY = date(2026, 12, 2)


def _records() -> dict[str, dict[str, Any]]:
    raw = resources.files("langchain_wandb_router.catalog").joinpath("models.json").read_text("utf-8")
    return {r["id"]: r for r in json.loads(raw)["models"]}


def _raw_figures(rec: dict[str, Any]) -> dict[str, Any]:
    """A record's figures as the file states them (cache_read only when published)."""
    price = rec["price"]
    figures = {
        "context_window": rec["context_window"],
        "max_output_tokens": rec["max_output_tokens"],
        "input": price["input"],
        "output": price["output"],
    }
    if price.get("cache_read") is not None:
        figures["cache_read"] = price["cache_read"]
    return figures


def _cited() -> dict[tuple[str, str], dict[str, str]]:
    with SOURCES.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    cited = {(r["model"], r["figure"]): r for r in rows}
    assert len(cited) == len(rows), "a figure is cited twice"
    return cited


def _same(stated: Any, cited: str) -> bool:
    if stated == "unknown" or cited == "unknown":
        return bool(stated == cited)
    return bool(float(cited) == pytest.approx(float(stated)))


def _shipped_active() -> list[ModelInfo]:
    """The shipped catalog's active models (other tests register extra ones)."""
    shipped = set(_records())
    return [m for m in list_models() if m.id in shipped]


def test_active_models_state_every_figure_or_unknown() -> None:
    records = _records()
    for info in _shipped_active():
        for name, value in _raw_figures(records[info.id]).items():
            assert value == "unknown" or (isinstance(value, int | float) and value > 0), (info.id, name, value)


def test_every_figure_in_the_catalog_is_cited_in_data() -> None:
    cited = _cited()
    for model_id, rec in _records().items():
        for name, value in _raw_figures(rec).items():
            row = cited.get((model_id, name))
            assert row is not None, f"{model_id} {name} has no source in {SOURCES.name}"
            assert _same(value, row["value"]), (model_id, name, value, row["value"])
            assert row["source"].strip() and date.fromisoformat(row["taken"]) <= TODAY


def test_every_cited_figure_is_in_the_catalog() -> None:
    records = _records()
    for (model_id, name), row in _cited().items():
        assert model_id in records, f"{SOURCES.name} cites {model_id}, which the catalog lacks"
        assert name in _raw_figures(records[model_id]), (model_id, name)
        assert _same(_raw_figures(records[model_id])[name], row["value"])


def test_unknown_figures_cite_that_no_source_gives_them() -> None:
    for row in _cited().values():
        assert (row["value"] == "unknown") == row["source"].startswith("unknown:"), row


def test_litellm_figures_name_its_version() -> None:
    litellm = [r for r in _cited().values() if "LiteLLM" in r["source"] and r["value"] != "unknown"]
    assert litellm
    assert all("LiteLLM 1.110.2" in r["source"] for r in litellm)


def test_unknown_is_a_typed_marker_not_none() -> None:
    glm = get_model_info("zai-org/GLM-5.1")
    assert glm is not None
    assert glm.max_output_tokens is None  # the old attribute, unchanged
    assert glm.figure("max_output_tokens") == UNKNOWN == "unknown"
    assert glm.figure("context_window") == 203000
    assert glm.unknown_figures() == ("max_output_tokens",)
    data = glm.to_dict()
    assert data["max_output_tokens"] == "unknown"
    assert data["unknown_figures"] == ["max_output_tokens"]
    assert data["input_cost_per_million"] == 1.40


def test_kimi_k25_has_prices_and_limits() -> None:
    kimi = get_model_info("wandb/moonshotai/Kimi-K2.5")
    assert kimi is not None
    assert (kimi.pricing.input, kimi.pricing.output, kimi.pricing.cache_read) == (0.60, 3.00, 0.10)
    assert kimi.pricing.known
    assert (kimi.context_window, kimi.max_output_tokens) == (262144, 262144)


def test_wandb_api_md_wins_over_litellm() -> None:
    v31 = get_model_info("deepseek-ai/DeepSeek-V3.1")
    glm52 = get_model_info("zai-org/GLM-5.2")
    llama = get_model_info("meta-llama/Llama-3.3-70B-Instruct")
    assert v31 is not None and glm52 is not None and llama is not None
    assert (v31.context_window, v31.pricing.input, v31.pricing.output) == (161000, 0.55, 1.65)
    assert v31.pricing.cache_read is None  # LiteLLM's 0.20 belongs to another price list
    assert glm52.pricing.input == 0.76
    assert llama.max_output_tokens == 32768


def test_models_litellm_adds_are_in_the_catalog() -> None:
    for model_id in ("deepseek-ai/DeepSeek-V4.1-Flash", "google/gemma-4-26B-A4B-it", "Qwen/Qwen3.6-35B-A3B"):
        info = get_model_info(model_id)
        assert info is not None and info.vision and info.pricing.known, model_id
        assert info.unknown_figures() == ()


def test_only_what_no_source_gives_is_unknown() -> None:
    unknown = {(m.id, f) for m in _shipped_active() for f in m.unknown_figures()}
    assert unknown == {
        ("zai-org/GLM-5.1", "max_output_tokens"),
        ("MiniMaxAI/MiniMax-M2.5", "max_output_tokens"),
        ("nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8", "max_output_tokens"),
    }
    assert set(FIGURES) == {"context_window", "max_output_tokens", "input", "output"}


def test_catalog_states_its_date_and_source() -> None:
    assert catalog_date() == "2026-12-02"
    assert "WANDB_API.md" in catalog_source() and "LiteLLM 1.110.2" in catalog_source()
    assert "data/catalog-sources.csv" in catalog_source()
