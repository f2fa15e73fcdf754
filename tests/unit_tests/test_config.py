"""ChatWandb configuration: ids, credentials, URLs, projects and headers.

Everything here fails (or succeeds) before any network call.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai.chat_models.base import BaseChatOpenAI

from langchain_wandb_router import ChatWandb
from langchain_wandb_router._config import MissingAPIKeyError
from langchain_wandb_router._fields import HONOURED, REFUSED
from langchain_wandb_router.errors import (
    WandbAuthenticationError,
    WandbModelRetiredError,
)

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
KEY = "k7q2x-wandb-unit-test-key-0123456789abcdef"


@pytest.mark.parametrize(
    "given", [QWEN, f"wandb/{QWEN}", f"wandb:{QWEN}", f"  wandb/{QWEN} "]
)
def test_model_prefixes_resolve_to_bare_id(given: str) -> None:
    llm = ChatWandb(model=given, api_key=KEY)
    assert llm.model_name == QWEN
    assert llm._get_request_payload("hi")["model"] == QWEN


def test_lora_ids_pass_through_untouched() -> None:
    lora = "wandb-artifact:///my-team/my-project/My-LoRA:v3"
    llm = ChatWandb(model=f"wandb/{lora}", api_key=KEY)
    assert llm.model_name == lora
    assert llm.profile is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "wandb/",
        "Qwen",
        "a/b/c",
        "Qwen/ Qwen3",
        "/Qwen3",
        "Qwen/",
        "Qwen/x\ny",
    ],
)
def test_malformed_ids_fail_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="Malformed W&B model id"):
        ChatWandb(model=bad, api_key=KEY)


def test_case_is_preserved() -> None:
    llm = ChatWandb(model="meta-llama/Llama-3.3-70B-Instruct", api_key=KEY)
    assert llm.model_name == "meta-llama/Llama-3.3-70B-Instruct"


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    assert ChatWandb(model=QWEN).openai_api_key.get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_missing_key_names_the_env_var_and_never_uses_openai_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-should-never-be-used")
    with pytest.raises(MissingAPIKeyError, match="WANDB_API_KEY") as info:
        ChatWandb(model=QWEN)
    assert isinstance(info.value, WandbAuthenticationError)
    assert "sk-openai" not in str(info.value)


def test_openai_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_API_BASE", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-x")
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.openai_api_base == "https://api.inference.wandb.ai/v1"
    assert llm.openai_proxy is None
    assert llm.openai_organization is None
    assert "sk-openai" not in str(llm._headers)
    assert "OpenAI-Organization" not in llm._headers


def test_base_url_default_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        ChatWandb(model=QWEN, api_key=KEY).openai_api_base
        == "https://api.inference.wandb.ai/v1"
    )
    monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", "https://gateway.example/v1/")
    assert (
        ChatWandb(model=QWEN, api_key=KEY).openai_api_base
        == "https://gateway.example/v1"
    )
    llm = ChatWandb(model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1")
    assert llm._url == "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize(
    "url",
    ["http://api.inference.wandb.ai/v1", "http://10.0.0.5/v1", "http://example.com"],
)
def test_plain_http_to_remote_hosts_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        ChatWandb(model=QWEN, api_key=KEY, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.0.0.2/v1"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert ChatWandb(
        model=QWEN, api_key=KEY, base_url=url
    ).openai_api_base == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://x/v1", "not a url", "https://user:pw@host/v1"])
def test_other_bad_base_urls(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatWandb(model=QWEN, api_key=KEY, base_url=url)


def test_project_header_from_argument_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        ChatWandb(model=QWEN, api_key=KEY, project="team/proj")._headers[
            "OpenAI-Project"
        ]
        == "team/proj"
    )
    monkeypatch.setenv("WANDB_ENTITY", "ent")
    monkeypatch.setenv("WANDB_PROJECT", "proj")
    assert ChatWandb(model=QWEN, api_key=KEY).project == "ent/proj"
    monkeypatch.setenv("WANDB_INFERENCE_PROJECT", "team/inference")
    assert ChatWandb(model=QWEN, api_key=KEY).project == "team/inference"
    monkeypatch.delenv("WANDB_INFERENCE_PROJECT")
    monkeypatch.delenv("WANDB_PROJECT")
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.project is None
    assert "OpenAI-Project" not in llm._headers


@pytest.mark.parametrize(
    "bad",
    ["team", "team/", "/proj", "a/b/c", "team/pro ject", "team/proj\r\nX-Evil: 1"],
)
def test_bad_projects_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="team>/<project"):
        ChatWandb(model=QWEN, api_key=KEY, project=bad)


def test_bad_project_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_INFERENCE_PROJECT", "no-slash")
    with pytest.raises(ValueError, match="WANDB_INFERENCE_PROJECT"):
        ChatWandb(model=QWEN, api_key=KEY)


def test_default_headers_are_sent_as_given_but_checked() -> None:
    llm = ChatWandb(
        model=QWEN, api_key=KEY, default_headers={"X-Custom-Header": "value"}
    )
    assert llm._headers["X-Custom-Header"] == "value"
    with pytest.raises(ValueError, match="CR, LF"):
        ChatWandb(
            model=QWEN, api_key=KEY, default_headers={"X-A": "v\r\nX-Injected: 1"}
        )
    with pytest.raises(ValueError, match="cannot be overridden"):
        ChatWandb(
            model=QWEN, api_key=KEY, default_headers={"Authorization": "Bearer other"}
        )
    with pytest.raises(ValueError, match="Invalid header name"):
        ChatWandb(model=QWEN, api_key=KEY, default_headers={"Bad Name": "v"})


def test_retired_model_fails_at_construction_naming_date_and_successor() -> None:
    with pytest.raises(WandbModelRetiredError) as info:
        ChatWandb(model="wandb/moonshotai/Kimi-K2-Instruct", api_key=KEY)
    assert "2026-03-04" in str(info.value)
    assert "moonshotai/Kimi-K2.5" in str(info.value)
    assert info.value.successor == "moonshotai/Kimi-K2.5"


def test_retired_model_passed_per_call_fails_before_network() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(WandbModelRetiredError, match=r"DeepSeek-V3\.1"):
        llm.invoke("hi", model="deepseek-ai/DeepSeek-V3-0324")


def test_payload_shape() -> None:
    llm = ChatWandb(
        model=QWEN,
        api_key=KEY,
        max_tokens=64,
        enable_thinking=False,
        reasoning_effort="low",
        extra_body={"top_k": 20, "cache_salt": "s1"},
    )
    payload = llm._get_request_payload("hi")
    assert payload["max_tokens"] == 64
    assert "max_completion_tokens" not in payload
    assert payload["chat_template_kwargs"] == {"enable_thinking": False}
    assert payload["reasoning_effort"] == "low"
    assert payload["top_k"] == 20
    assert payload["cache_salt"] == "s1"
    assert "extra_body" not in payload
    assert "input" not in payload  # never the Responses API shape
    assert payload["messages"] == [{"role": "user", "content": "hi"}]


def test_responses_api_is_never_used() -> None:
    llm = ChatWandb(
        model=QWEN, api_key=KEY, output_version="responses/v1", use_responses_api=False
    )
    assert llm._use_responses_api({"tools": [{"type": "web_search"}]}) is False
    assert "messages" in llm._get_request_payload("hi")
    with pytest.raises(ValueError, match="use_responses_api= is not supported"):
        ChatWandb(model=QWEN, api_key=KEY, use_responses_api=True)


# ------------------------------------------------------------ field policy

# A value that asks for something, for every refused field.
REFUSED_SAMPLES: dict[str, Any] = {
    "openai_organization": "org-123",
    "openai_proxy": "http://proxy.example:3128",
    "include_response_headers": True,
    "use_responses_api": True,
    "use_previous_response_id": True,
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "truncation": "auto",
    "context_management": [{"type": "compaction"}],
    "reasoning": {"effort": "low"},
    "verbosity": "low",
    "service_tier": "flex",
    "prompt_cache_options": {"retention": "24h"},
    "client": object(),
    "async_client": object(),
    "root_client": object(),
    "root_async_client": object(),
    "http_socket_options": [(1, 9, 1)],
    "stream_chunk_timeout": 30.0,
    "tiktoken_model_name": "gpt-4o",
}


def test_every_inherited_field_is_honoured_or_refused() -> None:
    """A field langchain-openai adds must get a decision, not a silent drop."""
    inherited = set(BaseChatOpenAI.model_fields)
    assert HONOURED.isdisjoint(REFUSED)
    assert inherited == HONOURED | set(REFUSED)
    assert set(REFUSED_SAMPLES) == set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_field_fails_naming_it_and_the_way_out(name: str) -> None:
    alias = ChatWandb.model_fields[name].alias
    label = f"{alias}= ({name})" if alias else f"{name}="
    with pytest.raises(ValueError, match="is not supported by ChatWandb") as info:
        ChatWandb(model=QWEN, api_key=KEY, **{alias or name: REFUSED_SAMPLES[name]})
    assert label in str(info.value)
    assert REFUSED[name].reason in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("use_responses_api", False),
        ("include_response_headers", False),
        ("use_previous_response_id", False),
        ("http_socket_options", ()),
        ("stream_chunk_timeout", None),
        ("stream_chunk_timeout", 0),
        ("store", None),
    ],
)
def test_values_that_ask_for_nothing_are_accepted(name: str, value: Any) -> None:
    assert getattr(ChatWandb(model=QWEN, api_key=KEY, **{name: value}), name) == value


def test_every_refused_field_in_use_is_named_at_once() -> None:
    with pytest.raises(ValueError, match="organization=") as info:
        ChatWandb(
            model=QWEN, api_key=KEY, organization="org", verbosity="low", store=True
        )
    assert "verbosity=" in str(info.value) and "store=" in str(info.value)


def test_openai_stream_chunk_timeout_env_default_is_not_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGCHAIN_OPENAI_STREAM_CHUNK_TIMEOUT_S", "5")
    assert ChatWandb(model=QWEN, api_key=KEY).stream_chunk_timeout == 5.0


def test_custom_get_token_ids_is_honoured() -> None:
    def ids(text: str) -> list[int]:
        return [ord(c) for c in text]

    llm = ChatWandb(model=QWEN, api_key=KEY, custom_get_token_ids=ids)
    assert llm.get_num_tokens("abcdef") == 6
    assert llm.get_token_ids("ab") == [97, 98]
    messages = [HumanMessage("abcd"), AIMessage("xy")]
    assert llm.get_num_tokens_from_messages(messages) == len("Human: abcd") + len(
        "AI: xy"
    )


def test_n_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be at least 1"):
        ChatWandb(model=QWEN, api_key=KEY, n=0)


def test_base_url_with_a_query_points_to_default_query() -> None:
    with pytest.raises(ValueError, match="default_query"):
        ChatWandb(model=QWEN, api_key=KEY, base_url="https://gw.example/v1?x=1")


# ------------------------------------------------------- cached parameters


def test_params_follow_field_assignment_in_place_edits_and_copies() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, temperature=0.1)
    assert llm._get_request_payload("hi")["temperature"] == 0.1
    llm.temperature = 0.7
    llm.enable_thinking = True
    payload = llm._get_request_payload("hi")
    assert payload["temperature"] == 0.7
    assert payload["chat_template_kwargs"] == {"enable_thinking": True}
    llm.model_kwargs["top_k"] = 5
    assert llm._get_request_payload("hi")["top_k"] == 5
    del llm.model_kwargs["top_k"]
    assert "top_k" not in llm._get_request_payload("hi")
    copy = llm.model_copy(update={"temperature": 0.2, "max_tokens": 9})
    assert copy._get_request_payload("hi")["temperature"] == 0.2
    assert copy._get_request_payload("hi")["max_tokens"] == 9
    assert llm._get_request_payload("hi")["temperature"] == 0.7
    assert "max_tokens" not in llm._get_request_payload("hi")


def test_callers_may_change_the_params_they_get() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, temperature=0.1)
    llm._default_params["temperature"] = 1.5
    assert llm._default_params["temperature"] == 0.1


def test_key_never_in_repr_str_or_dumps() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert KEY not in repr(llm)
    assert KEY not in str(llm)
    dumped = dumps(llm)
    assert KEY not in dumped
    assert "WANDB_API_KEY" in dumped


@pytest.mark.parametrize(
    "bad",
    [
        {"base_url": "http://example.com/v1"},
        {"project": "no-slash"},
        {"organization": "org"},
        {"default_headers": {"Authorization": "x"}},
    ],
)
def test_construction_errors_never_quote_the_key(bad: dict[str, Any]) -> None:
    # The key first: pydantic quotes the start of the input in its errors.
    with pytest.raises(ValueError) as info:  # noqa: PT011 - message checked below
        ChatWandb(api_key=KEY, model=QWEN, **bad)
    text = str(info.value) + repr(info.value)
    assert KEY[:6] not in text
    assert "validation error for ChatWandb" in text


def test_ls_params_report_wandb() -> None:
    llm = ChatWandb(model=f"wandb/{QWEN}", api_key=KEY, temperature=0.2)
    params = llm._get_ls_params()
    assert params["ls_provider"] == "wandb"
    assert params["ls_model_name"] == QWEN
    assert params["ls_temperature"] == 0.2


def test_profile_and_model_info_come_from_catalog() -> None:
    llm = ChatWandb(model="wandb/moonshotai/Kimi-K2.5", api_key=KEY)
    assert llm.profile is not None
    assert llm.profile["image_inputs"] is True
    assert llm.profile["reasoning_output"] is True
    assert llm.profile["max_input_tokens"] == 262144
    assert llm.model_info is not None
    assert llm.model_info.reasoning == "always"


def test_negative_retries_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        ChatWandb(model=QWEN, api_key=KEY, max_retries=-1)


def test_token_estimates_are_offline() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.get_num_tokens("abcd" * 10) == 10
    assert llm.get_num_tokens_from_messages([HumanMessage("abcd" * 10)]) == 14
