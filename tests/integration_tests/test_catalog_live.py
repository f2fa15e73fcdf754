"""``refresh_models`` and ``wandb-router models`` compare the catalog with W&B, both ways."""

from __future__ import annotations

import argparse
import json

import pytest

from langchain_wandb_router.catalog._live import refresh_models
from langchain_wandb_router.cli._models import cmd_models
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
RETIRED = "moonshotai/Kimi-K2-Instruct"


def _args(*, live: bool = False, json_out: bool = False) -> argparse.Namespace:
    return argparse.Namespace(live=live, project=None, all=False, json=json_out)


def test_refresh_reports_both_directions(emulator: WandbEmulator) -> None:
    emulator.live_models = [QWEN, "brand/new-model", RETIRED]
    live = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url)
    assert live.not_in_catalog == live.new_ids == ("brand/new-model",)
    assert live.listed_but_retired == (RETIRED,)  # not "new": the catalog has it
    assert live.not_served == live.missing_ids
    assert "moonshotai/Kimi-K2.5" in live.not_served
    assert QWEN not in live.not_served and RETIRED not in live.not_served


def test_unknown_answer_reports_nothing(emulator: WandbEmulator) -> None:
    emulator.live_models = []
    live = refresh_models(api_key=emulator.api_key, base_url=emulator.base_url)
    assert (live.not_in_catalog, live.not_served, live.listed_but_retired) == ((), (), ())


def test_models_live_prints_both_lists(
    emulator: WandbEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", emulator.api_key)
    monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", emulator.base_url)
    emulator.live_models = [QWEN, "brand/new-model"]
    assert cmd_models(_args(live=True)) == 0
    out = capsys.readouterr().out
    served = next(line for line in out.splitlines() if line.startswith("Served by W&B but not in the catalog:"))
    assert "brand/new-model" in served
    gone = next(line for line in out.splitlines() if line.startswith("In the catalog but not served by W&B:"))
    assert "moonshotai/Kimi-K2.5" in gone and QWEN not in gone


def test_models_table_shows_unknown_date_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_models(_args()) == 0
    out = capsys.readouterr().out
    glm = next(line for line in out.splitlines() if line.startswith("zai-org/GLM-5.1 "))
    assert glm.split()[2] == "unknown"  # its max output
    kimi = next(line for line in out.splitlines() if line.startswith("moonshotai/Kimi-K2.5 "))
    assert kimi.split()[3:6] == ["0.60", "3.00", "0.10"]
    assert "?" not in out
    assert "Catalog as of 2026-12-02; source: WANDB_API.md" in out


def test_models_json_carries_unknown_date_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_models(_args(json_out=True)) == 0
    by_id = {m["id"]: m for m in json.loads(capsys.readouterr().out)}
    glm = by_id["zai-org/GLM-5.1"]
    assert glm["max_output_tokens"] == "unknown" and glm["unknown_figures"] == ["max_output_tokens"]
    assert glm["catalog_as_of"] == "2026-12-02"
    assert "data/catalog-sources.csv" in glm["catalog_source"]
    assert by_id["moonshotai/Kimi-K2.5"]["input_cost_per_million"] == 0.60
