"""register_provider(): ``wandb:`` strings in init_chat_model, create_agent and middleware.

Registration is process-wide and permanent by design, so tests that need a
langchain which has never seen it run in a fresh interpreter (subprocess). Tests
that simulate another langchain release swap langchain's own internals with
monkeypatch, which puts them back afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings
from importlib import metadata
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelFallbackMiddleware
from langchain.chat_models import base as lc_base, init_chat_model
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI

from langchain_wandb_router import (
    ChatWandb,
    ProviderRegistrationError,
    register_provider,
)
from langchain_wandb_router.integrations import _provider
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
GPT_OSS = "openai/gpt-oss-120b"


def _installed_is_proven() -> bool:
    installed = _provider.parse_release(metadata.version("langchain"))
    low, high = _provider.LANGCHAIN_PROVEN
    return installed is not None and low <= installed <= high


@pytest.fixture(autouse=True)
def _proven_langchain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the behaviour tests on whatever langchain is installed, as on a
    proven release (a proof, like the fast paths' forced on); a fresh
    interpreter cannot be patched, so those tests skip on an unproven one."""
    if not _installed_is_proven():
        proven = _provider.dotted(_provider.LANGCHAIN_PROVEN[1])
        monkeypatch.setattr(_provider, "_langchain_version", lambda: proven)


def _needs_proven_langchain() -> None:
    if not _installed_is_proven():
        pytest.skip(
            f"langchain {metadata.version('langchain')} is outside the tested "
            "range: register_provider refuses it (see the release tests below)"
        )


@pytest.fixture
def wandb_env(
    emulator: WandbEmulator, monkeypatch: pytest.MonkeyPatch
) -> WandbEmulator:
    """Point ChatWandb's environment defaults at the emulator, as a user's shell would."""
    monkeypatch.setenv("WANDB_API_KEY", emulator.api_key)
    monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", emulator.base_url)
    return emulator


@pytest.fixture
def registered() -> None:
    register_provider()


