"""The installed ``wandb-router`` console script, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_wandb_router.testing import WandbEmulator

SCRIPT = str(Path(sys.executable).parent / "wandb-router")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "OPENAI_"))}
    clean.update(env or {})
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=clean, timeout=timeout, check=False)


@pytest.fixture
def emu_env(emulator: WandbEmulator) -> dict[str, str]:
    return {"WANDB_API_KEY": emulator.api_key, "WANDB_INFERENCE_BASE_URL": emulator.base_url}


def test_models_table() -> None:
    out = run("models")
    assert out.returncode == 0, out.stderr
    assert "Qwen/Qwen3-235B-A22B-Instruct-2507" in out.stdout
    assert "262,144" in out.stdout
    assert "moonshotai/Kimi-K2-Instruct " not in out.stdout  # retired: hidden by default
    everything = run("models", "--all").stdout
    assert "retired 2026-03-04 -> moonshotai/Kimi-K2.5" in everything


def test_models_json_has_stable_keys() -> None:
    out = run("models", "--json", "--all")
    data = json.loads(out.stdout)
    by_id = {m["id"]: m for m in data}
    qwen = by_id["Qwen/Qwen3-Coder-480B-A35B-Instruct"]
    assert qwen["input_cost_per_million"] == 1.0
    assert qwen["output_cost_per_million"] == 1.5
    assert by_id["deepseek-ai/DeepSeek-V3-0324"]["successor"] == "deepseek-ai/DeepSeek-V3.1"
    assert {"context_window", "max_output_tokens", "tool_calling", "vision", "reasoning", "status"} <= set(qwen)


def test_models_live(emulator: WandbEmulator, emu_env: dict[str, str]) -> None:
    emulator.live_models = ["Qwen/Qwen3-235B-A22B-Instruct-2507", "brand/new-model"]
    out = run("models", "--live", env=emu_env)
    assert out.returncode == 0, out.stderr
    assert "live" in out.stdout.splitlines()[0]
    assert "brand/new-model" in out.stdout
    qwen_line = next(line for line in out.stdout.splitlines() if line.startswith("Qwen/Qwen3-235B-A22B-Instruct-2507"))
    assert qwen_line.rstrip().endswith("yes")


def test_chat_streams_with_usage_and_cost(emulator: WandbEmulator, emu_env: dict[str, str]) -> None:
    out = run("chat", "Hello there", env=emu_env)
    assert out.returncode == 0, out.stderr
    assert "answering: Hello there" in out.stdout
    assert "tokens, $" in out.stdout


def test_chat_shows_reasoning_marked(emulator: WandbEmulator, emu_env: dict[str, str]) -> None:
    out = run("chat", "--model", "wandb/Qwen/Qwen3-235B-A22B-Thinking-2507", "Is 9.11 > 9.9?", env=emu_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[thinking] The user wrote")
    assert "[answer] Hello!" in out.stdout


def test_chat_router_falls_back(emulator: WandbEmulator, emu_env: dict[str, str]) -> None:
    emulator.fault(status=503, times=None, model="openai/gpt-oss-20b")
    out = run("chat", "--router", "--model", "wandb/openai/gpt-oss-20b", "hi", env=emu_env)
    assert out.returncode == 0, out.stderr
    assert "[Qwen/Qwen3-235B-A22B-Instruct-2507]" in out.stdout


def test_missing_key_is_one_clear_line() -> None:
    out = run("chat", "hi")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert "WANDB_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def test_retired_model_names_successor(emu_env: dict[str, str]) -> None:
    out = run("chat", "--model", "wandb/meta-llama/Llama-4-Scout-17B-16E-Instruct", "hi", env=emu_env)
    assert out.returncode == 1
    assert "Qwen/Qwen3.5-35B-A3B" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_project_is_one_clear_line(emu_env: dict[str, str]) -> None:
    out = run("chat", "--project", "no-slash", "hi", env=emu_env)
    assert out.returncode == 2
    assert "team>/<project" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_runs_offline_without_a_key() -> None:
    out = run("demo", timeout=120)
    assert out.returncode == 0, out.stderr
    for label in ("1. A streamed chain", "2. Tool calling", "3. Structured output",
                  "4. Dynamic routing", "5. A fallback", "6. Cost"):
        assert label in out.stdout
    assert "bundled W&B emulator" in out.stdout
    assert "task=complex -> served by moonshotai/Kimi-K2.5" in out.stdout
    assert "tool call: get_weather" in out.stdout
    assert "total: $" in out.stdout
