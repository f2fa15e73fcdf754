"""The ``wandb-router`` command: the installed console script, run as a user would,
and ``main([...])`` in-process (stdout/stderr captured, stdin replaced)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_router.cli import main
from langchain_wandb_router.integrations.cost import call_cost_usd
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


# ------------------------------------------------------------------ in-process
# ``main([...])`` with the emulator in the environment: capsys sees stdout and
# stderr, monkeypatch replaces stdin.

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"


@pytest.fixture
def emu(emulator: WandbEmulator, monkeypatch: pytest.MonkeyPatch) -> WandbEmulator:
    monkeypatch.setenv("WANDB_API_KEY", emulator.api_key)
    monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", emulator.base_url)
    return emulator


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str, *, tty: bool = False) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(text) if tty else io.StringIO(text))


def _sent(emulator: WandbEmulator) -> dict[str, Any]:
    body = emulator.requests[-1].json
    assert body is not None
    return body


def test_version_of_the_installed_script() -> None:
    out = run("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"wandb-router {version('langchain-wandb-router')}\n"


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"wandb-router {version('langchain-wandb-router')}"


def test_no_arguments_prints_help_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: wandb-router")
    for command in ("models", "chat", "demo", "--version"):
        assert command in out
    assert err == ""


def test_usage_error_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--max-tokens", "0", "hi"]) == 2
    assert "positive integer" in capsys.readouterr().err


def test_chat_dash_reads_the_prompt_from_stdin(emu: WandbEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "What is W&B?\n")
    assert main(["chat", "-"]) == 0
    assert "answering: What is W&B?" in capsys.readouterr().out
    assert _sent(emu)["messages"][-1] == {"role": "user", "content": "What is W&B?"}


def test_chat_without_prompt_reads_piped_stdin(emu: WandbEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "line one\nline two\n")
    assert main(["chat"]) == 0
    assert _sent(emu)["messages"][-1]["content"] == "line one\nline two"


def test_chat_without_prompt_on_a_terminal_is_a_usage_error(emu: WandbEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "never read", tty=True)
    assert main(["chat"]) == 2
    err = capsys.readouterr().err
    assert "needs a prompt" in err and "'-'" in err
    assert emu.requests == []


def test_chat_empty_stdin_is_a_usage_error(emu: WandbEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "  \n")
    assert main(["chat", "-"]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert emu.requests == []


@pytest.mark.parametrize("router", [False, True], ids=["model", "router"])
def test_chat_system_temperature_max_tokens_reach_w_and_b(emu: WandbEmulator, capsys: pytest.CaptureFixture[str], router: bool) -> None:
    args = ["chat", "--system", "Answer in French.", "--temperature", "0.25", "--max-tokens", "64", "Bonjour?"]
    assert main([*args, "--router"] if router else args) == 0, capsys.readouterr().err
    body = _sent(emu)
    assert body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Bonjour?"},
    ]
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 64


def test_chat_sends_no_settings_it_was_not_given(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "hi"]) == 0
    body = _sent(emu)
    assert "temperature" not in body and "max_tokens" not in body
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_chat_json_is_one_object(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--json", "hi there"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # the whole of stdout: one object, nothing else
    assert err == ""
    assert {"text", "model", "usage", "cost", "routing"} <= set(data)
    assert "answering: hi there" in data["text"]
    assert data["model"] == QWEN
    usage = data["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert data["cost"] == pytest.approx(call_cost_usd(QWEN, usage))
    assert data["cost"] > 0
    assert data["routing"] is None
    assert emu.api_key not in out


def test_chat_json_cost_is_null_when_unpriced(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A model W&B serves but the catalog does not know: no price, so no cost.
    with WandbEmulator(extra_models=["acme/brand-new-model"]) as emulator:
        monkeypatch.setenv("WANDB_API_KEY", emulator.api_key)
        monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", emulator.base_url)
        assert main(["chat", "--json", "--model", "wandb/acme/brand-new-model", "hi"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "acme/brand-new-model"
    assert data["cost"] is None
    assert data["usage"]["output_tokens"] > 0


def test_chat_json_router_reports_the_fallback(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emu.fault(status=503, times=None, model="openai/gpt-oss-20b")
    assert main(["chat", "--json", "--router", "--model", "wandb/openai/gpt-oss-20b", "hi"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["model"] == QWEN
    routing = data["routing"]
    assert routing["model"] == QWEN
    assert routing["fell_back"] is True
    assert [f["model"] for f in routing["fallbacks"]] == ["openai/gpt-oss-20b"]
    assert "503" in routing["fallbacks"][0]["error"]
    assert [a["model"] for a in routing["attempts"]] == ["openai/gpt-oss-20b", QWEN]
    assert routing["attempts"][-1]["error"] is None
    assert err.count("\n") == 1 and "fell back: openai/gpt-oss-20b failed" in err


def test_chat_json_router_without_fallback(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--json", "--router", "hi"]) == 0
    out, err = capsys.readouterr()
    routing = json.loads(out)["routing"]
    assert routing["model"] == QWEN
    assert routing["fell_back"] is False
    assert routing["fallbacks"] == []
    assert err == ""


def test_router_fallback_is_one_line_on_stderr(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emu.fault(status=503, times=None, model="openai/gpt-oss-20b")
    assert main(["chat", "--router", "--model", "wandb/openai/gpt-oss-20b", "hi"]) == 0
    out, err = capsys.readouterr()
    assert "answering: hi" in out and "fell back" not in out
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("wandb-router: fell back: openai/gpt-oss-20b failed (")
    assert "503" in lines[0]
    assert lines[0].endswith(f"{QWEN} answered")


def test_router_with_every_route_down_lists_the_attempts(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emu.fault(status=400, times=None)
    assert main(["chat", "--router", "--model", "wandb/openai/gpt-oss-20b", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wandb-router: error: W&B rejected the request")
    assert "WandbRouter attempts: openai/gpt-oss-20b:" in err
    assert "Traceback" not in err


def test_missing_key_says_which_variable_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "set the WANDB_API_KEY environment variable" in err
    assert "api_key=" not in err


def test_rejected_key_speaks_cli_and_hides_the_key(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emu.fault(status=401, body={"error": {"message": f"invalid key Bearer {emu.api_key}", "type": "invalid_request_error"}}, times=None)
    assert main(["chat", "--json", "hi"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "WANDB_API_KEY" in err and "--project" in err
    assert "project=" not in err
    assert emu.api_key not in err


def test_retired_model_names_the_flag_to_use(emu: WandbEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--model", "wandb/meta-llama/Llama-4-Scout-17B-16E-Instruct", "hi"]) == 1
    err = capsys.readouterr().err
    assert "use --model wandb/Qwen/Qwen3.5-35B-A3B instead" in err
    assert emu.requests == []