def _run_fresh(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (no registration inherited from this one)."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "OPENAI_"))
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------- opt-in only


def test_no_effect_until_called_then_wandb_strings_resolve() -> None:
    _needs_proven_langchain()
    result = _run_fresh(
        f"""
        import langchain_wandb_router
        import langchain_wandb_router.integrations._provider
        from langchain_wandb_router import ChatWandb, register_provider
        from langchain.chat_models import init_chat_model

        for kwargs in ({{"model": "wandb:{QWEN}"}},
                       {{"model": "{QWEN}", "model_provider": "wandb"}}):
            try:
                init_chat_model(**kwargs)
            except ValueError as exc:
                print("before:", type(exc).__name__)
            else:
                print("before: built a model")

        register_provider()
        model = init_chat_model("wandb:{QWEN}")
        print("after:", type(model).__name__, model.model_name)
        """,
        WANDB_API_KEY="k" * 40,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "before: ValueError",
        "before: ValueError",
        f"after: ChatWandb {QWEN}",
    ]


def test_without_langchain_the_error_names_the_extra() -> None:
    _needs_proven_langchain()
    result = _run_fresh(
        """
        import sys

        class NoLangchain:
            def find_spec(self, name, path=None, target=None):
                if name == "langchain" or name.startswith("langchain."):
                    raise ImportError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoLangchain())
        from langchain_wandb_router import register_provider
        try:
            register_provider()
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "langchain-wandb-router[agents]"' in result.stdout


# ------------------------------------------------------------ init_chat_model


@pytest.mark.usefixtures("registered")
def test_init_chat_model_prefix_builds_chat_wandb_that_invokes(
    wandb_env: WandbEmulator,
) -> None:
    model = init_chat_model(f"wandb:{QWEN}")
    assert isinstance(model, ChatWandb)
    assert model.model_name == QWEN
    reply = model.invoke("Say hello.")
    assert isinstance(reply, AIMessage) and reply.content
    assert reply.response_metadata["model_name"] == QWEN
    assert wandb_env.chat_requests()[-1].json["model"] == QWEN  # type: ignore[index]


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("provider", ["wandb", "WANDB"])
def test_model_provider_argument(wandb_env: WandbEmulator, provider: str) -> None:
    model = init_chat_model(QWEN, model_provider=provider)
    assert isinstance(model, ChatWandb)
    assert model.model_name == QWEN


@pytest.mark.usefixtures("registered")
def test_init_chat_model_kwargs_reach_the_model_and_the_wire(
    wandb_env: WandbEmulator,
) -> None:
    model = init_chat_model(f"wandb:{QWEN}", temperature=0.25, max_tokens=64)
    assert isinstance(model, ChatWandb)
    assert model.temperature == 0.25
    model.invoke("Say hello.")
    body = wandb_env.chat_requests()[-1].json
    assert body is not None
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 64


@pytest.mark.usefixtures("registered")
def test_explicit_credentials_override_the_environment(emulator: WandbEmulator) -> None:
    model = init_chat_model(
        f"wandb:{QWEN}", api_key=emulator.api_key, base_url=emulator.base_url
    )
    assert model.invoke("Say hello.").response_metadata["model_name"] == QWEN


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    ("text", "model_id"),
    [
        # Only the first ":" separates the provider: LoRA ids keep theirs.
        (
            "wandb:wandb-artifact:///team/project/my-lora:v3",
            "wandb-artifact:///team/project/my-lora:v3",
        ),
        # langchain would infer "deepseek" from the bare id; the prefix wins.
        ("wandb:deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Flash"),
        (
            "wandb:meta-llama/Llama-3.3-70B-Instruct",
            "meta-llama/Llama-3.3-70B-Instruct",
        ),
    ],
)
def test_ids_keep_their_slashes_and_colons(
    wandb_env: WandbEmulator, text: str, model_id: str
) -> None:
    model = init_chat_model(text)
    assert isinstance(model, ChatWandb)
    assert model.model_name == model_id


@pytest.mark.usefixtures("registered")
def test_other_providers_and_wandb_slash_strings_are_not_claimed() -> None:
    openai_model = init_chat_model("openai:gpt-4o-mini", api_key="sk-test")
    assert type(openai_model) is ChatOpenAI
    # "wandb/…" is this package's own spelling, not langchain's: langchain still
    # refuses to guess a provider for it, and routes it where it is told to.
    with pytest.raises(ValueError, match="Unable to infer model provider"):
        init_chat_model(f"wandb/{QWEN}")
    routed = init_chat_model(
        f"wandb/{QWEN}", model_provider="openai", api_key="sk-test"
    )
    assert type(routed) is ChatOpenAI
    assert routed.model_name == f"wandb/{QWEN}"


@pytest.mark.usefixtures("registered")
def test_configurable_model_resolves_wandb_at_call_time(
    wandb_env: WandbEmulator,
) -> None:
    model = init_chat_model(model_provider="wandb", configurable_fields=("model",))
    reply = model.invoke("Say hello.", config={"configurable": {"model": GPT_OSS}})
    assert reply.response_metadata["model_name"] == GPT_OSS


# ------------------------------------------------------ agents and middleware


@pytest.mark.usefixtures("registered")
def test_create_agent_with_a_wandb_string_runs_a_turn(wandb_env: WandbEmulator) -> None:
    agent = create_agent(model=f"wandb:{QWEN}", tools=[])
    out = agent.invoke({"messages": [HumanMessage("Say hello.")]})
    final = out["messages"][-1]
    assert isinstance(final, AIMessage) and final.content
    assert final.response_metadata["model_name"] == QWEN
    assert [r.model for r in wandb_env.chat_requests()] == [QWEN]


@pytest.mark.usefixtures("registered")
def test_model_fallback_middleware_builds_chat_wandb(wandb_env: WandbEmulator) -> None:
    fallback = ModelFallbackMiddleware(f"wandb:{GPT_OSS}", f"wandb:{QWEN}")
    assert [type(m) for m in fallback.models] == [ChatWandb, ChatWandb]
    assert [m.model_name for m in fallback.models] == [GPT_OSS, QWEN]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("registered")
def test_agent_falls_back_to_a_wandb_string_model(wandb_env: WandbEmulator) -> None:
    wandb_env.fault(status=400, times=None, model=QWEN)  # not retryable: fails at once
    agent = create_agent(
        model=f"wandb:{QWEN}",
        tools=[],
        middleware=[ModelFallbackMiddleware(f"wandb:{GPT_OSS}")],
    )
    out = agent.invoke({"messages": [HumanMessage("Say hello.")]})
    assert out["messages"][-1].response_metadata["model_name"] == GPT_OSS
    assert [r.model for r in wandb_env.chat_requests()] == [QWEN, GPT_OSS]


# ----------------------------------------------- idempotence and thread safety


def test_repeated_and_concurrent_registration_is_harmless(
    wandb_env: WandbEmulator,
) -> None:
    errors: list[BaseException] = []

    def register() -> None:
        try:
            register_provider()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [threading.Thread(target=register) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        register_provider()
    assert errors == []
    assert lc_base._BUILTIN_PROVIDERS["wandb"][:2] == (
        "langchain_wandb_router.chat_model",
        "ChatWandb",
    )
    assert isinstance(init_chat_model(f"wandb:{QWEN}"), ChatWandb)


def test_replacing_another_wandb_entry_warns(
    wandb_env: WandbEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A future langchain might ship its own "wandb" entry; the explicit call wins, loudly.
    monkeypatch.setitem(
        lc_base._BUILTIN_PROVIDERS,
        "wandb",
        ("langchain_openai", "ChatOpenAI", lambda cls, **kw: cls(**kw)),
    )
    with pytest.warns(UserWarning, match="langchain_openai.ChatOpenAI"):
        register_provider()
    assert isinstance(init_chat_model(f"wandb:{QWEN}"), ChatWandb)


# --------------------------------------------- other langchain internals: refuse


@pytest.fixture
def table_without_wandb(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """langchain's table as a release that never saw register_provider() has it."""
    table = {k: v for k, v in lc_base._BUILTIN_PROVIDERS.items() if k != "wandb"}
    monkeypatch.setattr(lc_base, "_BUILTIN_PROVIDERS", table)
    return table


def _assert_helpful(exc: pytest.ExceptionInfo[ProviderRegistrationError]) -> None:
    assert isinstance(exc.value, RuntimeError)
    text = str(exc.value)
    assert f"langchain {_provider._langchain_version()}" in text
    assert "ChatWandb(" in text


def test_missing_registry_raises_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # langchain 1.0-1.2 resolved providers with an if/elif chain and had no table.
    monkeypatch.delattr(lc_base, "_BUILTIN_PROVIDERS")
    with pytest.raises(ProviderRegistrationError) as exc:
        register_provider()
    _assert_helpful(exc)


def test_reshaped_entries_raise_and_change_nothing(
    monkeypatch: pytest.MonkeyPatch, table_without_wandb: dict[str, Any]
) -> None:
    monkeypatch.setitem(table_without_wandb, "openai", {"module": "langchain_openai"})
    with pytest.raises(ProviderRegistrationError) as exc:
        register_provider()
    _assert_helpful(exc)
    assert "wandb" not in table_without_wandb


def test_parser_that_ignores_the_table_raises(
    monkeypatch: pytest.MonkeyPatch, table_without_wandb: dict[str, Any]
) -> None:
    def parse_from_elsewhere(model: str, model_provider: str | None) -> tuple[str, str]:
        provider, _, name = model.partition(":")
        return name, provider

    monkeypatch.setattr(lc_base, "_parse_model", parse_from_elsewhere)
    with pytest.raises(ProviderRegistrationError, match="_parse_model"):
        register_provider()
    assert "wandb" not in table_without_wandb


def test_parser_that_would_cut_ids_rolls_back(
    monkeypatch: pytest.MonkeyPatch, table_without_wandb: dict[str, Any]
) -> None:
    # Reads the table, but splits on the last ":" - it would mangle LoRA ids.
    def parse_on_last_colon(model: str, model_provider: str | None) -> tuple[str, str]:
        provider, _, name = model.rpartition(":")
        if provider in lc_base._BUILTIN_PROVIDERS:
            return name, provider
        raise ValueError(model)

    monkeypatch.setattr(lc_base, "_parse_model", parse_on_last_colon)
    with pytest.raises(ProviderRegistrationError, match="do not resolve"):
        register_provider()
    assert "wandb" not in table_without_wandb


# ------------------------------------------------ the tested langchain releases


def test_the_installed_langchain_registers_only_if_proven(
    monkeypatch: pytest.MonkeyPatch, table_without_wandb: dict[str, Any]
) -> None:
    """On a newer langchain than the range, registering refuses (the tests
    above pass on it forced: raise LANGCHAIN_PROVEN's upper bound then)."""
    monkeypatch.setattr(
        _provider, "_langchain_version", lambda: metadata.version("langchain")
    )
    if _installed_is_proven():
        register_provider()
        assert "wandb" in table_without_wandb
    else:
        with pytest.raises(ProviderRegistrationError):
            register_provider()
        assert "wandb" not in table_without_wandb


@pytest.mark.parametrize(
    "release",
    ["1.2.9", "1.5.3", "1.6.0", "2.0.0", "1.5.2rc1", "1.5.2.post1", "unknown"],
)
def test_untested_langchain_release_refuses_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, table_without_wandb: dict[str, Any], release: str
) -> None:
    monkeypatch.setattr(_provider, "_langchain_version", lambda: release)
    with pytest.raises(ProviderRegistrationError) as exc:
        register_provider()
    text = str(exc.value)
    assert (
        f"langchain {release}: that release is outside the ones it was tested" in text
    )
    assert "tested with langchain 1.3.0 to 1.5.2; nothing was changed" in text
    assert "ChatWandb(" in text
    assert "wandb" not in table_without_wandb
    with pytest.raises(ValueError, match="Unable to infer model provider"):
        init_chat_model(f"wandb:{QWEN}")


@pytest.mark.parametrize("release", ["1.3.0", "1.4", "1.5.2"])
def test_tested_releases_register(
    monkeypatch: pytest.MonkeyPatch,
    table_without_wandb: dict[str, Any],
    wandb_env: WandbEmulator,
    release: str,
) -> None:
    monkeypatch.setattr(_provider, "_langchain_version", lambda: release)
    register_provider()
    assert isinstance(init_chat_model(f"wandb:{QWEN}"), ChatWandb)
